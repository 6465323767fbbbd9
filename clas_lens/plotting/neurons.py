"""Neuron figures: category counts per layer, activation probabilities and top attributed
neurons (the overlap between languages is :mod:`clas_lens.plotting.overlap`).

=====================================  =================================================
function                               input
=====================================  =================================================
:func:`neuron_categories`              ``NeuronSet.counts()``: (layer, category, lang, count)
:func:`activation_prob_distributions`  ``{lang: NeuronStats.active_prob(lang)}`` [layer, neuron]
:func:`top_attributed_neurons`         (layer, neuron, score[, lang])
=====================================  =================================================

Pure functions: each checks its input and returns a ``plotly.graph_objects.Figure``; nothing is
shown or written. ``size`` picks a size preset (:data:`clas_lens.plotting.geometry.SIZES`).
Categories are those of docs/methods.md, "Neuron categories".
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from clas_lens.errors import DataValidationError
from clas_lens.plotting.checks import (
    as_layer_neuron_array,
    check_frame,
    check_unique,
    unique_in_order,
)
from clas_lens.plotting.geometry import SizePreset, get_size, grid, line_height
from clas_lens.plotting.layout import facet_spacing, finish
from clas_lens.plotting.style import (
    CATEGORY_LABELS,
    SIGN_COLORS,
    category_colors,
    lang_colors,
    subplots,
    width_for,
)
from clas_lens.vocab import CATEGORIES

__all__ = [
    "activation_prob_distributions",
    "neuron_categories",
    "top_attributed_neurons",
]


def neuron_categories(counts_df: pd.DataFrame, *, normalize: bool = False,
                      n_neurons: int | None = None, size: str | SizePreset | None = None,
                      title: str | None = None) -> go.Figure:
    """Stacked bars of neuron categories per layer, and specific neurons per language.

    ``counts_df`` is ``NeuronSet.counts()``: columns ``layer, category, lang, count`` with
    ``lang`` empty ("", None or NaN) for the non-specific categories. Only the four categories
    of :data:`CATEGORIES` are drawn; others a method adds (CLAS's per-language ``active``,
    AP's ``top`` / ``bottom``) are left out. Left panel: the categories stacked per layer
    (``specific`` is its ``lang == ""`` row if present, else the sum over languages, which
    counts a neuron once per language for methods such as LAPE that may give it several).
    Right panel (when there are per-language rows): the specific neurons of each language
    stacked per layer, in the language's colour. ``normalize=True`` shows fractions of
    ``n_neurons`` (d_mlp) per layer; without it, of the categories' sum, which is d_mlp only
    for a partition of the neurons (CLAS: ``all_shared`` and ``non_activated`` present), so
    methods that only pick specific neurons need ``n_neurons``. The two panels are stacked
    for ``size="single"``; the legend lists every category and language (the figure grows
    until it fits, or it goes below the plot).

    >>> df = pd.DataFrame({"layer": [0, 0, 1, 1, 0, 1], "lang": ["", "de", "", "de", "", ""],
    ...                    "category": ["all_shared", "specific", "all_shared", "specific",
    ...                                 "non_activated", "non_activated"],
    ...                    "count": [4, 2, 5, 1, 2, 2]})
    >>> fig = neuron_categories(df, normalize=True)
    >>> [t.name for t in fig.data], [round(float(v), 3) for v in fig.data[0].y]
    (['all-shared', 'specific', 'non-activated', 'de'], [0.5, 0.625])
    """
    df = check_frame(counts_df, ("layer", "category", "lang", "count"), "counts_df")
    df["lang"] = df["lang"].fillna("").astype(str)
    found = unique_in_order(df["category"].astype(str))
    df = df[df["category"].isin(CATEGORIES)]
    if df.empty:
        raise DataValidationError(
            f"counts_df has none of the categories {list(CATEGORIES)}; it has {found}")
    df["count"] = pd.to_numeric(df["count"], errors="raise").astype(float)
    layers = sorted(unique_in_order(df["layer"]))

    totals: dict[str, pd.Series] = {}
    for cat in CATEGORIES:
        sub = df[df["category"] == cat]
        if sub.empty:
            continue
        if cat == "specific" and (sub["lang"] == "").any():
            sub = sub[sub["lang"] == ""]
        totals[cat] = sub.groupby("layer")["count"].sum().reindex(layers, fill_value=0.0)
    per_lang = df[(df["category"] == "specific") & (df["lang"] != "")]
    langs = unique_in_order(per_lang["lang"])

    if not normalize:
        denom = pd.Series(1.0, index=layers)
    elif n_neurons is not None:
        if int(n_neurons) < 1:
            raise ValueError(f"n_neurons must be a positive integer (d_mlp), got {n_neurons!r}")
        denom = pd.Series(float(n_neurons), index=layers)
    elif {"all_shared", "non_activated"} <= set(totals):  # a partition of the neurons (CLAS)
        denom = sum(totals.values()).replace(0, np.nan)
    else:
        raise DataValidationError(
            f"normalize=True needs n_neurons (d_mlp): counts_df has only the categories "
            f"{list(totals)}, which do not add up to all neurons of a layer")
    y_title = "fraction of neurons" if normalize else "neurons"

    p = get_size(size)
    titles = ["neurons per category"]
    if langs:
        titles.append("language-specific neurons per language")
    rows, cols = grid(len(titles), p.wide_cols)
    h_sp, v_sp, plot_h = facet_spacing(rows, cols, row_height=p.panel_height, col_width=300,
                                       preset=p, x_titles=True)
    fig = subplots(rows, cols, titles, h_spacing=h_sp, v_spacing=v_sp)
    colors = category_colors()
    for cat, series in totals.items():
        y = (series / denom).to_numpy()
        fig.add_trace(go.Bar(
            x=layers, y=y, name=CATEGORY_LABELS[cat], marker_color=colors[cat],
            legendgroup="category", legendgrouptitle_text="category",
            hovertemplate=f"layer %{{x}}<br>{CATEGORY_LABELS[cat]}: %{{y}}<extra></extra>",
        ), row=1, col=1)
    lcol = lang_colors(langs)
    for lang in langs:
        series = per_lang[per_lang["lang"] == lang].groupby("layer")["count"].sum()
        y = (series.reindex(layers, fill_value=0.0) / denom).to_numpy()
        fig.add_trace(go.Bar(
            x=layers, y=y, name=lang, marker_color=lcol[lang],
            legendgroup="language", legendgrouptitle_text="specific to",
            hovertemplate=f"layer %{{x}}<br>specific to {lang}: %{{y}}<extra></extra>",
        ), row=rows, col=cols)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="layer", tickmode="linear" if len(layers) <= 40 else "auto")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return finish(fig, size=p, title=title, plot_height=plot_h, legend="grow")


def activation_prob_distributions(probs: Mapping[str, Any], *,
                                  layers: Sequence[int] | None = None, by_layer: bool = False,
                                  n_points: int = 400, cols: int = 6,
                                  size: str | SizePreset | None = None,
                                  title: str | None = None) -> go.Figure:
    """ECDF of neuron activation probabilities, one line per language (optionally per layer).

    ``probs`` maps language -> array ``[layer, neuron]`` of activation probabilities (numpy, or
    a CPU torch tensor such as ``NeuronStats.active_prob(lang)``); all the same shape. An ECDF
    (fraction of neurons whose activation probability is <= x) needs no binning, keeps the
    big mass near 0 readable and lets many languages overlay cleanly. Each line is the exact
    ECDF at ``n_points`` evenly spaced ranks. ``layers`` selects layers (default all); they are
    pooled unless ``by_layer=True``, which draws one panel per layer (``cols`` per row, fewer
    for print sizes). Every language is in the legend (below the plot when it does not fit
    beside it).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = {"en": rng.random((2, 50)), "de": rng.random((2, 50)) ** 2}
    >>> fig = activation_prob_distributions(p)
    >>> [t.name for t in fig.data], float(fig.data[0].y[-1])
    (['en', 'de'], 1.0)
    >>> len(activation_prob_distributions(p, by_layer=True).data)
    4
    """
    if not isinstance(probs, Mapping) or not probs:
        raise DataValidationError("probs must be a non-empty dict lang -> [layer, neuron] array")
    arrays = {str(lang): as_layer_neuron_array(a, f"probs[{lang!r}]") for lang, a in probs.items()}
    shapes = {lang: a.shape for lang, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise DataValidationError(f"probs arrays must all have the same shape; got {shapes}")
    n_layers = next(iter(shapes.values()))[0]
    for lang, a in arrays.items():
        fin = a[np.isfinite(a)]
        if fin.size and (fin.min() < 0 or fin.max() > 1 + 1e-9):
            raise DataValidationError(
                f"probs[{lang!r}] must hold probabilities in [0, 1]; got min {fin.min():g}, "
                f"max {fin.max():g}")
    if layers is None:
        layer_ids = list(range(n_layers))
    else:
        layer_ids = [int(l) for l in layers]
        bad = [l for l in layer_ids if not 0 <= l < n_layers]
        if bad or not layer_ids:
            raise DataValidationError(
                f"layers {bad or layer_ids} out of range: the arrays have {n_layers} layers")
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")

    def ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.sort(values[np.isfinite(values)])
        if v.size == 0:
            return np.array([]), np.array([])
        idx = np.unique(np.linspace(0, v.size - 1, min(n_points, v.size)).round().astype(int))
        return v[idx], (idx + 1) / v.size

    p = get_size(size)
    colors = lang_colors(arrays)
    langs = list(arrays)
    hover = "p = %{x:.3f}<br>%{y:.1%} of neurons at or below<extra>%{fullData.name}</extra>"
    if not by_layer:
        fig = go.Figure()
        for lang in langs:
            x, y = ecdf(arrays[lang][layer_ids].ravel())
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line_shape="hv", name=lang,
                                     line=dict(color=colors[lang], width=2), legendgroup=lang,
                                     hovertemplate=hover))
        fig.update_xaxes(title_text="activation probability", range=[0, 1])
        fig.update_yaxes(title_text="fraction of neurons (ECDF)", range=[0, 1.02])
        shown = "all layers" if layers is None else f"layers {layer_ids}"
        fig.update_layout(legend_title_text=f"language ({shown})")
        return finish(fig, size=p, title=title, plot_height=p.panel_height)

    max_cols = int(cols) if p.width is None else min(int(cols), p.max_cols)
    nrows, ncols = grid(len(layer_ids), max(1, max_cols))
    h_sp, v_sp, plot_h = facet_spacing(nrows, ncols, row_height=p.facet_height + 30,
                                       col_width=200, preset=p)
    fig = subplots(nrows, ncols, [f"layer {l}" for l in layer_ids], shared_x="all",
                   shared_y="all", h_spacing=h_sp, v_spacing=v_sp)
    for i, layer in enumerate(layer_ids):
        r, c = divmod(i, ncols)
        for lang in langs:
            x, y = ecdf(arrays[lang][layer])
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line_shape="hv", name=lang,
                                     line=dict(color=colors[lang], width=1.5), legendgroup=lang,
                                     showlegend=i == 0, meta=dict(layer=layer),
                                     hovertemplate=hover), row=r + 1, col=c + 1)
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    for c in range(1, ncols + 1):
        fig.update_xaxes(title_text="activation probability", row=nrows, col=c)
    for r in range(1, nrows + 1):
        fig.update_yaxes(title_text="ECDF", row=r, col=1)
    fig.update_layout(legend_title_text="language")
    return finish(fig, size=p, title=title, plot_height=plot_h, width=width_for(ncols))


def top_attributed_neurons(attr_df: pd.DataFrame, k: int = 20, *,
                           size: str | SizePreset | None = None,
                           title: str | None = None) -> go.Figure:
    """Bars of the ``k`` neurons with the largest ``|score|``, labelled ``L{layer}.N{neuron}``.

    ``attr_df`` has columns ``layer, neuron, score`` and optionally ``lang``; with ``lang``,
    each language gets its own panel and its own top-k (bars in the language's colour),
    otherwise one panel with bars coloured by the sign of the score. Largest at the top. Up
    to 4 language panels are stacked; more wrap into rows (``wide_cols`` of the size preset).

    >>> df = pd.DataFrame({"layer": [0, 1, 1], "neuron": [5, 2, 9], "score": [0.1, -0.7, 0.3]})
    >>> fig = top_attributed_neurons(df, k=2)
    >>> list(fig.data[0].y), fig.data[0].x.tolist()
    (['L1.N2', 'L1.N9'], [-0.7, 0.3])
    """
    df = check_frame(attr_df, ("layer", "neuron", "score"), "attr_df")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    df["score"] = pd.to_numeric(df["score"], errors="raise").astype(float)
    df = df[np.isfinite(df["score"])]
    if df.empty:
        raise DataValidationError("attr_df has no finite scores: nothing to plot")
    has_lang = "lang" in df.columns
    keys = ["layer", "neuron"] + (["lang"] if has_lang else [])
    check_unique(df, keys, "attr_df",
                  "aggregate them first (e.g. df.groupby(keys)['score'].mean().reset_index())")
    groups: list[Any] = unique_in_order(df["lang"]) if has_lang else [None]
    titles = [f"{g}: top {k} by |score|" for g in groups] if has_lang else None
    p = get_size(size)
    n_bars = int(min(k, df.groupby("lang").size().max() if has_lang else len(df)))
    rows, cols = grid(len(groups), 1 if len(groups) <= 4 else p.wide_cols)
    row_h = max(p.facet_height, (line_height(p.small) + 3) * n_bars)
    h_sp, v_sp, plot_h = facet_spacing(rows, cols, row_height=row_h, col_width=240, preset=p,
                                       panel_titles=has_lang, x_titles=rows > 1,
                                       ytick_chars=10)
    fig = subplots(rows, cols, titles, h_spacing=h_sp, v_spacing=v_sp)
    colors = lang_colors([g for g in groups if g is not None])
    for i, g in enumerate(groups):
        sub = df if g is None else df[df["lang"] == g]
        order = sub["score"].abs().sort_values(ascending=False, kind="stable").index
        top = sub.loc[order].head(int(k))
        labels = [f"L{int(l)}.N{int(n)}" for l, n in zip(top["layer"], top["neuron"])]
        if g is None:
            color = [SIGN_COLORS["positive"] if s >= 0 else SIGN_COLORS["negative"]
                     for s in top["score"]]
        else:
            color = colors[g]
        fig.add_trace(go.Bar(
            x=top["score"].to_numpy(), y=labels, orientation="h",
            name="score" if g is None else str(g), marker_color=color,
            customdata=np.stack([top["layer"].to_numpy(), top["neuron"].to_numpy()], axis=-1),
            hovertemplate="layer %{customdata[0]}, neuron %{customdata[1]}<br>"
                          "score %{x:.4g}<extra></extra>",
            showlegend=g is not None,
        ), row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(autorange="reversed", type="category", tickmode="linear",
                         row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(title_text="attribution score")
    fig.update_layout(legend_title_text="language" if has_lang else None)
    return finish(fig, size=p, title=title, plot_height=plot_h,
                  width=width_for(cols) if cols > 1 else None)
