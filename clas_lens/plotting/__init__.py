"""Figures: pure functions from result tables to plotly figures, and one way to save them.

Every figure function takes a result (a tidy ``DataFrame``, a square ``DataFrame`` or arrays),
checks it, and RETURNS a ``plotly.graph_objects.Figure``. Nothing is shown, printed or written.
Nothing here runs a model: the package imports no steering, model or statistics module.

=====================================  ====================  ===================================
function                               module                input
=====================================  ====================  ===================================
:func:`neuron_categories`              :mod:`.neurons`       ``NeuronSet.counts()``
:func:`active_overlap`                 :mod:`.overlap`       ``{lang: [layer, neuron] probs}``
:func:`overlap_heatmap`                :mod:`.overlap`       any square Jaccard table
:func:`activation_prob_distributions`  :mod:`.neurons`       ``{lang: [layer, neuron] probs}``
:func:`top_attributed_neurons`         :mod:`.neurons`       (layer, neuron, score[, lang])
:func:`sweep_curves`                   :mod:`.gains`         sweep cells
:func:`language_gains`                 :mod:`.gains`         ``evaluate(...)`` table
:func:`cluster_by_layer`               :mod:`.clusters`      ``cluster_metrics`` rows
:func:`projection_scatter`             :mod:`.clusters`      ``project(...)`` rows
:func:`divergence_scatter`             :mod:`.clusters`      points + ``divergence_test`` rows
:func:`save_figure`                    :mod:`.export`        any ``go.Figure``
:func:`export_session`                 :mod:`.export`        (a block: one browser for its figures)
=====================================  ====================  ===================================

Every figure function takes ``size=``: ``None`` (screen), ``"double"`` (a two-column print
figure, ~7.2 in wide) or ``"single"`` (one column, ~3.5 in), with fonts that stay readable
once printed (:data:`clas_lens.plotting.geometry.SIZES`); ``save_figure(..., size=...)`` sizes
a figure for print too. Margins are computed from what is drawn (no band above the plot
without a title) and every legend entry is visible: the legend goes below the plot in rows
when it does not fit beside it (:mod:`clas_lens.plotting.layout`). ``language_overlap`` is
deprecated: the overlap of CLAS's specific neurons is zero by construction, so
:func:`active_overlap` draws the overlap of the languages' active neuron sets instead.

Style lives in ONE place, :mod:`clas_lens.plotting.style`: the ``clas_lens`` template
registered in ``plotly.io.templates``, fixed colours per language (:func:`lang_colors`), per
neuron category and per condition, and :func:`apply_style`, which every figure passes through.
Notebooks call :func:`set_defaults` once to make the template (and, if asked, a renderer)
plotly's default; nothing else in clas_lens touches plotly settings. The unsteered condition
is recognised under any of its names (``"unsteered"``, legacy ``"baseline"`` / ``"base"``) and
labelled "unsteered" in every figure (see docs/glossary.md). Input checks live in
:mod:`clas_lens.plotting.checks`.

:func:`save_figure` (:mod:`clas_lens.plotting.export`) always writes a self-contained HTML file
and writes PNG / SVG / PDF through kaleido 1.x when a Chrome or Chromium is found
(:func:`static_export_available`); a missing browser is reported, never raised.

``BASE_NAMES`` (the old tuple of unsteered names) is deprecated: use
:func:`clas_lens.vocab.is_unsteered`.

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

import warnings
from typing import Any

from clas_lens.plotting.clusters import cluster_by_layer, divergence_scatter, projection_scatter
from clas_lens.plotting.export import (  # noqa: F401 (BROWSER_*, STATIC_FORMATS: old names)
    BROWSER_NAMES,
    BROWSER_PATHS,
    STATIC_FORMATS,
    StaticExportWarning,
    export_session,
    save_figure,
    static_export_available,
)
from clas_lens.plotting.gains import language_gains, sweep_curves
from clas_lens.plotting.geometry import PRINT_DPI, PX_PER_INCH, SIZES, SizePreset
from clas_lens.plotting.neurons import (
    activation_prob_distributions,
    neuron_categories,
    top_attributed_neurons,
)
from clas_lens.plotting.overlap import (
    active_jaccard,
    active_overlap,
    language_overlap,
    overlap_heatmap,
)
from clas_lens.plotting.style import (
    TEMPLATE_NAME,
    apply_style,
    category_colors,
    condition_colors,
    lang_colors,
    set_defaults,
)
from clas_lens.plotting.style import (  # noqa: F401 (old public constants, still importable here)
    BASE_COLOR,
    CI_OPACITY,
    DASHES,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    FIT_COLOR,
    FONT_FAMILY,
    LANG_PALETTE,
    PANEL_HEIGHT,
    POOLED_LANGS,
    SEQUENTIAL,
    SIGN_COLORS,
)
from clas_lens.vocab import CATEGORIES  # noqa: F401 (old public name, now from clas_lens.vocab)
from clas_lens.vocab import LEGACY_UNSTEERED, UNSTEERED

__all__ = [
    "PRINT_DPI",
    "PX_PER_INCH",
    "SIZES",
    "TEMPLATE_NAME",
    "SizePreset",
    "StaticExportWarning",
    "activation_prob_distributions",
    "active_jaccard",
    "active_overlap",
    "apply_style",
    "category_colors",
    "cluster_by_layer",
    "condition_colors",
    "divergence_scatter",
    "lang_colors",
    "language_gains",
    "language_overlap",
    "neuron_categories",
    "overlap_heatmap",
    "projection_scatter",
    "export_session",
    "save_figure",
    "set_defaults",
    "static_export_available",
    "sweep_curves",
    "top_attributed_neurons",
]


def __getattr__(name: str) -> Any:
    """``BASE_NAMES``: deprecated, the names of the unsteered condition (use ``is_unsteered``).

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     from clas_lens.plotting import BASE_NAMES
    >>> BASE_NAMES
    ('unsteered', 'baseline', 'base')
    """
    if name == "BASE_NAMES":
        warnings.warn("clas_lens.plotting.BASE_NAMES is deprecated: use "
                      "clas_lens.vocab.is_unsteered (or UNSTEERED / LEGACY_UNSTEERED)",
                      DeprecationWarning, stacklevel=2)
        return (UNSTEERED, *LEGACY_UNSTEERED)
    raise AttributeError(f"module 'clas_lens.plotting' has no attribute {name!r}")
