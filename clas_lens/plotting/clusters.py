"""Language-cluster figures: a cluster metric per layer, the 2-D projection of sentence
representations, and task gain vs cluster change (the divergence test).

=============================  ===========================================================
function                       input
=============================  ===========================================================
:func:`cluster_by_layer`       (condition, layer, lang, metric, value)
:func:`projection_scatter`     (x, y, lang, condition, id, text)
:func:`divergence_scatter`     (lang, gain, delta_separation, delta_alignment) + tests
=============================  ===========================================================

Pure functions: each checks its input and returns a ``plotly.graph_objects.Figure``; ``size``
picks a size preset (:data:`clas_lens.plotting.geometry.SIZES`). The
unsteered condition is recognised under any of its names (:func:`clas_lens.vocab.is_unsteered`)
and labelled "unsteered"; the metrics and the test are those of docs/methods.md, "Clusters and
the divergence test".
"""
from __future__ import annotations

import html
import textwrap
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from clas_lens.errors import DataValidationError
from clas_lens.plotting.checks import check_frame, check_unique, unique_in_order
from clas_lens.plotting.geometry import SizePreset, get_size
from clas_lens.plotting.layout import add_note, facet_spacing, finish, panel_size, place_labels
from clas_lens.plotting.style import (
    DASHES,
    FIT_COLOR,
    POOLED_LANGS,
    condition_colors,
    condition_label,
    lang_colors,
    resolve_unsteered,
    subplots,
    unsteered_first,
    width_for,
)
from clas_lens.vocab import UNSTEERED

__all__ = ["cluster_by_layer", "divergence_scatter", "projection_scatter"]


