"""Language-overlap figures: which neurons two languages share.

=====================================  =================================================
function                               input
=====================================  =================================================
:func:`active_overlap`                 ``{lang: NeuronStats.active_prob(lang)}`` [layer, neuron]
:func:`overlap_heatmap`                any square lang x lang Jaccard table
:func:`language_overlap`               deprecated: the two above, by input type
=====================================  =================================================

Why not the overlap of language-specific neurons: a CLAS specific neuron is active in exactly
one language (docs/methods.md, "Neuron categories"), so the Jaccard overlap of CLAS's specific
sets (``NeuronSet.overlap()``) is zero for every pair by construction and its heatmap says
nothing. :func:`active_overlap` draws instead, for each pair of languages, the Jaccard overlap
of their ACTIVE neuron sets: the (layer, neuron) pairs whose activation probability on the
language's tokens exceeds ``threshold`` (CLAS's ``prob_threshold``, 0.5 by default), pooled over
the chosen layers (:func:`active_jaccard` computes the table). It shows which languages share
most of their working neurons. :func:`overlap_heatmap` still draws any Jaccard table, e.g. the
overlap of LAPE's specific neurons, which may be shared (``NeuronSet.overlap()`` of LAPE).

Pure functions: each checks its input and returns a ``plotly.graph_objects.Figure``.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from clas_lens.errors import DataValidationError
from clas_lens.plotting.checks import as_layer_neuron_array
from clas_lens.plotting.geometry import SizePreset, get_size, line_height
from clas_lens.plotting.layout import finish
from clas_lens.plotting.style import SEQUENTIAL

__all__ = ["active_jaccard", "active_overlap", "language_overlap", "overlap_heatmap"]

_COLORBAR_PX = 90  # colour bar, its ticks and title, right of the heatmap


def overlap_heatmap(overlap_df: pd.DataFrame, *, mask_diagonal: bool = True, decimals: int = 2,
                    zmin: float | None = 0.0, label: str = "Jaccard",
                    size: str | SizePreset | None = None,
                    title: str | None = None) -> go.Figure:
    """Annotated heatmap of a square language x language Jaccard table.

    ``overlap_df``: a square DataFrame, the same languages as index and columns (columns are
    reordered to the index order), values in [0, 1] or NaN. The diagonal (always 1) is left
    blank by default so the colour range shows the overlaps; the colour range runs from
    ``zmin`` (None: the smallest off-diagonal value) to the largest off-diagonal value. Cells
    too small for their number (many languages, print sizes) show colour only; hover shows
    the value. Every language is a tick on both axes.

    >>> ov = pd.DataFrame([[1.0, 0.1], [0.1, 1.0]], index=["de", "zh"], columns=["de", "zh"])
    >>> fig = overlap_heatmap(ov)
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
    lo = float(off.min()) if zmin is None and off.size else float(zmin or 0.0)
    if lo >= zmax:
        lo = 0.0 if zmax > 0 else zmax - 1.0

    p = get_size(size)
    n = len(langs)
    left = p.font * 4.2 + 8
    if p.width is None:
        side = float(min(800, max(240, 44 * n)))
        width = int(side + left + 20 + _COLORBAR_PX)
    else:
        side, width = p.width - left - 10 - _COLORBAR_PX, None
    cell = side / n
    show_text = cell >= 2.6 * p.small and cell >= line_height(p.small)
    fig = go.Figure(go.Heatmap(
        z=z, x=langs, y=langs, text=text, texttemplate="%{text}" if show_text else "",
        textfont=dict(size=p.small), zmin=lo, zmax=zmax, colorscale=SEQUENTIAL, xgap=1,
        ygap=1, name=label,
        colorbar=dict(title=dict(text=label, side="right"), thickness=12 if p.width else 18,
                      tickfont=dict(size=p.small)),
        hovertemplate=f"%{{y}} vs %{{x}}: %{{z:.4f}} ({label})<extra></extra>",
    ))
    ticks = dict(tickmode="array", tickvals=langs, ticktext=[str(l) for l in langs])
    fig.update_xaxes(title_text="language", showgrid=False, showline=False, ticks="", **ticks)
    fig.update_yaxes(title_text="language", autorange="reversed", scaleanchor="x",
                     showgrid=False, showline=False, ticks="", **ticks)
    return finish(fig, size=p, title=title, plot_height=side, width=width)


