"""clas_lens.plotting (the package): every old public name importable, the docstring examples of
all its modules, and what importing it does (and does not) load."""
from __future__ import annotations

import doctest
import subprocess
import sys
import warnings

import pytest

from clas_lens import plotting
from clas_lens.plotting import (
    checks,
    clusters,
    export,
    gains,
    geometry,
    layout,
    neurons,
    overlap,
    style,
)

MODULES = (plotting, style, checks, neurons, gains, clusters, export, geometry, layout, overlap)

OLD_PUBLIC = ("TEMPLATE_NAME", "FONT_FAMILY", "DEFAULT_WIDTH", "DEFAULT_HEIGHT", "PANEL_HEIGHT",
              "CI_OPACITY", "SEQUENTIAL", "BASE_COLOR", "POOLED_LANGS", "FIT_COLOR",
              "SIGN_COLORS", "DASHES", "LANG_PALETTE", "CATEGORIES", "STATIC_FORMATS",
              "BROWSER_NAMES", "BROWSER_PATHS", "StaticExportWarning", "activation_prob_distributions",
              "apply_style", "category_colors", "cluster_by_layer", "condition_colors",
              "divergence_scatter", "lang_colors", "language_gains", "language_overlap",
              "neuron_categories", "projection_scatter", "save_figure", "set_defaults",
              "static_export_available", "sweep_curves", "top_attributed_neurons")
#: added with the print layout (issue 15): size presets and the active-neuron overlap
NEW_PUBLIC = ("SIZES", "SizePreset", "PRINT_DPI", "PX_PER_INCH", "active_jaccard",
              "active_overlap", "overlap_heatmap", "export_session")


def test_docstring_examples_run():
    attempted = failed = 0
    for mod in MODULES:
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        attempted += result.attempted
        failed += result.failed
    assert attempted > 15 and failed == 0


def test_every_old_public_name_is_still_importable():
    for name in OLD_PUBLIC:
        assert hasattr(plotting, name), name
    for name in NEW_PUBLIC:
        assert hasattr(plotting, name), name
    assert set(plotting.__all__) <= set(OLD_PUBLIC) | set(NEW_PUBLIC)
    from clas_lens import save_figure
    from clas_lens.vocab import CATEGORIES

    assert save_figure is plotting.save_figure and plotting.CATEGORIES is CATEGORIES


def test_base_names_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="is_unsteered"):
        names = plotting.BASE_NAMES
    assert set(names) == {"unsteered", "baseline", "base"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        plotting.nope  # noqa: B018
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from clas_lens.plotting import FONT_FAMILY  # noqa: F401 (no warning for the others)


def test_importing_plotting_changes_no_plotly_default_and_loads_no_kaleido():
    code = ("import plotly.io as pio; t = pio.templates.default; import sys, clas_lens.plotting; "
            "assert pio.templates.default == t, pio.templates.default; "
            "assert 'clas_lens' in pio.templates; "
            "print('kaleido' in sys.modules, 'choreographer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]



def test_plotting_imports_no_model_running_module():
    # pure functions of tables and arrays: no steering, model, statistics or model-running module
    code = ("import sys, clas_lens.plotting; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in ("
            "['clas_lens', 'steering'], ['clas_lens', 'models'], ['clas_lens', 'stats'], "
            "['clas_lens', 'generation'], ['clas_lens', 'evaluation'], ['clas_lens', 'sweep'], "
            "['clas_lens', 'clusters'], ['clas_lens', 'attribution'], ['clas_lens', 'sites'], "
            "['clas_lens', 'batching'], ['clas_lens', 'pipeline'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
