"""Figures: pure functions from result tables to plotly figures, and one way to save them.

Every figure function takes a result (a tidy ``DataFrame``, a square ``DataFrame`` or arrays),
checks it, and RETURNS a ``plotly.graph_objects.Figure``. Nothing is shown, printed or written.

=================================  ===========================================================
function                           input
=================================  ===========================================================
:func:`neuron_categories`          ``NeuronSet.counts()``: (layer, category, lang, count)
:func:`language_overlap`           ``NeuronSet.overlap()``: square lang x lang Jaccard
:func:`activation_prob_distributions`  ``{lang: NeuronStats.active_prob(lang)}`` [layer, neuron]
:func:`top_attributed_neurons`     (layer, neuron, score[, lang])
:func:`sweep_curves`               sweep cells (task, lang, ..., beta, metric, value, ci_*, diff*)
:func:`language_gains`             ``evaluate(...)``: (task, lang, condition, metric, diff, ...)
:func:`cluster_by_layer`           (condition, layer, lang, metric, value)
:func:`projection_scatter`         (x, y, lang, condition, id, text)
:func:`divergence_scatter`         (lang, gain, delta_separation, delta_alignment) + tests
=================================  ===========================================================

Style lives in ONE place, the "Style" section below: the ``clas_lens`` template registered in
``plotly.io.templates``, fixed colours per language (:func:`lang_colors`, the same language has
the same colour in every figure), per neuron category and per condition, and :func:`apply_style`,
which every figure passes through. Notebooks call :func:`set_defaults` once to make the template
(and, if asked, a renderer) plotly's default; nothing else in clas_lens touches plotly settings.

:func:`save_figure` always writes a self-contained HTML file (plotly.js inlined, works offline)
and writes PNG / SVG / PDF through kaleido 1.x when a Chrome or Chromium is found
(:func:`static_export_available`). A missing browser is reported, never raised: kaleido's own
``get_chrome()`` downloads Chrome and fails offline, so clas_lens never calls it; install
Debian's ``chromium`` or point ``BROWSER_PATH`` at a Chrome instead.

>>> import pandas as pd
>>> counts = pd.DataFrame({"layer": [0, 0, 0, 0, 0], "count": [10, 5, 3, 2, 4],
...                        "category": ["all_shared", "partial_shared", "specific",
...                                     "specific", "non_activated"],
...                        "lang": ["", "", "de", "zh", ""]})
>>> fig = neuron_categories(counts)
>>> [t.name for t in fig.data]
['all-shared', 'partial-shared', 'specific', 'non-activated', 'de', 'zh']
>>> fig.layout.template.layout.font.family == FONT_FAMILY
True
"""
from __future__ import annotations

import asyncio
import colorsys
import hashlib
import html
import importlib.util
import math
import os
import shutil
import textwrap
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from clas_lens.errors import DataValidationError
from clas_lens.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "TEMPLATE_NAME",
    "StaticExportWarning",
    "activation_prob_distributions",
    "apply_style",
    "category_colors",
    "cluster_by_layer",
    "condition_colors",
    "divergence_scatter",
    "lang_colors",
    "language_gains",
    "language_overlap",
    "neuron_categories",
    "projection_scatter",
    "save_figure",
    "set_defaults",
    "static_export_available",
    "sweep_curves",
    "top_attributed_neurons",
]

# =============================================================================================
# Style: the only place with plotting settings (template, colours, sizes, renderer).
# =============================================================================================

#: Name of the template registered in ``plotly.io.templates``.
TEMPLATE_NAME = "clas_lens"
FONT_FAMILY = "Arial, Helvetica, 'Liberation Sans', sans-serif"
#: Static export size when neither the call nor the figure sets one (pixels, before ``scale``).
DEFAULT_WIDTH = 1000
DEFAULT_HEIGHT = 600
PANEL_HEIGHT = 380  # one row of panels
CI_OPACITY = 0.12  # confidence bands
SEQUENTIAL = "Blues"  # heatmaps of non-negative values (Jaccard)
BASE_COLOR = "#7f7f7f"  # the unsteered condition
#: Names of the unsteered condition, looked for in this order when ``base=None``
#: (clusters.residual_reps labels it "base"; evaluate and run_sweep call it "baseline").
BASE_NAMES: tuple[str, ...] = ("base", "baseline")
#: ``lang`` labels of rows pooled over all languages (cluster_metrics uses "all").
POOLED_LANGS: tuple[str, ...] = ("", "all")
FIT_COLOR = "#444444"  # least-squares lines and reference lines
SIGN_COLORS = {"positive": "#2166ac", "negative": "#b2182b"}
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")

#: Fixed colour per language code (the anchor, English, is near-black). Codes not listed get a
#: stable colour derived from a hash of the code, so they too are the same in every figure.
LANG_PALETTE: dict[str, str] = {
    "en": "#222222",
    "de": "#1f77b4",
    "es": "#ff7f0e",
    "fr": "#2ca02c",
    "ru": "#d62728",
    "zh": "#9467bd",
    "hi": "#8c564b",
    "ar": "#e377c2",
    "tr": "#bcbd22",
    "vi": "#17becf",
    "el": "#393b79",
    "th": "#e7ba52",
    "sw": "#637939",
    "bg": "#ad494a",
    "ur": "#a55194",
    "ja": "#6b6ecf",
    "ro": "#8ca252",
    "ko": "#ce6dbd",
    "it": "#bd9e39",
    "pt": "#843c39",
    "nl": "#5254a3",
    "pl": "#d6616b",
    "id": "#31a354",
    "fa": "#de9ed6",
    "he": "#9c9ede",
    "bn": "#e6550d",
    "ta": "#3182bd",
    "uk": "#756bb1",
}

#: Neuron categories in stacking order, with their legend labels and colours.
CATEGORIES: tuple[str, ...] = ("all_shared", "partial_shared", "specific", "non_activated")
_CATEGORY_LABELS = {
    "all_shared": "all-shared",
    "partial_shared": "partial-shared",
    "specific": "specific",
    "non_activated": "non-activated",
}
_CATEGORY_COLORS = {
    "all_shared": "#2b8cbe",
    "partial_shared": "#a6d5ec",
    "specific": "#e34a33",
    "non_activated": "#d9d9d9",
}
#: Colours for steered conditions, in order of first appearance (``base`` is always grey).
_CONDITION_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                      "#a6761d", "#1f78b4")