def active_jaccard(probs: Mapping[str, Any], threshold: float = 0.5, *,
                   layers: Sequence[int] | None = None) -> pd.DataFrame:
    """Jaccard overlap of the languages' active neuron sets (square DataFrame, lang x lang).

    A language's active set: the (layer, neuron) pairs of ``layers`` (default all) whose
    activation probability is above ``threshold``. ``probs`` maps language -> ``[layer,
    neuron]`` probabilities (numpy or a CPU torch tensor), all the same shape. A pair whose
    sets are both empty gets NaN.

    >>> import numpy as np
    >>> p = {"de": np.array([[0.9, 0.8, 0.1]]), "zh": np.array([[0.9, 0.2, 0.7]])}
    >>> active_jaccard(p).round(3).to_dict()
    {'de': {'de': 1.0, 'zh': 0.333}, 'zh': {'de': 0.333, 'zh': 1.0}}
    """
    if not isinstance(probs, Mapping) or not probs:
        raise DataValidationError("probs must be a non-empty dict lang -> [layer, neuron] array")
    if not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    arrays = {str(l): as_layer_neuron_array(a, f"probs[{l!r}]") for l, a in probs.items()}
    shapes = {l: a.shape for l, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise DataValidationError(f"probs arrays must all have the same shape; got {shapes}")
    n_layers = next(iter(shapes.values()))[0]
    ids = list(range(n_layers)) if layers is None else [int(l) for l in layers]
    bad = [l for l in ids if not 0 <= l < n_layers]
    if bad or not ids:
        raise DataValidationError(
            f"layers {bad or ids} out of range: the arrays have {n_layers} layers")
    langs = list(arrays)
    act = np.stack([(arrays[l][ids] > threshold).ravel() for l in langs]).astype(np.float64)
    inter = act @ act.T
    sizes = act.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)
    return pd.DataFrame(jac, index=langs, columns=langs)


def active_overlap(probs: Mapping[str, Any], threshold: float = 0.5, *,
                   layers: Sequence[int] | None = None, size: str | SizePreset | None = None,
                   title: str | None = None) -> go.Figure:
    """Heatmap of the Jaccard overlap of the languages' active neuron sets (see the module
    docstring for why this replaces the overlap of CLAS's language-specific neurons).

    ``probs``, ``threshold`` and ``layers`` as in :func:`active_jaccard` (the same input as
    :func:`clas_lens.plotting.activation_prob_distributions`). The colour range spans the
    off-diagonal values, which are high for related languages and for any pair when most
    neurons are all-shared.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = {lang: rng.random((2, 100)) for lang in ["en", "de", "zh"]}
    >>> fig = active_overlap(p)
    >>> list(fig.data[0].x), fig.data[0].colorbar.title.text
    (['en', 'de', 'zh'], 'Jaccard (p > 0.5)')
    """
    table = active_jaccard(probs, threshold, layers=layers)
    return overlap_heatmap(table, zmin=None, label=f"Jaccard (p > {threshold:g})", size=size,
                           title=title)


def language_overlap(overlap: pd.DataFrame | Mapping[str, Any], **kwargs: Any) -> go.Figure:
    """Deprecated: use :func:`active_overlap` (active neuron sets) or :func:`overlap_heatmap`.

    A DataFrame (e.g. ``NeuronSet.overlap()``) is drawn by :func:`overlap_heatmap`, as before;
    a dict of activation probabilities by :func:`active_overlap`. Either way a
    ``DeprecationWarning`` explains that the overlap of CLAS's specific neurons is zero by
    construction.

    >>> import warnings
    >>> ov = pd.DataFrame([[1.0, 0.0], [0.0, 1.0]], index=["de", "zh"], columns=["de", "zh"])
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     fig = language_overlap(ov)
    >>> fig.data[0].type, w[0].category.__name__
    ('heatmap', 'DeprecationWarning')
    """
    warnings.warn(
        "plotting.language_overlap is deprecated: CLAS's language-specific neurons never "
        "overlap, so NeuronSet.overlap() of CLAS is all zeros. Use "
        "plotting.active_overlap({lang: stats.active_prob(lang)}) for the overlap of the "
        "languages' active neuron sets, or plotting.overlap_heatmap(df) for any Jaccard table",
        DeprecationWarning, stacklevel=2)
    if isinstance(overlap, Mapping):
        return active_overlap(overlap, **kwargs)
    return overlap_heatmap(overlap, **kwargs)