def cluster_by_layer(metrics_df: pd.DataFrame, metric: str = "silhouette_cosine", *,
                     alignment: str | None = "parallel_cosine", base: str | None = None,
                     per_lang: bool = False, size: str | SizePreset | None = None,
                     title: str | None = None) -> go.Figure:
    """A cluster metric per layer before (unsteered) and after steering (other conditions).

    ``metrics_df`` is ``cluster_metrics`` output (concatenated over conditions): rows
    ``condition, layer, lang, metric, value``, where ``lang`` is ``"all"`` (or "") for values
    pooled over languages. Left panel: ``metric``; right panel: the alignment metric
    ``alignment`` (default ``parallel_cosine``, the mean cosine of parallel anchor/target
    pairs) if present. One line per condition, the unsteered one (``base``, by default the
    first condition :func:`clas_lens.vocab.is_unsteered` recognises) in grey, labelled
    "unsteered". Each line is the pooled ("all") value where there is one, else the mean over
    languages (said in the panel title). ``per_lang=True`` draws one line per language and
    condition instead (language colour, condition as dash; a language's lines share one
    legend group).

    >>> df = pd.DataFrame({"condition": ["unsteered", "unsteered", "clas", "clas"] * 2,
    ...                    "layer": [0, 1, 0, 1] * 2, "lang": [""] * 4 + ["de"] * 4,
    ...                    "metric": ["silhouette_cosine"] * 4 + ["parallel_cosine"] * 4,
    ...                    "value": [0.1, 0.2, 0.15, 0.3, 0.9, 0.8, 0.85, 0.7]})
    >>> fig = cluster_by_layer(df)
    >>> [(t.name, t.showlegend) for t in fig.data]
    [('unsteered', True), ('clas', True), ('unsteered', False), ('clas', False)]
    """
    df = check_frame(metrics_df, ("condition", "layer", "metric", "value"), "metrics_df")
    df["lang"] = df["lang"].fillna("").astype(str) if "lang" in df.columns else ""
    df["lang"] = df["lang"].where(~df["lang"].isin(POOLED_LANGS), "")
    metrics = unique_in_order(df["metric"])
    if metric not in metrics:
        raise DataValidationError(
            f"metrics_df has no rows with metric {metric!r}; it has {metrics}")
    check_unique(df, ["condition", "layer", "lang", "metric"], "metrics_df",
                  "one value per condition, layer, language and metric is expected")
    panels = [metric] + ([alignment] if alignment and alignment != metric
                         and alignment in metrics else [])
    conditions = unique_in_order(df["condition"])
    base = resolve_unsteered(conditions, base)
    conditions = unsteered_first(conditions, base)
    ccol = condition_colors(conditions, base=base)
    titles = [metric] + ([f"{alignment} (alignment)"] if len(panels) > 1 else [])
    p = get_size(size)
    n_cols = min(len(panels), p.wide_cols)
    n_rows = -(-len(panels) // n_cols)
    h_sp, v_sp, plot_h = facet_spacing(n_rows, n_cols, row_height=p.panel_height, col_width=300,
                                       preset=p, x_titles=True)
    fig = subplots(n_rows, n_cols, titles, h_spacing=h_sp, v_spacing=v_sp)
    shown: set[str] = set()
    for j, m in enumerate(panels):
        row, col = j // n_cols + 1, j % n_cols + 1
        sub = df[df["metric"] == m]
        langs = [l for l in unique_in_order(sub["lang"]) if l != ""]
        pooled = (sub["lang"] == "").any()
        split = per_lang and len(langs) > 1
        lcol = lang_colors(langs)
        for k, cond in enumerate(conditions):
            cs = sub[sub["condition"] == cond]
            if cs.empty:
                continue
            if split:
                for lang in langs:
                    ls = cs[cs["lang"] == lang].sort_values("layer")
                    name = f"{lang} · {condition_label(cond)}"
                    fig.add_trace(go.Scatter(
                        x=ls["layer"], y=ls["value"], mode="lines+markers", name=name,
                        line=dict(color=lcol[lang], dash=DASHES[k % len(DASHES)], width=2),
                        legendgroup=str(lang), showlegend=name not in shown,
                        hovertemplate=f"{name}<br>layer %{{x}}<br>{m} = %{{y:.4f}}<extra></extra>",
                    ), row=row, col=col)
                    shown.add(name)
                continue
            if pooled:
                cs = cs[cs["lang"] == ""]
            agg = cs.groupby("layer", sort=True)["value"].mean()
            fig.add_trace(go.Scatter(
                x=agg.index.to_numpy(), y=agg.to_numpy(dtype=float), mode="lines+markers",
                name=condition_label(cond),
                line=dict(color=ccol[cond], width=3 if cond == base else 2),
                legendgroup=cond, showlegend=cond not in shown,
                hovertemplate=f"{condition_label(cond)}<br>layer %{{x}}<br>{m} = %{{y:.4f}}"
                              "<extra></extra>",
            ), row=row, col=col)
            shown.add(cond)
        if langs and not split and not pooled:
            fig.layout.annotations[j].text += f" · mean over {len(langs)} languages"
        fig.update_yaxes(title_text=m, row=row, col=col)
        fig.update_xaxes(title_text="layer", row=row, col=col)
    fig.update_layout(legend_title_text="language · condition" if per_lang else "condition")
    return finish(fig, size=p, title=title, plot_height=plot_h)


def _hover_text(s: Any, width: int = 60, max_chars: int = 240) -> str:
    s = str(s)
    if len(s) > max_chars:
        s = s[: max_chars - 1] + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(s, width) or [""])