def _template() -> go.layout.Template:
    tpl = go.layout.Template(pio.templates["plotly_white"])
    axis = dict(showline=True, linecolor="#444444", linewidth=1, ticks="outside",
                tickcolor="#444444", gridcolor="#e8e8e8", zeroline=False,
                title=dict(standoff=8))
    tpl.layout.update(
        font=dict(family=FONT_FAMILY, size=13, color="#222222"),
        title=dict(x=0.01, xanchor="left", font=dict(size=16)),
        colorway=list(_CONDITION_PALETTE),
        margin=dict(l=70, r=30, t=80, b=60),
        legend=dict(bgcolor="rgba(255,255,255,0.85)", borderwidth=0, tracegroupgap=8,
                    font=dict(size=12)),
        hoverlabel=dict(font=dict(family=FONT_FAMILY, size=12)),
        bargap=0.18,
        xaxis=axis,
        yaxis=axis,
        colorscale=dict(sequential=SEQUENTIAL),
    )
    return tpl


def _ensure_template() -> None:
    if TEMPLATE_NAME not in pio.templates:
        pio.templates[TEMPLATE_NAME] = _template()


_ensure_template()


def apply_style(fig: go.Figure, *, title: str | None = None, width: int | None = None,
                height: int | None = None) -> go.Figure:
    """Give ``fig`` the shared ``clas_lens`` template (and a title / size); return it.

    Every figure in this module passes through here; use it on hand-made figures too so they
    match.

    >>> fig = apply_style(go.Figure(go.Bar(x=["a"], y=[1])), title="demo", height=300)
    >>> fig.layout.title.text, fig.layout.height
    ('demo', 300)
    >>> fig.layout.template.layout.font.family == FONT_FAMILY
    True
    """
    _ensure_template()
    fig.update_layout(template=pio.templates[TEMPLATE_NAME])
    if title is not None:
        fig.update_layout(title_text=title)
    if width is not None:
        fig.update_layout(width=width)
    if height is not None:
        fig.update_layout(height=height)
    return fig


def set_defaults(renderer: str | None = None) -> None:
    """Make the ``clas_lens`` template plotly's default (and set a renderer, e.g. in notebooks).

    The one function in clas_lens that changes plotly's global settings.

    >>> old = pio.templates.default
    >>> set_defaults()
    >>> pio.templates.default
    'clas_lens'
    >>> pio.templates.default = old
    """
    _ensure_template()
    pio.templates.default = TEMPLATE_NAME
    if renderer is not None:
        pio.renderers.default = renderer


def _hash_color(key: str) -> str:
    digest = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16)
    r, g, b = colorsys.hls_to_rgb((digest % 360) / 360.0, 0.45, 0.6)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def lang_colors(langs: Iterable[str] | str) -> dict[str, str]:
    """Fixed colour (hex) for each language code, the same in every figure and every run.

    Known codes come from :data:`LANG_PALETTE` (``zh_Hans`` and ``zh-CN`` share ``zh``'s colour);
    others get a stable colour from a hash of the code.

    >>> lang_colors(["en", "de"])
    {'en': '#222222', 'de': '#1f77b4'}
    >>> lang_colors("zh-CN") == {"zh-CN": LANG_PALETTE["zh"]}
    True
    >>> lang_colors(["xx"])["xx"] == lang_colors(["yy", "xx"])["xx"]
    True
    """
    if isinstance(langs, str):
        langs = [langs]
    out: dict[str, str] = {}
    for lang in langs:
        key = str(lang).lower().replace("-", "_").split("_")[0]
        out[lang] = LANG_PALETTE.get(key) or _hash_color(str(lang))
    return out


def category_colors() -> dict[str, str]:
    """Colour of each neuron category.

    >>> sorted(category_colors()) == sorted(CATEGORIES)
    True
    """
    return dict(_CATEGORY_COLORS)


def condition_colors(conditions: Iterable[str], base: str | None = None) -> dict[str, str]:
    """Colour per condition: the unsteered one grey, the others from a fixed palette in order.

    ``base=None`` finds the unsteered condition among :data:`BASE_NAMES`.

    >>> condition_colors(["baseline", "clas", "int_mu"])
    {'baseline': '#7f7f7f', 'clas': '#1b9e77', 'int_mu': '#d95f02'}
    """
    conditions = list(conditions)
    base = _resolve_base(conditions, base)
    out: dict[str, str] = {}
    i = 0
    for cond in conditions:
        if cond in out:
            continue
        if cond == base:
            out[cond] = BASE_COLOR
        else:
            out[cond] = _CONDITION_PALETTE[i % len(_CONDITION_PALETTE)]
            i += 1
    return out


def _resolve_base(conditions: Iterable[Any], base: str | None) -> str | None:
    """The unsteered condition's name: ``base`` if given, else the first of BASE_NAMES present."""
    if base is not None:
        return base
    present = set(conditions)
    return next((b for b in BASE_NAMES if b in present), None)


def _base_first(conditions: Sequence[Any], base: str | None) -> list[Any]:
    return ([base] if base in conditions else []) + [c for c in conditions if c != base]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _subplots(rows: int, cols: int, titles: Sequence[str] | None = None, *,
              shared_x: bool | str = False, shared_y: bool | str = False) -> go.Figure:
    """make_subplots with the module's spacing rules."""
    h = min(0.1 if cols <= 3 else 0.06, 0.5 / (cols - 1)) if cols > 1 else 0.0
    v = min(0.12, 0.5 / (rows - 1)) if rows > 1 else 0.0
    return make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) if titles else None,
                         shared_xaxes=shared_x, shared_yaxes=shared_y,
                         horizontal_spacing=h, vertical_spacing=v)


def _width_for(cols: int) -> int | None:
    """A fixed width only for wide grids (others stay responsive in HTML)."""
    return None if cols <= 3 else 320 * cols


# =============================================================================================
# Input checks
# =============================================================================================

def _check_frame(df: Any, required: Sequence[str], name: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{name} is missing column(s) {missing}; it has {list(map(str, df.columns))}. "
            f"Required: {list(required)}."
        )
    if df.empty:
        raise DataValidationError(f"{name} has no rows: nothing to plot")
    return df.copy()


def _ordered(values: Iterable[Any]) -> list[Any]:
    """Unique values in order of first appearance."""
    return list(dict.fromkeys(values))


