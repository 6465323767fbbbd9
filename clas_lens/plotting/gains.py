"""Steering-effect figures: metric vs steering strength, and per-language gains over the
unsteered condition.

=========================  ===========================================================
function                   input
=========================  ===========================================================
:func:`sweep_curves`       sweep cells (task, lang, ..., beta, metric, value, ci_*, diff*)
:func:`language_gains`     ``evaluate(...)``: (task, lang, condition, metric, diff, ...)
=========================  ===========================================================

Pure functions: each checks its input and returns a ``plotly.graph_objects.Figure``. The
unsteered condition is recognised under any of its names (:func:`clas_lens.vocab.is_unsteered`)
and labelled "unsteered" (see docs/glossary.md); the statistics drawn are those of
docs/methods.md, "Evaluation".
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from clas_lens.errors import DataValidationError
from clas_lens.plotting.checks import (
    check_frame,
    check_unique,
    hashable,
    metric_per_task,
    select_metric,
    unique_in_order,
)
from clas_lens.plotting.geometry import SizePreset, get_size, grid
from clas_lens.plotting.layout import add_note, facet_spacing, finish
from clas_lens.plotting.style import (
    CI_OPACITY,
    DASHES,
    FIT_COLOR,
    condition_label,
    lang_colors,
    resolve_unsteered,
    rgba,
    subplots,
    width_for,
)
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED

__all__ = ["language_gains", "sweep_curves"]

_PARAM_COLUMNS = ("condition", "method", "alpha", "beta", "gamma", "layers", "value_kind")
#: ``facet="auto"`` overlays at most this many languages (lines with CI bands) in one panel;
#: with more, each language gets its own panel (small multiples).
OVERLAY_MAX = 4


def sweep_curves(sweep_df: pd.DataFrame, x: str = "beta",
                 metric: str | Mapping[str, str] | None = None, *, y: str = "value",
                 fixed: Mapping[str, Any] | None = None, dash: str | None = None,
                 facet: str | None = "auto", size: str | SizePreset | None = None,
                 title: str | None = None) -> go.Figure:
    """Metric vs steering strength, one line per language with a 95 % CI band, a panel per task
    (or per task and language: small multiples).

    ``sweep_df`` holds tidy sweep cells: ``task, lang, metric`` and the strength column ``x``
    (``alpha``, ``beta`` or ``gamma``), plus ``value, ci_low, ci_high`` (``y="value"``) or
    ``diff, diff_ci_low, diff_ci_high`` (``y="diff"``: the gain over the unsteered condition,
    with a zero line). ``metric``: None draws each task's first metric, a string selects one (tasks
    without it are left out), a dict maps task -> metric. Rows whose ``x`` is NaN (the
    unsteered condition, methods without that parameter such as ``int_mu``) are left out.
    ``fixed={"gamma": 0.2}`` keeps only matching rows; ``dash`` names a column drawn as line
    dash (e.g. ``"method"``). If several rows remain for the same task, language and
    strength, the error names the columns that differ.

    ``facet``: ``"lang"`` draws one panel per language (small multiples, wrapped into rows; each
    task starts a new block of rows; panels of one task share their y range), None overlays
    every language in one panel per task, ``"auto"`` overlays up to :data:`OVERLAY_MAX`
    languages and draws small multiples beyond, where the bands would hide each other. Every
    language has one legend entry either way.

    >>> df = pd.DataFrame({"task": "nli", "lang": ["de", "de", "zh", "zh"],
    ...                    "metric": "accuracy", "beta": [0.0, 0.2, 0.0, 0.2],
    ...                    "value": [0.5, 0.6, 0.4, 0.45], "ci_low": [0.4, 0.5, 0.3, 0.35],
    ...                    "ci_high": [0.6, 0.7, 0.5, 0.55]})
    >>> fig = sweep_curves(df)
    >>> [(t.name, t.showlegend) for t in fig.data]
    [('de 95% CI', False), ('zh 95% CI', False), ('de', True), ('zh', True)]
    """
    if y not in ("value", "diff"):
        raise ValueError(f"y must be 'value' or 'diff', got {y!r}")
    lo_col, hi_col = ("ci_low", "ci_high") if y == "value" else ("diff_ci_low", "diff_ci_high")
    required = ["task", "lang", "metric", x, y, lo_col, hi_col] + ([dash] if dash else [])
    df = check_frame(sweep_df, required, "sweep_df")
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(hashable)
    if fixed:
        missing = [c for c in fixed if c not in df.columns]
        if missing:
            raise DataValidationError(f"fixed names column(s) {missing} that sweep_df lacks")
        for col, val in fixed.items():
            df = df[df[col].map(hashable) == hashable(val)]
        if df.empty:
            raise DataValidationError(f"no sweep_df rows match fixed={dict(fixed)}")
    df[x] = pd.to_numeric(df[x], errors="raise").astype(float)
    df = df[np.isfinite(df[x])]
    if df.empty:
        raise DataValidationError(f"sweep_df has no rows with a finite {x!r}")
    chosen = metric_per_task(df, metric, "sweep_df")
    df = select_metric(df, chosen)
    keys = ["task", "lang", x] + ([dash] if dash else [])
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        d = df[dup]
        varying = [c for c in _PARAM_COLUMNS if c in d.columns and c not in keys
                   and (d.groupby(keys, sort=False)[c].nunique(dropna=False) > 1).any()]
        hint = (f"they differ in {varying}: keep one with fixed={{{varying[0]!r}: ...}} or draw "
                f"them as separate lines with dash={varying[0]!r}" if varying else
                "aggregate them first")
        raise DataValidationError(
            f"sweep_df has several rows for the same {keys} (e.g. "
            f"{d[keys].iloc[0].to_dict()}); {hint}")

    if facet not in ("auto", "lang", None):
        raise ValueError(f"facet must be 'auto', 'lang' or None, got {facet!r}")
    tasks = list(chosen)
    langs = unique_in_order(df["lang"])
    colors = lang_colors(langs)
    dash_values = unique_in_order(df[dash]) if dash else [None]
    dash_style = {v: DASHES[i % len(DASHES)] for i, v in enumerate(dash_values)}
    p = get_size(size)
    by_lang = facet == "lang" or (facet == "auto" and len(langs) > OVERLAY_MAX)
    cells: dict[tuple[Any, Any], tuple[int, int]] = {}  # (task, lang or None) -> (row, col)
    if by_lang:
        block, cols = grid(len(langs), p.max_cols)
        for ti, task in enumerate(tasks):
            for i, lang in enumerate(langs):
                cells[task, lang] = (ti * block + i // cols + 1, i % cols + 1)
        rows, row_h = block * len(tasks), p.facet_height
    else:
        rows, cols = grid(len(tasks), p.wide_cols)
        cells = {(t, None): (i // cols + 1, i % cols + 1) for i, t in enumerate(tasks)}
        row_h = p.panel_height
    titles = [""] * (rows * cols)
    for (task, lang), (r, c) in cells.items():
        titles[(r - 1) * cols + c - 1] = (f"{task} · {chosen[task]}" if lang is None else
                                          lang if len(tasks) == 1 else f"{lang} · {task}")
    h_sp, v_sp, plot_h = facet_spacing(rows, cols, row_height=row_h, col_width=220, preset=p,
                                       x_titles=rows > 1 and (len(tasks) > 1 or not by_lang))
    fig = subplots(rows, cols, titles, h_spacing=h_sp, v_spacing=v_sp)
    shown: set[str] = set()
    extra = [c for c in ("n", "p_value") if c in df.columns]
    taken = {(task, pos) for (task, _), pos in cells.items()}
    for (task, panel_lang), (r, c) in cells.items():
        tdf = df[df["task"] == task]
        lines: list[go.Scatter] = []  # drawn after every band, so no band covers a line
        for lang in (langs if panel_lang is None else [panel_lang]):
            for dv in dash_values:
                sub = tdf[tdf["lang"] == lang]
                if dash:
                    sub = sub[sub[dash] == dv]
                if sub.empty:
                    continue
                sub = sub.sort_values(x)
                name = lang if dash is None else f"{lang} · {dash}={dv}"
                xs = sub[x].to_numpy()
                lo = pd.to_numeric(sub[lo_col], errors="coerce").to_numpy(dtype=float)
                hi = pd.to_numeric(sub[hi_col], errors="coerce").to_numpy(dtype=float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.any():
                    fig.add_trace(go.Scatter(
                        x=np.concatenate([xs[ok], xs[ok][::-1]]),
                        y=np.concatenate([hi[ok], lo[ok][::-1]]),
                        mode="lines", fill="toself", fillcolor=rgba(colors[lang], CI_OPACITY),
                        line=dict(width=0), hoverinfo="skip", showlegend=False,
                        legendgroup=name, name=f"{name} 95% CI",
                    ), row=r, col=c)
                custom = (np.stack([sub[c].to_numpy(dtype=float) for c in extra], axis=-1)
                          if extra else None)
                hover = f"{lang}<br>{x} = %{{x}}<br>{y} = %{{y:.4f}}"
                hover += "".join(f"<br>{c} = %{{customdata[{i}]:.4g}}" for i, c in enumerate(extra))
                lines.append(go.Scatter(
                    x=xs, y=sub[y].to_numpy(dtype=float), mode="lines+markers", name=name,
                    line=dict(color=colors[lang], width=2, dash=dash_style[dv]),
                    marker=dict(size=6 if p.width is None else 4), legendgroup=name,
                    showlegend=name not in shown, customdata=custom,
                    hovertemplate=hover + "<extra></extra>",
                ))
                shown.add(name)
        for line in lines:
            fig.add_trace(line, row=r, col=c)
        axes = fig.get_subplot(r, c)
        if c == 1:
            axes.yaxis.title.text = (chosen[task] if y == "value" else
                                     f"Δ {chosen[task]} vs {UNSTEERED}")
        if (task, (r + 1, c)) not in taken:  # x title under the lowest panel of a column
            axes.xaxis.title.text = x
        if y == "diff":
            fig.add_hline(y=0, line=dict(color=FIT_COLOR, width=1, dash="dot"), row=r, col=c)
    if by_lang:
        _share_ranges(fig, df, cells, x, [y, lo_col, hi_col], rows * cols)
    fig.update_layout(legend_title_text="language")
    return finish(fig, size=p, title=title, plot_height=plot_h, width=width_for(cols))


def _share_ranges(fig: go.Figure, df: pd.DataFrame, cells: Mapping[tuple[Any, Any], tuple],
                  x: str, ycols: list[str], n_cells: int) -> None:
    """Small multiples: one x range for all panels, one y range per task; empty cells hidden."""
    def padded(v: np.ndarray) -> list[float] | None:
        v = v[np.isfinite(v)]
        if not v.size:
            return None
        lo, hi = float(v.min()), float(v.max())
        pad = (hi - lo) * 0.06 or 0.05
        return [lo - pad, hi + pad]

    x_range = padded(df[x].to_numpy(dtype=float))
    used = set(cells.values())
    cols = max(c for _, c in used)
    for i in range(n_cells):
        r, c = i // cols + 1, i % cols + 1
        if (r, c) not in used:
            axes = fig.get_subplot(r, c)
            axes.xaxis.visible = axes.yaxis.visible = False
    y_range = {}
    for task in {t for t, _ in cells}:
        tdf = df[df["task"] == task]
        y_range[task] = padded(np.concatenate([
            pd.to_numeric(tdf[col], errors="coerce").to_numpy(dtype=float) for col in ycols]))
    for (task, _), (r, c) in cells.items():
        axes = fig.get_subplot(r, c)
        axes.xaxis.range, axes.yaxis.range = x_range, y_range[task]


def language_gains(eval_df: pd.DataFrame, anchor: str | None = "en", *,
                   metric: str | Mapping[str, str] | None = None, base: str | None = None,
                   confidence: float = DEFAULT_CONFIDENCE, alpha: float | None = None,
                   size: str | SizePreset | None = None,
                   title: str | None = None) -> go.Figure:
    """Gain of each language over the unsteered condition (bars with 95 % CIs), anchor beside them.

    ``eval_df`` is ``evaluate(...)``'s tidy table: ``task, lang, condition, metric, diff,
    diff_ci_low, diff_ci_high`` (``p_value`` optional; ``diff`` is steered minus the unsteered
    condition ``base``, by default the first condition that :func:`clas_lens.vocab.is_unsteered`
    recognises: ``"unsteered"`` or a legacy ``"baseline"`` / ``"base"``, labelled "unsteered").
    One panel per task (rows) and steered condition (columns); conditions whose ``diff`` is
    all NaN (the unsteered condition itself) are left out. Target languages are bars in
    their own colours; the anchor language (English by default: its score must not drop) is
    the hatched bar on the left, behind a dotted separator. ``*`` (a text trace) marks
    languages with ``p_value < 1 - confidence`` (``alpha=``, deprecated, is the old spelling
    of that threshold: ``alpha=0.05`` is ``confidence=0.95``); a dotted line and a note in the
    panel's corner give the mean target gain; when ``eval_df`` has an ``mde`` column (the
    smallest effect the experiment could detect, see
    :func:`clas_lens.metrics.min_detectable_effect`), grey dashes at ``+mde`` and ``-mde``
    beside each bar show it, so a bar inside its dashes is a gain the experiment could not
    have told from zero; a footnote explains the marks. ``metric`` as in
    :func:`sweep_curves`. ``anchor=None`` draws no anchor (otherwise a missing anchor is an
    error). Every language is a tick of its panel's x axis; for print sizes the panels wrap
    (one column for ``size="single"``).

    >>> df = pd.DataFrame({"task": "nli", "condition": "clas", "metric": "accuracy",
    ...                    "lang": ["en", "de", "zh"], "diff": [0.0, 0.03, 0.05],
    ...                    "diff_ci_low": [-0.01, 0.0, 0.02], "diff_ci_high": [0.01, 0.06, 0.08],
    ...                    "p_value": [1.0, 0.06, 0.01]})
    >>> fig = language_gains(df)
    >>> [t.name for t in fig.data], list(fig.data[2].x)
    (['anchor (en)', 'target languages', '* p < 0.05'], ['zh'])
    >>> fig = language_gains(df.assign(mde=[0.02, 0.04, 0.04]))
    >>> [t.name for t in fig.data][-1], fig.data[-1].y.tolist()
    ('± MDE (80% power)', [0.02, -0.02, 0.04, -0.04, 0.04, -0.04])
    """
    if alpha is not None:
        warnings.warn("language_gains(alpha=...) is deprecated: pass confidence=1 - alpha "
                      "(e.g. confidence=0.95 for alpha=0.05)", DeprecationWarning, stacklevel=2)
        threshold = float(alpha)
    else:
        threshold = round(1.0 - float(confidence), 12)
    required = ["task", "lang", "condition", "metric", "diff", "diff_ci_low", "diff_ci_high"]
    df = check_frame(eval_df, required, "eval_df")
    base = resolve_unsteered(df["condition"], base)
    df["diff"] = pd.to_numeric(df["diff"], errors="coerce")
    has_diff = df.groupby("condition", sort=False)["diff"].transform(lambda v: v.notna().any())
    df = df[(df["condition"] != base) & has_diff.astype(bool)]
    if df.empty:
        raise DataValidationError(
            f"eval_df has no steered condition with a diff (unsteered condition: {base!r}); "
            "gains need at least one steered condition compared with the unsteered one")
    base_label = condition_label(base) if base is not None else UNSTEERED
    chosen = metric_per_task(df, metric, "eval_df")
    df = select_metric(df, chosen)
    check_unique(df, ["task", "condition", "lang", "metric"], "eval_df",
                  "one row per task, condition, language and metric is expected")
    if anchor is not None and anchor not in set(df["lang"]):
        raise DataValidationError(
            f"anchor language {anchor!r} is not in eval_df (languages: "
            f"{unique_in_order(df['lang'])}); "
            f"evaluate it too (its score must not drop) or pass anchor=None")
    tasks, conditions = list(chosen), unique_in_order(df["condition"])
    langs = unique_in_order(df["lang"])
    colors = lang_colors(langs)
    facets = {}
    for task in tasks:
        for cond in conditions:
            sub = df[(df["task"] == task) & (df["condition"] == cond)].set_index("lang")
            order = [l for l in langs if l in sub.index and l == anchor] + \
                [l for l in langs if l in sub.index and l != anchor]
            facets[task, cond] = sub.loc[order]
    titles = [f"{task} · {condition_label(cond)}" for task, cond in facets]
    has_mde = "mde" in df.columns and pd.to_numeric(df["mde"], errors="coerce").notna().any()
    mde_name = "± MDE (80% power)"
    preset = get_size(size)
    cols = min(len(conditions), preset.wide_cols)  # screen: a row per task, a column per condition
    rows = -(-len(facets) // cols)
    h_sp, v_sp, plot_h = facet_spacing(rows, cols, row_height=preset.panel_height,
                                       col_width=300, preset=preset)
    fig = subplots(rows, cols, titles, h_spacing=h_sp, v_spacing=v_sp)
    shown: set[str] = set()
    sig_name = f"* p < {threshold:g}"
    for i, ((task, cond), sub) in enumerate(facets.items()):
        r, c = i // cols + 1, i % cols + 1
        if sub.empty:
            continue
        d_all = sub["diff"].to_numpy(dtype=float)
        hi_all = sub["diff_ci_high"].to_numpy(dtype=float)
        lo_all = sub["diff_ci_low"].to_numpy(dtype=float)
        p_all = (sub["p_value"].to_numpy(dtype=float) if "p_value" in sub.columns
                 else np.full(len(sub), np.nan))
        is_anchor = (sub.index == anchor) if anchor is not None else np.zeros(len(sub), bool)
        for part, mask in (("anchor", is_anchor), ("targets", ~is_anchor)):
            if not mask.any():
                continue
            x = list(sub.index[mask])
            d, hi, lo, p = d_all[mask], hi_all[mask], lo_all[mask], p_all[mask]
            name = f"anchor ({anchor})" if part == "anchor" else "target languages"
            marker = dict(color=[colors[l] for l in x])
            if part == "anchor":
                marker["pattern"] = dict(shape="/", fgcolor="white", solidity=0.3)
            fig.add_trace(go.Bar(
                x=x, y=d, name=name, marker=marker, legendgroup=part,
                showlegend=name not in shown,
                error_y=dict(type="data", symmetric=False, array=hi - d, arrayminus=d - lo,
                             color=FIT_COLOR, thickness=1.2),
                customdata=np.stack([lo, hi, p], axis=-1),
                hovertemplate="%{x}" + (" (anchor)" if part == "anchor" else "") +
                              "<br>Δ = %{y:+.4f} [%{customdata[0]:+.4f}, %{customdata[1]:+.4f}]"
                              "<br>p = %{customdata[2]:.3g}<extra></extra>",
            ), row=r, col=c)
            shown.add(name)
        sig = np.isfinite(p_all) & (p_all < threshold)
        if sig.any():
            top = np.where(np.isfinite(hi_all), np.maximum(hi_all, d_all), d_all)[sig]
            fig.add_trace(go.Scatter(
                x=list(sub.index[sig]), y=top, mode="text", text=["*"] * int(sig.sum()),
                textposition="top center", textfont=dict(size=preset.font + 3, color=FIT_COLOR),
                name=sig_name, showlegend=False, hoverinfo="skip", cliponaxis=False,
            ), row=r, col=c)
        if has_mde:
            mde = pd.to_numeric(sub["mde"], errors="coerce").to_numpy(dtype=float)
            ok = np.isfinite(mde)
            xs = [l for l, k in zip(sub.index, ok) if k for _ in (0, 1)]
            fig.add_trace(go.Scatter(
                x=xs, y=np.stack([mde[ok], -mde[ok]], axis=-1).ravel(), mode="markers",
                marker=dict(symbol="line-ew-open", size=preset.font, color="#888888",
                            line=dict(width=1.5, color="#888888")),
                name=mde_name, legendgroup="mde", showlegend=mde_name not in shown,
                hovertemplate="%{x}: MDE ± %{y:.4f}<extra></extra>",
            ), row=r, col=c)
            shown.add(mde_name)
        targets = d_all[~is_anchor]
        if np.isfinite(targets).any():
            mean = float(np.nanmean(targets))
            fig.add_hline(y=mean, line=dict(color=FIT_COLOR, width=1, dash="dot"), row=r, col=c)
            fig.add_annotation(text=f"mean {mean:+.3g}", xref="x domain", yref="y domain", x=0.99, y=0.99,
                               xanchor="right", yanchor="top", showarrow=False,
                               font=dict(size=preset.font - 1, color=FIT_COLOR), row=r, col=c)
        if is_anchor.any() and (~is_anchor).any():
            fig.add_vline(x=0.5, line=dict(color="#bbbbbb", width=1, dash="dot"), row=r, col=c)
        fig.add_hline(y=0, line=dict(color=FIT_COLOR, width=1), row=r, col=c)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(sub.index),
                         tickmode="array", tickvals=list(sub.index), tickangle=0, tickfont=dict(size=preset.small),
                         row=r, col=c)  # one row of small ticks: the spacing leaves room for one
        if c == 1:
            fig.update_yaxes(title_text=f"Δ {chosen[task]} vs {base_label}", row=r, col=c)
    add_note(
        fig, text=f"bars: steered − {base_label}, error bars: 95% CI; {sig_name} vs {base_label}; "
             "dotted line: mean target gain"
             + ("; grey dashes: ± minimum detectable effect (80% power)" if has_mde else "")
             + (f"; hatched: anchor {anchor}" if anchor is not None else ""))
    return finish(fig, size=preset, title=title, plot_height=plot_h, width=width_for(cols),
                  x_titled=False)