def projection_scatter(proj_df: pd.DataFrame, *, base: str | None = None,
                       layer: int | None = None, share_axes: bool = False,
                       marker_size: int | None = None, size: str | SizePreset | None = None,
                       title: str | None = None) -> go.Figure:
    """2-D projection (UMAP / PCA) of sentence representations, coloured by language.

    ``proj_df`` is ``project(...)`` output, columns ``x, y, lang, condition, id, text`` (and
    optionally ``layer``; with several layers, pick one with ``layer=``): one panel per
    condition (the unsteered one first: ``base``, by default the first condition
    :func:`clas_lens.vocab.is_unsteered` recognises, labelled "unsteered"), one trace per
    language and panel; hovering a point shows the sentence id and text. Axes are independent
    unless ``share_axes=True`` (right when one projection was fitted for all conditions
    together, as ``project`` does, so distances compare). ``marker_size`` defaults to 6 px on
    screen, 4 px for print sizes; panels are stacked for ``size="single"``.

    >>> df = pd.DataFrame({"x": [0.0, 1.0, 0.5, 1.5], "y": [0.0, 1.0, 0.2, 0.9],
    ...                    "lang": ["en", "de"] * 2, "condition": ["clas"] * 2 + ["unsteered"] * 2,
    ...                    "id": ["s1", "s1", "s1", "s1"], "text": ["Hi", "Hallo"] * 2})
    >>> fig = projection_scatter(df)
    >>> [(t.name, t.xaxis) for t in fig.data], fig.data[0].customdata[0].tolist()
    ([('en', 'x'), ('de', 'x'), ('en', 'x2'), ('de', 'x2')], ['s1', 'Hi'])
    """
    df = check_frame(proj_df, ("x", "y", "lang", "condition", "id", "text"), "proj_df")
    suffix = ""
    if "layer" in df.columns:
        layers = unique_in_order(df["layer"])
        if layer is not None:
            df = df[df["layer"] == layer]
            if df.empty:
                raise DataValidationError(f"proj_df has no rows for layer {layer}; it has {layers}")
        elif len(layers) > 1:
            raise DataValidationError(
                f"proj_df holds several layers {layers}: pick one with layer=...")
        suffix = f" · layer {df['layer'].iloc[0]}"
    elif layer is not None:
        raise DataValidationError("layer= given but proj_df has no 'layer' column")
    conditions = unique_in_order(df["condition"])
    base = resolve_unsteered(conditions, base)
    conditions = unsteered_first(conditions, base)
    langs = unique_in_order(df["lang"])
    colors = lang_colors(langs)
    labels = [(f"{condition_label(c)} (before steering)" if c == base else condition_label(c))
              + suffix for c in conditions]
    p = get_size(size)
    if marker_size is None:
        marker_size = 6 if p.width is None else 4
    n_cols = min(len(conditions), p.wide_cols)
    n_rows = -(-len(conditions) // n_cols)
    h_sp, v_sp, plot_h = facet_spacing(n_rows, n_cols, row_height=p.panel_height + 40,
                                       col_width=300, preset=p, x_titles=True)
    fig = subplots(n_rows, n_cols, labels, shared_x=share_axes, shared_y=share_axes,
                   h_spacing=h_sp, v_spacing=v_sp)
    shown: set[str] = set()
    for j, cond in enumerate(conditions):
        cs = df[df["condition"] == cond]
        for lang in langs:
            s = cs[cs["lang"] == lang]
            if s.empty:
                continue
            custom = np.stack([s["id"].astype(str).to_numpy(),
                               np.array([_hover_text(t) for t in s["text"]], dtype=object)],
                              axis=-1)
            fig.add_trace(go.Scatter(
                x=s["x"].to_numpy(dtype=float), y=s["y"].to_numpy(dtype=float), mode="markers",
                name=str(lang), legendgroup=str(lang), showlegend=lang not in shown,
                marker=dict(color=colors[lang], size=marker_size, opacity=0.8,
                            line=dict(width=0.5, color="white")),
                customdata=custom,
                hovertemplate=f"<b>%{{customdata[0]}}</b> ({html.escape(str(lang))}, "
                              f"{html.escape(condition_label(cond))})<br>%{{customdata[1]}}"
                              "<extra></extra>",
            ), row=j // n_cols + 1, col=j % n_cols + 1)
            shown.add(lang)
    fig.update_xaxes(title_text="component 1", showgrid=False)
    fig.update_yaxes(showgrid=False)
    for r in range(1, n_rows + 1):
        fig.update_yaxes(title_text="component 2", row=r, col=1)
    fig.update_layout(legend_title_text="language", legend_itemsizing="constant")
    return finish(fig, size=p, title=title, plot_height=plot_h, width=width_for(n_cols))


def divergence_scatter(points_df: pd.DataFrame, test_df: pd.DataFrame | None = None, *,
                       layer: int | None = None, size: str | SizePreset | None = None,
                       title: str | None = None) -> go.Figure:
    """Task gain vs change in language-cluster separation, and vs change in alignment.

    ``points_df`` has columns ``lang, gain, delta_separation, delta_alignment`` (one point per
    target language, or per language and strength). Left panel: gain vs ``delta_separation``
    (the "functional divergence" hypothesis), right panel: gain vs ``delta_alignment``; each
    with a least-squares line. ``test_df`` (``divergence_test`` output: ``hypothesis`` in
    separation / alignment, ``r, ci_low, ci_high, p_value, n`` and optionally ``metric, layer,
    method``) is written under the matching panel, one line per row. The points come from one
    layer: a ``test_df`` for several layers (``divergence_test(..., layer="all")``) needs
    ``layer=`` to pick the rows that belong to them. Each point is labelled with its language
    where the label collides with no other label or point (:func:`place_labels` tries eight
    positions around it); the others are named by hover and by the legend (every language has
    an entry). The panels are stacked for ``size="single"``, their test lines under the plot.

    >>> pts = pd.DataFrame({"lang": ["de", "zh", "hi"], "gain": [0.01, 0.04, 0.03],
    ...                     "delta_separation": [0.02, 0.09, 0.05],
    ...                     "delta_alignment": [0.01, -0.02, 0.0]})
    >>> tests = pd.DataFrame({"hypothesis": ["separation", "alignment"], "r": [0.9, -0.5],
    ...                       "ci_low": [0.2, -0.9], "ci_high": [1.0, 0.6],
    ...                       "p_value": [0.03, 0.4], "n": [3, 3], "method": "spearman"})
    >>> fig = divergence_scatter(pts, tests)
    >>> [t.name for t in fig.data][:4], fig.layout.annotations[-1].text
    (['de', 'zh', 'hi', 'least-squares fit'], 'spearman r = -0.50 [-0.90, +0.60], p = 0.4, n = 3')
    """
    pts = check_frame(points_df, ("lang", "gain", "delta_separation", "delta_alignment"),
                       "points_df")
    tests = None
    if test_df is not None:
        tests = check_frame(test_df, ("hypothesis", "r", "ci_low", "ci_high", "p_value", "n"),
                             "test_df")
        if "layer" in tests.columns:
            layers = unique_in_order(tests["layer"])
            if layer is not None:
                tests = tests[tests["layer"] == layer]
                if tests.empty:
                    raise DataValidationError(
                        f"test_df has no rows for layer {layer}; it has {layers}")
            elif len(layers) > 1:
                raise DataValidationError(
                    f"test_df holds tests for several layers {layers}: pass layer= (the layer "
                    "the points' deltas come from)")
    panels = [("separation", "delta_separation",
               f"Δ language separation (steered − {UNSTEERED})"),
              ("alignment", "delta_alignment", f"Δ alignment to anchor (steered − {UNSTEERED})")]
    p = get_size(size)
    n_cols = min(2, p.wide_cols)
    n_rows = 2 // n_cols
    h_sp, v_sp, plot_h = facet_spacing(n_rows, n_cols, row_height=p.panel_height + 40,
                                       col_width=300, preset=p, x_titles=True)
    fig = subplots(n_rows, n_cols, ["gain vs separation (divergence)", "gain vs alignment"],
                   h_spacing=h_sp, v_spacing=v_sp)
    langs = unique_in_order(pts["lang"])
    colors = lang_colors(langs)
    for j, (hyp, col, label) in enumerate(panels):
        r, c = j // n_cols + 1, j % n_cols + 1
        xs = pd.to_numeric(pts[col], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(pts["gain"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(xs) & np.isfinite(ys)
        for lang in langs:
            m = ok & (pts["lang"] == lang).to_numpy()
            if not m.any():
                continue
            fig.add_trace(go.Scatter(
                x=xs[m], y=ys[m], mode="markers+text", name=str(lang),
                text=[str(lang)] * int(m.sum()), textfont=dict(size=p.small),
                textposition="top center", legendgroup=str(lang), showlegend=j == 0,
                cliponaxis=False,
                marker=dict(color=colors[lang], size=10 if p.width is None else 7,
                            line=dict(width=1, color="white")),
                hovertemplate=f"{lang}<br>{col} = %{{x:.4f}}<br>gain = %{{y:.4f}}<extra></extra>",
            ), row=r, col=c)
        x_ok, y_ok = xs[ok], ys[ok]
        if x_ok.size >= 2 and np.ptp(x_ok) > 0:
            slope, intercept = np.polyfit(x_ok, y_ok, 1)
            line_x = np.array([x_ok.min(), x_ok.max()])
            fig.add_trace(go.Scatter(
                x=line_x, y=slope * line_x + intercept, mode="lines", name="least-squares fit",
                line=dict(color=FIT_COLOR, dash="dash", width=1.5), legendgroup="fit",
                showlegend=j == 0,
                hovertemplate=f"gain = {slope:.3g} · x + {intercept:.3g}<extra></extra>",
            ), row=r, col=c)
        fig.add_hline(y=0, line=dict(color="#bbbbbb", width=1), row=r, col=c)
        fig.add_vline(x=0, line=dict(color="#bbbbbb", width=1), row=r, col=c)
        fig.update_xaxes(title_text=label, row=r, col=c)
        fig.update_yaxes(title_text=f"task gain (steered − {UNSTEERED})", row=r, col=1)
        if tests is None:
            lines = [f"n = {int(ok.sum())} points (no test given)"]
        else:
            lines = _test_lines(tests[tests["hypothesis"] == hyp]) or [f"no {hyp} test given"]
        if n_cols == 1:
            lines = [f"<i>gain vs {hyp}</i>"] + lines
        x_at = fig.layout[f"xaxis{j + 1 if j else ''}"].domain[0] if n_cols > 1 else 0.0
        add_note(fig, "<br>".join(lines), x=x_at, row=0 if n_cols > 1 else j)
    fig.update_layout(legend_title_text="language")
    finish(fig, size=p, title=title, plot_height=plot_h)
    _label_points(fig, p)
    return fig


def _label_points(fig: go.Figure, p: SizePreset) -> None:
    """Text positions that keep the language labels of each panel apart (some left out)."""
    for axis in ("x", "x2"):
        traces = [t for t in fig.data if t.mode == "markers+text" and (t.xaxis or "x") == axis]
        if not traces:
            continue
        suffix = axis[1:]
        w, h = panel_size(fig, p, f"xaxis{suffix}", f"yaxis{suffix}")
        xs = np.concatenate([np.asarray(t.x, dtype=float) for t in traces])
        ys = np.concatenate([np.asarray(t.y, dtype=float) for t in traces])
        texts = [str(v) for t in traces for v in t.text]
        where = place_labels(xs, ys, texts, width_px=w, height_px=h, font=p.small,
                             marker_px=traces[0].marker.size)
        i = 0
        for t in traces:
            pos = where[i:i + len(t.x)]
            i += len(t.x)
            t.textposition = [q or "top center" for q in pos]
            t.text = [txt if q else "" for txt, q in zip(t.text, pos)]


def _test_lines(rows: pd.DataFrame) -> list[str]:
    """One line per test row, grouped under a "metric, layer" header when those columns exist."""
    lines: list[str] = []
    keys = [c for c in ("metric", "layer") if c in rows.columns]
    groups = rows.groupby(keys, sort=False, dropna=False) if keys else [((), rows)]
    for key, grp in groups:
        key = key if isinstance(key, tuple) else (key,)
        where = [str(v) if k == "metric" else f"layer {v}" for k, v in zip(keys, key)
                 if pd.notna(v) and v != ""]
        if where:
            lines.append("<b>" + html.escape(", ".join(where)) + "</b>")
        for _, row in grp.iterrows():
            method = (f"{row['method']} " if "method" in row and pd.notna(row["method"]) else "")
            n = int(row["n"]) if pd.notna(row["n"]) else "?"
            lines.append(f"{method}r = {float(row['r']):+.2f} [{float(row['ci_low']):+.2f}, "
                         f"{float(row['ci_high']):+.2f}], p = {float(row['p_value']):.3g}, n = {n}")
    return lines