def _hashable(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return ",".join(str(x) for x in v)
    return v


def _check_unique(df: pd.DataFrame, keys: Sequence[str], name: str, hint: str) -> None:
    dup = df.duplicated(list(keys), keep=False)
    if dup.any():
        example = df.loc[dup, list(keys)].iloc[0].to_dict()
        raise DataValidationError(
            f"{name} has {int(dup.sum())} rows that share the same {list(keys)} "
            f"(e.g. {example}); {hint}"
        )


def _metric_per_task(df: pd.DataFrame, metric: str | Mapping[str, str] | None,
                     name: str) -> dict[Any, str]:
    """Which metric to draw for each task (None: each task's first metric in row order)."""
    available = {t: _ordered(g["metric"]) for t, g in df.groupby("task", sort=False)}
    if metric is None:
        return {t: ms[0] for t, ms in available.items()}
    if isinstance(metric, str):
        chosen = {t: metric for t, ms in available.items() if metric in ms}
        if not chosen:
            raise DataValidationError(
                f"{name} has no rows with metric {metric!r}; metrics per task: {available}")
        return chosen
    chosen = {}
    for t, m in metric.items():
        if t not in available:
            raise DataValidationError(f"{name} has no task {t!r}; tasks: {list(available)}")
        if m not in available[t]:
            raise DataValidationError(
                f"{name}: task {t!r} has no metric {m!r}; it has {available[t]}")
        chosen[t] = m
    return chosen


def _select_metric(df: pd.DataFrame, chosen: Mapping[Any, str]) -> pd.DataFrame:
    keep = df["task"].map(lambda t: chosen.get(t)) == df["metric"]
    return df[keep.fillna(False).astype(bool)]


def _to_numpy_2d(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, without importing torch here
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise DataValidationError(f"{what} must be a 2-D [layer, neuron] array, got shape "
                                  f"{arr.shape}")
    return arr


# =============================================================================================
# Neurons
# =============================================================================================

def neuron_categories(counts_df: pd.DataFrame, *, normalize: bool = False,
                      n_neurons: int | None = None, title: str | None = None) -> go.Figure:
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
    methods that only pick specific neurons need ``n_neurons``.

    >>> df = pd.DataFrame({"layer": [0, 0, 1, 1, 0, 1], "lang": ["", "de", "", "de", "", ""],
    ...                    "category": ["all_shared", "specific", "all_shared", "specific",
    ...                                 "non_activated", "non_activated"],
    ...                    "count": [4, 2, 5, 1, 2, 2]})
    >>> fig = neuron_categories(df, normalize=True)
    >>> [t.name for t in fig.data], [round(float(v), 3) for v in fig.data[0].y]
    (['all-shared', 'specific', 'non-activated', 'de'], [0.5, 0.625])
    """
    df = _check_frame(counts_df, ("layer", "category", "lang", "count"), "counts_df")
    df["lang"] = df["lang"].fillna("").astype(str)
    found = _ordered(df["category"].astype(str))
    df = df[df["category"].isin(CATEGORIES)]
    if df.empty:
        raise DataValidationError(
            f"counts_df has none of the categories {list(CATEGORIES)}; it has {found}")
    df["count"] = pd.to_numeric(df["count"], errors="raise").astype(float)
    layers = sorted(_ordered(df["layer"]))

    totals: dict[str, pd.Series] = {}
    for cat in CATEGORIES:
        sub = df[df["category"] == cat]
        if sub.empty:
            continue
        if cat == "specific" and (sub["lang"] == "").any():
            sub = sub[sub["lang"] == ""]
        totals[cat] = sub.groupby("layer")["count"].sum().reindex(layers, fill_value=0.0)
    per_lang = df[(df["category"] == "specific") & (df["lang"] != "")]
    langs = _ordered(per_lang["lang"])

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

    cols = 2 if langs else 1
    titles = ["neurons per category"]
    if langs:
        titles.append("language-specific neurons per language")
    fig = _subplots(1, cols, titles)
    colors = category_colors()
    for cat, series in totals.items():
        y = (series / denom).to_numpy()
        fig.add_trace(go.Bar(
            x=layers, y=y, name=_CATEGORY_LABELS[cat], marker_color=colors[cat],
            legendgroup="category", legendgrouptitle_text="category",
            hovertemplate=f"layer %{{x}}<br>{_CATEGORY_LABELS[cat]}: %{{y}}<extra></extra>",
        ), row=1, col=1)
    lcol = lang_colors(langs)
    for lang in langs:
        series = per_lang[per_lang["lang"] == lang].groupby("layer")["count"].sum()
        y = (series.reindex(layers, fill_value=0.0) / denom).to_numpy()
        fig.add_trace(go.Bar(
            x=layers, y=y, name=lang, marker_color=lcol[lang],
            legendgroup="language", legendgrouptitle_text="specific to",
            hovertemplate=f"layer %{{x}}<br>specific to {lang}: %{{y}}<extra></extra>",
        ), row=1, col=2)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="layer", tickmode="linear" if len(layers) <= 40 else "auto")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    legend_h = 24 * (len(totals) + len(langs)) + 60 * (1 + bool(langs)) + 100  # keep it all visible
    return apply_style(fig, title=title, height=max(PANEL_HEIGHT + 40, legend_h))


def language_overlap(overlap_df: pd.DataFrame, *, mask_diagonal: bool = True, decimals: int = 2,
                     title: str | None = None) -> go.Figure:
    """Annotated heatmap of the Jaccard overlap of language-specific neurons (lang x lang).

    ``overlap_df`` is ``NeuronSet.overlap()``: a square DataFrame, the same languages as index
    and columns (columns are reordered to the index order), values in [0, 1] or NaN.
    The diagonal (always 1) is left blank by default so the colour range shows the overlaps.

    >>> ov = pd.DataFrame([[1.0, 0.1], [0.1, 1.0]], index=["de", "zh"], columns=["de", "zh"])
    >>> fig = language_overlap(ov)
    >>> fig.data[0].type, fig.data[0].text.tolist()
    ('heatmap', [['', '0.10'], ['0.10', '']])
    """
    if not isinstance(overlap_df, pd.DataFrame):
        raise DataValidationError(
            f"overlap_df must be a square pandas DataFrame, got {type(overlap_df).__name__}")
    if overlap_df.empty:
        raise DataValidationError("overlap_df has no rows: nothing to plot")
    rows, cols = list(overlap_df.index), list(overlap_df.columns)
    if len(set(rows)) != len(rows) or set(rows) != set(cols):
        raise DataValidationError(
            f"overlap_df must be square with the same languages as index and columns; "
            f"index {rows}, columns {cols}")
    langs = rows
    try:
        z = overlap_df.loc[langs, langs].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataValidationError(f"overlap_df must hold numbers: {e}") from None
    finite = z[np.isfinite(z)]
    if finite.size and (finite.min() < 0 or finite.max() > 1 + 1e-9):
        raise DataValidationError(
            f"overlap_df values must be Jaccard indices in [0, 1]; got min {finite.min():g}, "
            f"max {finite.max():g}")
    text = np.array([["" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in row]
                     for row in z], dtype=object)
    if mask_diagonal:
        z = z.copy()
        np.fill_diagonal(z, np.nan)
        np.fill_diagonal(text, "")
    off = z[np.isfinite(z)]
    zmax = float(off.max()) if off.size and off.max() > 0 else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=langs, y=langs, text=text, texttemplate="%{text}", zmin=0.0, zmax=zmax,
        colorscale=SEQUENTIAL, xgap=1, ygap=1, colorbar=dict(title=dict(text="Jaccard")),
        hovertemplate="%{y} vs %{x}: %{z:.4f}<extra></extra>", name="Jaccard",
    ))
    fig.update_xaxes(title_text="language", showgrid=False, showline=False, ticks="")
    fig.update_yaxes(title_text="language", autorange="reversed", scaleanchor="x",
                     showgrid=False, showline=False, ticks="")
    side = max(360, 60 * len(langs) + 160)
    return apply_style(fig, title=title, height=side, width=side + 120)


def activation_prob_distributions(probs: Mapping[str, Any], *,
                                  layers: Sequence[int] | None = None, by_layer: bool = False,
                                  n_points: int = 400, cols: int = 6,
                                  title: str | None = None) -> go.Figure:
    """ECDF of neuron activation probabilities, one line per language (optionally per layer).

    ``probs`` maps language -> array ``[layer, neuron]`` of activation probabilities (numpy, or
    a CPU torch tensor such as ``NeuronStats.active_prob(lang)``); all the same shape. An ECDF
    (fraction of neurons whose activation probability is <= x) needs no binning, keeps the
    big mass near 0 readable and lets many languages overlay cleanly. Each line is the exact
    ECDF at ``n_points`` evenly spaced ranks. ``layers`` selects layers (default all); they are
    pooled unless ``by_layer=True``, which draws one panel per layer (``cols`` per row).

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
    arrays = {str(lang): _to_numpy_2d(a, f"probs[{lang!r}]") for lang, a in probs.items()}
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
        return apply_style(fig, title=title, height=PANEL_HEIGHT + 40)

    ncols = max(1, min(int(cols), len(layer_ids)))
    nrows = math.ceil(len(layer_ids) / ncols)
    fig = _subplots(nrows, ncols, [f"layer {l}" for l in layer_ids], shared_x="all",
                    shared_y="all")
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
    return apply_style(fig, title=title, height=260 * nrows + 120, width=_width_for(ncols))


def top_attributed_neurons(attr_df: pd.DataFrame, k: int = 20, *,
                           title: str | None = None) -> go.Figure:
    """Bars of the ``k`` neurons with the largest ``|score|``, labelled ``L{layer}.N{neuron}``.

    ``attr_df`` has columns ``layer, neuron, score`` and optionally ``lang``; with ``lang``,
    each language gets its own panel and its own top-k (bars in the language's colour),
    otherwise one panel with bars coloured by the sign of the score. Largest at the top.

    >>> df = pd.DataFrame({"layer": [0, 1, 1], "neuron": [5, 2, 9], "score": [0.1, -0.7, 0.3]})
    >>> fig = top_attributed_neurons(df, k=2)
    >>> list(fig.data[0].y), fig.data[0].x.tolist()
    (['L1.N2', 'L1.N9'], [-0.7, 0.3])
    """
    df = _check_frame(attr_df, ("layer", "neuron", "score"), "attr_df")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    df["score"] = pd.to_numeric(df["score"], errors="raise").astype(float)
    df = df[np.isfinite(df["score"])]
    if df.empty:
        raise DataValidationError("attr_df has no finite scores: nothing to plot")
    has_lang = "lang" in df.columns
    keys = ["layer", "neuron"] + (["lang"] if has_lang else [])
    _check_unique(df, keys, "attr_df",
                  "aggregate them first (e.g. df.groupby(keys)['score'].mean().reset_index())")
    groups: list[Any] = _ordered(df["lang"]) if has_lang else [None]
    titles = [f"{g}: top {k} by |score|" for g in groups] if has_lang else None
    fig = _subplots(len(groups), 1, titles)
    colors = lang_colors([g for g in groups if g is not None])
    n_max = 0
    for i, g in enumerate(groups):
        sub = df if g is None else df[df["lang"] == g]
        order = sub["score"].abs().sort_values(ascending=False, kind="stable").index
        top = sub.loc[order].head(int(k))
        n_max = max(n_max, len(top))
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
        ), row=i + 1, col=1)
        fig.update_yaxes(autorange="reversed", type="category", row=i + 1, col=1)
    fig.update_xaxes(title_text="attribution score", row=len(groups), col=1)
    row_h = max(220, 20 * n_max + 80)
    return apply_style(fig, title=title, height=row_h * len(groups) + 80)


# =============================================================================================
# Evaluation
# =============================================================================================

_PARAM_COLUMNS = ("condition", "method", "alpha", "beta", "gamma", "layers", "value_kind")


def sweep_curves(sweep_df: pd.DataFrame, x: str = "beta",
                 metric: str | Mapping[str, str] | None = None, *, y: str = "value",
                 fixed: Mapping[str, Any] | None = None, dash: str | None = None,
                 title: str | None = None) -> go.Figure:
    """Metric vs steering strength, one line per language with a 95 % CI band, a panel per task.

    ``sweep_df`` holds tidy sweep cells: ``task, lang, metric`` and the strength column ``x``
    (``alpha``, ``beta`` or ``gamma``), plus ``value, ci_low, ci_high`` (``y="value"``) or
    ``diff, diff_ci_low, diff_ci_high`` (``y="diff"``: the gain over the unsteered base, with a
    zero line). ``metric``: None draws each task's first metric, a string selects one (tasks
    without it are left out), a dict maps task -> metric. Rows whose ``x`` is NaN (the
    baseline, methods without that parameter such as ``int_mu``) are left out.
    ``fixed={"gamma": 0.2}`` keeps only matching rows; ``dash`` names a column drawn as line
    dash (e.g. ``"method"``). If several rows remain for the same task, language and
    strength, the error names the columns that differ.

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
    df = _check_frame(sweep_df, required, "sweep_df")
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(_hashable)
    if fixed:
        missing = [c for c in fixed if c not in df.columns]
        if missing:
            raise DataValidationError(f"fixed names column(s) {missing} that sweep_df lacks")
        for col, val in fixed.items():
            df = df[df[col].map(_hashable) == _hashable(val)]
        if df.empty:
            raise DataValidationError(f"no sweep_df rows match fixed={dict(fixed)}")
    df[x] = pd.to_numeric(df[x], errors="raise").astype(float)
    df = df[np.isfinite(df[x])]
    if df.empty:
        raise DataValidationError(f"sweep_df has no rows with a finite {x!r}")
    chosen = _metric_per_task(df, metric, "sweep_df")
    df = _select_metric(df, chosen)
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

    tasks = list(chosen)
    langs = _ordered(df["lang"])
    colors = lang_colors(langs)
    dash_values = _ordered(df[dash]) if dash else [None]
    dash_style = {v: DASHES[i % len(DASHES)] for i, v in enumerate(dash_values)}
    fig = _subplots(1, len(tasks), [f"{t} · {chosen[t]}" for t in tasks])
    shown: set[str] = set()
    extra = [c for c in ("n", "p_value") if c in df.columns]
    for j, task in enumerate(tasks):
        tdf = df[df["task"] == task]
        lines: list[go.Scatter] = []  # drawn after every band, so no band covers a line
        for lang in langs:
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
                        mode="lines", fill="toself", fillcolor=_rgba(colors[lang], CI_OPACITY),
                        line=dict(width=0), hoverinfo="skip", showlegend=False,
                        legendgroup=name, name=f"{name} 95% CI",
                    ), row=1, col=j + 1)
                custom = (np.stack([sub[c].to_numpy(dtype=float) for c in extra], axis=-1)
                          if extra else None)
                hover = f"{lang}<br>{x} = %{{x}}<br>{y} = %{{y:.4f}}"
                hover += "".join(f"<br>{c} = %{{customdata[{i}]:.4g}}" for i, c in enumerate(extra))
                lines.append(go.Scatter(
                    x=xs, y=sub[y].to_numpy(dtype=float), mode="lines+markers", name=name,
                    line=dict(color=colors[lang], width=2, dash=dash_style[dv]),
                    marker=dict(size=6), legendgroup=name, showlegend=name not in shown,
                    customdata=custom, hovertemplate=hover + "<extra></extra>",
                ))
                shown.add(name)
        for line in lines:
            fig.add_trace(line, row=1, col=j + 1)
        y_title = chosen[task] if y == "value" else f"Δ {chosen[task]} vs base"
        fig.update_yaxes(title_text=y_title, row=1, col=j + 1)
        fig.update_xaxes(title_text=x, row=1, col=j + 1)
        if y == "diff":
            fig.add_hline(y=0, line=dict(color=FIT_COLOR, width=1, dash="dot"), row=1, col=j + 1)
    fig.update_layout(legend_title_text="language")
    return apply_style(fig, title=title, height=PANEL_HEIGHT + 40, width=_width_for(len(tasks)))


def language_gains(eval_df: pd.DataFrame, anchor: str | None = "en", *,
                   metric: str | Mapping[str, str] | None = None, base: str | None = None,
                   alpha: float = 0.05, title: str | None = None) -> go.Figure:
    """Gain of each language over the unsteered condition (bars with 95 % CIs), anchor beside them.

    ``eval_df`` is ``evaluate(...)``'s tidy table: ``task, lang, condition, metric, diff,
    diff_ci_low, diff_ci_high`` (``p_value`` optional; ``diff`` is steered minus the unsteered
    condition ``base``, by default the first of :data:`BASE_NAMES` present, e.g. evaluate's
    ``"baseline"``). One panel per task (rows) and steered condition (columns); conditions
    whose ``diff`` is all NaN (the baseline itself) are left out. Target languages are bars in
    their own colours; the anchor language (English by default: its score must not drop) is
    the hatched bar on the left, behind a dotted separator. ``*`` (a text trace) marks
    languages with ``p_value < alpha``; a dotted line and the panel title give the mean target
    gain; a footnote explains the marks. ``metric`` as in
    :func:`sweep_curves`. ``anchor=None`` draws no anchor (otherwise a missing anchor is an
    error).

    >>> df = pd.DataFrame({"task": "nli", "condition": "clas", "metric": "accuracy",
    ...                    "lang": ["en", "de", "zh"], "diff": [0.0, 0.03, 0.05],
    ...                    "diff_ci_low": [-0.01, 0.0, 0.02], "diff_ci_high": [0.01, 0.06, 0.08],
    ...                    "p_value": [1.0, 0.06, 0.01]})
    >>> fig = language_gains(df)
    >>> [t.name for t in fig.data], list(fig.data[2].x)
    (['anchor (en)', 'target languages', '* p < 0.05'], ['zh'])
    """
    required = ["task", "lang", "condition", "metric", "diff", "diff_ci_low", "diff_ci_high"]
    df = _check_frame(eval_df, required, "eval_df")
    base = _resolve_base(df["condition"], base)
    df["diff"] = pd.to_numeric(df["diff"], errors="coerce")
    has_diff = df.groupby("condition", sort=False)["diff"].transform(lambda v: v.notna().any())
    df = df[(df["condition"] != base) & has_diff.astype(bool)]
    if df.empty:
        raise DataValidationError(
            f"eval_df has no steered condition with a diff (unsteered condition: {base!r}); "
            "gains need at least one steered condition compared with the baseline")
    base = base or "baseline"
    chosen = _metric_per_task(df, metric, "eval_df")
    df = _select_metric(df, chosen)
    _check_unique(df, ["task", "condition", "lang", "metric"], "eval_df",
                  "one row per task, condition, language and metric is expected")
    if anchor is not None and anchor not in set(df["lang"]):
        raise DataValidationError(
            f"anchor language {anchor!r} is not in eval_df (languages: {_ordered(df['lang'])}); "
            f"evaluate it too (its score must not drop) or pass anchor=None")
    tasks, conditions = list(chosen), _ordered(df["condition"])
    langs = _ordered(df["lang"])
    colors = lang_colors(langs)
    facets = {}
    for task in tasks:
        for cond in conditions:
            sub = df[(df["task"] == task) & (df["condition"] == cond)].set_index("lang")
            order = [l for l in langs if l in sub.index and l == anchor] + \
                [l for l in langs if l in sub.index and l != anchor]
            facets[task, cond] = sub.loc[order]
    titles = []
    for (task, cond), sub in facets.items():
        targets = sub[sub.index != anchor]["diff"].astype(float)
        mean = f" (mean target gain {targets.mean():+.3f})" if targets.notna().any() else ""
        titles.append(f"{task} · {cond}{mean}")
    fig = _subplots(len(tasks), len(conditions), titles)
    shown: set[str] = set()
    sig_name = f"* p < {alpha:g}"
    for (task, cond), sub in facets.items():
        r, c = tasks.index(task) + 1, conditions.index(cond) + 1
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
        sig = np.isfinite(p_all) & (p_all < alpha)
        if sig.any():
            top = np.where(np.isfinite(hi_all), np.maximum(hi_all, d_all), d_all)[sig]
            fig.add_trace(go.Scatter(
                x=list(sub.index[sig]), y=top, mode="text", text=["*"] * int(sig.sum()),
                textposition="top center", textfont=dict(size=16, color=FIT_COLOR),
                name=sig_name, showlegend=False, hoverinfo="skip", cliponaxis=False,
            ), row=r, col=c)
        targets = d_all[~is_anchor]
        if np.isfinite(targets).any():
            fig.add_hline(y=float(np.nanmean(targets)),
                          line=dict(color=FIT_COLOR, width=1, dash="dot"), row=r, col=c)
        if is_anchor.any() and (~is_anchor).any():
            fig.add_vline(x=0.5, line=dict(color="#bbbbbb", width=1, dash="dot"), row=r, col=c)
        fig.add_hline(y=0, line=dict(color=FIT_COLOR, width=1), row=r, col=c)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(sub.index),
                         row=r, col=c)
    for i, task in enumerate(tasks):
        fig.update_yaxes(title_text=f"Δ {chosen[task]} vs {base}", row=i + 1, col=1)
    fig.add_annotation(
        text=f"bars: steered − {base}, error bars: 95% CI; {sig_name} vs {base}; "
             "dotted line: mean target gain"
             + (f"; hatched: anchor {anchor}" if anchor is not None else ""),
        xref="paper", yref="paper", x=0, y=0, yshift=-40, xanchor="left", yanchor="top",
        showarrow=False, font=dict(size=11, color="#555555"), name="footnote")
    fig.update_layout(margin_b=90)
    return apply_style(fig, title=title, height=PANEL_HEIGHT * len(tasks) + 90,
                       width=_width_for(len(conditions)))


# =============================================================================================
# Clusters
# =============================================================================================

def cluster_by_layer(metrics_df: pd.DataFrame, metric: str = "silhouette_cosine", *,
                     alignment: str | None = "parallel_cosine", base: str | None = None,
                     per_lang: bool = False, title: str | None = None) -> go.Figure:
    """A cluster metric per layer before (``base``) and after steering (other conditions).

    ``metrics_df`` is ``cluster_metrics`` output (concatenated over conditions): rows
    ``condition, layer, lang, metric, value``, where ``lang`` is ``"all"`` (or "") for values
    pooled over languages. Left panel: ``metric``; right panel: the alignment metric
    ``alignment`` (default ``parallel_cosine``, the mean cosine of parallel anchor/target
    pairs) if present. One line per condition, the unsteered one (``base``, by default the
    first of :data:`BASE_NAMES` present) in grey. Each line is the pooled ("all") value where
    there is one, else the mean over languages (said in the panel title). ``per_lang=True``
    draws one line per language and condition instead (language colour, condition as dash).

    >>> df = pd.DataFrame({"condition": ["base", "base", "clas", "clas"] * 2,
    ...                    "layer": [0, 1, 0, 1] * 2, "lang": [""] * 4 + ["de"] * 4,
    ...                    "metric": ["silhouette_cosine"] * 4 + ["parallel_cosine"] * 4,
    ...                    "value": [0.1, 0.2, 0.15, 0.3, 0.9, 0.8, 0.85, 0.7]})
    >>> fig = cluster_by_layer(df)
    >>> [(t.name, t.showlegend) for t in fig.data]
    [('base', True), ('clas', True), ('base', False), ('clas', False)]
    """
    df = _check_frame(metrics_df, ("condition", "layer", "metric", "value"), "metrics_df")
    df["lang"] = df["lang"].fillna("").astype(str) if "lang" in df.columns else ""
    df["lang"] = df["lang"].where(~df["lang"].isin(POOLED_LANGS), "")
    metrics = _ordered(df["metric"])
    if metric not in metrics:
        raise DataValidationError(
            f"metrics_df has no rows with metric {metric!r}; it has {metrics}")
    _check_unique(df, ["condition", "layer", "lang", "metric"], "metrics_df",
                  "one value per condition, layer, language and metric is expected")
    panels = [metric] + ([alignment] if alignment and alignment != metric
                         and alignment in metrics else [])
    conditions = _ordered(df["condition"])
    base = _resolve_base(conditions, base)
    conditions = _base_first(conditions, base)
    ccol = condition_colors(conditions, base=base)
    titles = [metric] + ([f"{alignment} (alignment)"] if len(panels) > 1 else [])
    fig = _subplots(1, len(panels), titles)
    shown: set[str] = set()
    for j, m in enumerate(panels):
        sub = df[df["metric"] == m]
        langs = [l for l in _ordered(sub["lang"]) if l != ""]
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
                    name = f"{lang} · {cond}"
                    fig.add_trace(go.Scatter(
                        x=ls["layer"], y=ls["value"], mode="lines+markers", name=name,
                        line=dict(color=lcol[lang], dash=DASHES[k % len(DASHES)], width=2),
                        legendgroup=name, showlegend=name not in shown,
                        hovertemplate=f"{name}<br>layer %{{x}}<br>{m} = %{{y:.4f}}<extra></extra>",
                    ), row=1, col=j + 1)
                    shown.add(name)
                continue
            if pooled:
                cs = cs[cs["lang"] == ""]
            agg = cs.groupby("layer", sort=True)["value"].mean()
            fig.add_trace(go.Scatter(
                x=agg.index.to_numpy(), y=agg.to_numpy(dtype=float), mode="lines+markers",
                name=cond, line=dict(color=ccol[cond], width=3 if cond == base else 2),
                legendgroup=cond, showlegend=cond not in shown,
                hovertemplate=f"{cond}<br>layer %{{x}}<br>{m} = %{{y:.4f}}<extra></extra>",
            ), row=1, col=j + 1)
            shown.add(cond)
        if langs and not split and not pooled:
            fig.layout.annotations[j].text += f" · mean over {len(langs)} languages"
        fig.update_yaxes(title_text=m, row=1, col=j + 1)
        fig.update_xaxes(title_text="layer", row=1, col=j + 1)
    fig.update_layout(legend_title_text="condition")
    return apply_style(fig, title=title, height=PANEL_HEIGHT + 40)


def _hover_text(s: Any, width: int = 60, max_chars: int = 240) -> str:
    s = str(s)
    if len(s) > max_chars:
        s = s[: max_chars - 1] + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(s, width) or [""])


def projection_scatter(proj_df: pd.DataFrame, *, base: str | None = None,
                       layer: int | None = None, share_axes: bool = False,
                       marker_size: int = 6, title: str | None = None) -> go.Figure:
    """2-D projection (UMAP / PCA) of sentence representations, coloured by language.

    ``proj_df`` is ``project(...)`` output, columns ``x, y, lang, condition, id, text`` (and
    optionally ``layer``; with several layers, pick one with ``layer=``): one panel per
    condition (the unsteered one first: ``base``, by default the first of :data:`BASE_NAMES`
    present), one trace per language and panel; hovering a point shows the sentence id and
    text. Axes are independent unless ``share_axes=True`` (right when one projection was
    fitted for all conditions together, as ``project`` does, so distances compare).

    >>> df = pd.DataFrame({"x": [0.0, 1.0, 0.5, 1.5], "y": [0.0, 1.0, 0.2, 0.9],
    ...                    "lang": ["en", "de"] * 2, "condition": ["clas"] * 2 + ["base"] * 2,
    ...                    "id": ["s1", "s1", "s1", "s1"], "text": ["Hi", "Hallo"] * 2})
    >>> fig = projection_scatter(df)
    >>> [(t.name, t.xaxis) for t in fig.data], fig.data[0].customdata[0].tolist()
    ([('en', 'x'), ('de', 'x'), ('en', 'x2'), ('de', 'x2')], ['s1', 'Hi'])
    """
    df = _check_frame(proj_df, ("x", "y", "lang", "condition", "id", "text"), "proj_df")
    suffix = ""
    if "layer" in df.columns:
        layers = _ordered(df["layer"])
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
    conditions = _ordered(df["condition"])
    base = _resolve_base(conditions, base)
    conditions = _base_first(conditions, base)
    langs = _ordered(df["lang"])
    colors = lang_colors(langs)
    labels = [(f"{c} (before steering)" if c == base else str(c)) + suffix for c in conditions]
    fig = _subplots(1, len(conditions), labels, shared_x=share_axes, shared_y=share_axes)
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
                              f"{html.escape(str(cond))})<br>%{{customdata[1]}}<extra></extra>",
            ), row=1, col=j + 1)
            shown.add(lang)
    fig.update_xaxes(title_text="component 1", showgrid=False)
    fig.update_yaxes(title_text="component 2", showgrid=False, row=1, col=1)
    fig.update_layout(legend_title_text="language", legend_itemsizing="constant")
    return apply_style(fig, title=title, height=PANEL_HEIGHT + 80,
                       width=_width_for(len(conditions)))


def divergence_scatter(points_df: pd.DataFrame, test_df: pd.DataFrame | None = None, *,
                       layer: int | None = None, title: str | None = None) -> go.Figure:
    """Task gain vs change in language-cluster separation, and vs change in alignment.

    ``points_df`` has columns ``lang, gain, delta_separation, delta_alignment`` (one point per
    target language, or per language and strength). Left panel: gain vs ``delta_separation``
    (the "functional divergence" hypothesis), right panel: gain vs ``delta_alignment``; each
    with a least-squares line. ``test_df`` (``divergence_test`` output: ``hypothesis`` in
    separation / alignment, ``r, ci_low, ci_high, p_value, n`` and optionally ``metric, layer,
    method``) is written under the matching panel, one line per row. The points come from one
    layer: a ``test_df`` for several layers (``divergence_test(..., layer="all")``) needs
    ``layer=`` to pick the rows that belong to them.

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
    pts = _check_frame(points_df, ("lang", "gain", "delta_separation", "delta_alignment"),
                       "points_df")
    tests = None
    if test_df is not None:
        tests = _check_frame(test_df, ("hypothesis", "r", "ci_low", "ci_high", "p_value", "n"),
                             "test_df")
        if "layer" in tests.columns:
            layers = _ordered(tests["layer"])
            if layer is not None:
                tests = tests[tests["layer"] == layer]
                if tests.empty:
                    raise DataValidationError(
                        f"test_df has no rows for layer {layer}; it has {layers}")
            elif len(layers) > 1:
                raise DataValidationError(
                    f"test_df holds tests for several layers {layers}: pass layer= (the layer "
                    "the points' deltas come from)")
    panels = [("separation", "delta_separation", "Δ language separation (steered − base)"),
              ("alignment", "delta_alignment", "Δ alignment to anchor (steered − base)")]
    fig = _subplots(1, 2, ["gain vs separation (divergence)", "gain vs alignment"])
    langs = _ordered(pts["lang"])
    colors = lang_colors(langs)
    n_lines = 1
    for j, (hyp, col, label) in enumerate(panels):
        c = j + 1
        xs = pd.to_numeric(pts[col], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(pts["gain"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(xs) & np.isfinite(ys)
        for lang in langs:
            m = ok & (pts["lang"] == lang).to_numpy()
            if not m.any():
                continue
            fig.add_trace(go.Scatter(
                x=xs[m], y=ys[m], mode="markers+text", name=str(lang),
                text=[str(lang)] * int(m.sum()),
                textposition="top center", legendgroup=str(lang), showlegend=j == 0,
                marker=dict(color=colors[lang], size=10, line=dict(width=1, color="white")),
                hovertemplate=f"{lang}<br>{col} = %{{x:.4f}}<br>gain = %{{y:.4f}}<extra></extra>",
            ), row=1, col=c)
        x_ok, y_ok = xs[ok], ys[ok]
        if x_ok.size >= 2 and np.ptp(x_ok) > 0:
            slope, intercept = np.polyfit(x_ok, y_ok, 1)
            line_x = np.array([x_ok.min(), x_ok.max()])
            fig.add_trace(go.Scatter(
                x=line_x, y=slope * line_x + intercept, mode="lines", name="least-squares fit",
                line=dict(color=FIT_COLOR, dash="dash", width=1.5), legendgroup="fit",
                showlegend=j == 0,
                hovertemplate=f"gain = {slope:.3g} · x + {intercept:.3g}<extra></extra>",
            ), row=1, col=c)
        fig.add_hline(y=0, line=dict(color="#bbbbbb", width=1), row=1, col=c)
        fig.add_vline(x=0, line=dict(color="#bbbbbb", width=1), row=1, col=c)
        fig.update_xaxes(title_text=label, row=1, col=c)
        if tests is None:
            lines = [f"n = {int(ok.sum())} points (no test given)"]
        else:
            lines = _test_lines(tests[tests["hypothesis"] == hyp]) or [f"no {hyp} test given"]
        n_lines = max(n_lines, len(lines))
        fig.add_annotation(text="<br>".join(lines), xref="x domain", yref="y domain", x=0, y=0,
                           yshift=-62, xanchor="left", yanchor="top", showarrow=False,
                           align="left", font=dict(size=11), row=1, col=c)
    fig.update_yaxes(title_text="task gain (steered − base)", row=1, col=1)
    fig.update_layout(legend_title_text="language", margin_b=80 + 16 * n_lines)
    return apply_style(fig, title=title, height=PANEL_HEIGHT + 80 + 16 * n_lines)


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


# =============================================================================================
# Saving
# =============================================================================================

STATIC_FORMATS: tuple[str, ...] = ("png", "svg", "pdf", "jpeg", "webp")
#: Chrome / Chromium executables looked for on PATH, then at these absolute paths.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome")
BROWSER_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser",
                 "/usr/bin/google-chrome-stable", "/usr/bin/google-chrome", "/snap/bin/chromium",
                 "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                 "/Applications/Chromium.app/Contents/MacOS/Chromium")
_FIX = ("install a Chromium (Debian/Ubuntu: `apt-get install -y --no-install-recommends "
        "chromium`) or set BROWSER_PATH to a Chrome/Chromium executable; kaleido.get_chrome() "
        "downloads Chrome and fails offline")


class StaticExportWarning(UserWarning):
    """PNG/SVG/PDF export was skipped or failed; the HTML file was still written."""


def _is_exe(p: str | os.PathLike) -> bool:
    return os.path.isfile(p) and os.access(p, os.X_OK)


def _find_browser() -> str | None:
    """A Chrome/Chromium on PATH, at a usual path, or one kaleido downloaded earlier."""
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_exe(found):
            return found
    for p in BROWSER_PATHS:
        if _is_exe(p):
            return p
    try:  # a Chrome fetched by kaleido.get_chrome() on a machine with internet
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False, skip_typical=True)
        if found and _is_exe(found):
            return str(found)
    except Exception:  # noqa: BLE001 (best effort, any failure means "not found")
        pass
    return None


def _export_browser() -> tuple[str | None, str]:
    """(browser path or None, reason)."""
    if importlib.util.find_spec("kaleido") is None:
        return None, ("kaleido is not installed: `pip install 'clas_lens[figures]'` "
                      "(kaleido>=1), then " + _FIX)
    try:
        from importlib.metadata import version

        kver = version("kaleido")
    except Exception:  # noqa: BLE001
        kver = "?"
    if kver.split(".")[0] == "0":
        return None, (f"kaleido {kver} is too old: clas_lens needs kaleido>=1 "
                      "(`pip install 'kaleido>=1,<2'`), which drives a system Chrome")
    env = os.environ.get("BROWSER_PATH")
    if env:
        if _is_exe(env):
            return env, f"kaleido {kver} with the browser at {env} (BROWSER_PATH)"
        return None, (f"BROWSER_PATH={env!r} is not an executable file: fix or unset it; "
                      + _FIX)
    found = _find_browser()
    if found:
        return found, f"kaleido {kver} with the browser at {found}"
    return None, (f"no Chrome/Chromium found (looked for {list(BROWSER_NAMES)} on PATH and at "
                  f"{list(BROWSER_PATHS[:4])}); " + _FIX)


def static_export_available() -> tuple[bool, str]:
    """Whether PNG/SVG/PDF export can run here, and why (or why not, and how to fix it).

    Needs kaleido>=1 and a Chrome/Chromium: ``BROWSER_PATH`` if set, else one on PATH
    (``chromium``, ``google-chrome``...) or at a usual path such as ``/usr/bin/chromium``.

    >>> ok, reason = static_export_available()
    >>> isinstance(ok, bool) and ("browser at" in reason if ok else "BROWSER_PATH" in reason
    ...                           or "kaleido" in reason)
    True
    """
    path, reason = _export_browser()
    return path is not None, reason


def _kaleido_export(fig: go.Figure, formats: Sequence[str], *, browser: str, width: int,
                    height: int, scale: float, timeout: float) -> dict[str, bytes]:
    """Render ``fig`` once per format in one headless browser session (kaleido 1.x)."""
    import kaleido  # lazy: heavy, optional

    async def render() -> dict[str, bytes]:
        out = {}
        async with kaleido.Kaleido(n=1, timeout=timeout, mathjax=False, path=browser) as k:
            for fmt in formats:
                out[fmt] = await k.calc_fig(
                    fig, opts=dict(format=fmt, width=width, height=height, scale=scale))
        return out

    box: dict[str, Any] = {}

    def target() -> None:  # own thread and event loop: works inside Jupyter's running loop
        try:
            box["result"] = asyncio.run(render())
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            box["error"] = e

    thread = threading.Thread(target=target, name="clas_lens-kaleido", daemon=True)
    thread.start()
    thread.join(timeout * len(formats) + 60)
    if thread.is_alive():
        raise TimeoutError(f"kaleido did not finish within {timeout * len(formats) + 60:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def save_figure(fig: go.Figure, path: str | os.PathLike,
                formats: Sequence[str] = ("html", "png", "svg"), width: int | None = None,
                height: int | None = None, *, scale: float = 2.0,
                timeout: float = 120.0) -> dict[str, Path | str]:
    """Write ``fig`` as self-contained HTML (always) and PNG/SVG/PDF when a Chrome is found.

    ``path`` is the file stem; a known extension (``.html``, ``.png``...) is dropped, so
    ``figs/overlap`` and ``figs/overlap.png`` both give ``figs/overlap.html``,
    ``figs/overlap.png``... HTML inlines plotly.js (works offline, ~5 MB) and is written
    atomically. Static formats go through kaleido 1.x and the browser that
    :func:`static_export_available` finds, in one browser session, at ``width`` x ``height``
    (default: the figure's size, else 1000 x 600) times ``scale``. If no browser is found or
    the export fails, nothing is raised: the entry for that format holds a message saying why
    and how to fix it, and a :class:`StaticExportWarning` is emitted.

    Returns ``{format: Path}`` for written files and ``{format: message}`` for skipped ones.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = save_figure(go.Figure(go.Bar(x=["a"], y=[1])), pathlib.Path(d) / "demo.png",
    ...                       formats=("html",))
    ...     out["html"].name, out["html"].stat().st_size > 1_000_000
    ('demo.html', True)
    """
    if not isinstance(fig, go.Figure):
        raise TypeError(f"save_figure needs a plotly go.Figure, got {type(fig).__name__}")
    if isinstance(formats, str):
        formats = (formats,)
    wanted: list[str] = []
    for f in formats:
        f = str(f).lower().lstrip(".")
        f = {"jpg": "jpeg", "htm": "html"}.get(f, f)
        if f not in ("html",) + STATIC_FORMATS:
            raise ValueError(f"unknown figure format {f!r}; choose from "
                             f"{['html', *STATIC_FORMATS]}")
        if f not in wanted:
            wanted.append(f)
    stem = Path(path)
    if stem.suffix.lower().lstrip(".") in ("html", "htm", "jpg", *STATIC_FORMATS):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)

    def target(fmt: str) -> Path:
        return stem.with_name(f"{stem.name}.{fmt}")

    out: dict[str, Path | str] = {}
    page = fig.to_html(include_plotlyjs=True, full_html=True,
                       config={"displaylogo": False, "responsive": True})
    out["html"] = atomic_write_text(target("html"), page)

    static = [f for f in wanted if f != "html"]
    if not static:
        return out
    browser, reason = _export_browser()
    if browser is None:
        msg = f"{'/'.join(s.upper() for s in static)} not written: {reason}. HTML was written."
    else:
        w = int(width or fig.layout.width or DEFAULT_WIDTH)
        h = int(height or fig.layout.height or DEFAULT_HEIGHT)
        try:
            images = _kaleido_export(fig, static, browser=browser, width=w, height=h,
                                     scale=scale, timeout=timeout)
            for fmt in static:
                data = images.get(fmt) or b""
                if not data:
                    raise RuntimeError(f"kaleido returned no {fmt.upper()} bytes")
                out[fmt] = atomic_write_bytes(target(fmt), data)
            return out
        except Exception as e:  # noqa: BLE001 (reported, never raised: HTML is already saved)
            msg = (f"{'/'.join(s.upper() for s in static)} not written: kaleido failed with "
                   f"{type(e).__name__}: {e}. HTML was written. Check that {browser} starts "
                   f"headless (`{browser} --headless --no-sandbox --disable-gpu --dump-dom "
                   f"about:blank`), or set BROWSER_PATH to another Chrome/Chromium.")
    warnings.warn(msg, StaticExportWarning, stacklevel=2)
    for fmt in static:
        out.setdefault(fmt, msg)
    return out
