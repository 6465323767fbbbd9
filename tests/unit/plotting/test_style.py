"""clas_lens.plotting.style: one template, one global switch, fixed colours, condition names."""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from clas_lens import plotting
from clas_lens.plotting import style

from ._figs import styled as _styled


def test_template_registered_once_and_applied():
    assert plotting.TEMPLATE_NAME in pio.templates
    fig = plotting.apply_style(go.Figure(), title="t", width=400, height=300)
    assert _styled(fig) and fig.layout.title.text == "t"
    assert (fig.layout.width, fig.layout.height) == (400, 300)


def test_set_defaults_is_the_only_global_switch():
    old_t, old_r = pio.templates.default, pio.renderers.default
    try:
        plotting.set_defaults(renderer="json")
        assert pio.templates.default == "clas_lens" and pio.renderers.default == "json"
    finally:
        pio.templates.default, pio.renderers.default = old_t, old_r


def test_lang_colors_fixed_and_consistent():
    a = plotting.lang_colors(["en", "de", "zh"])
    b = plotting.lang_colors(["zh", "xx", "de"])
    assert a["de"] == b["de"] and a["zh"] == b["zh"]
    assert plotting.lang_colors(["xx"])["xx"] == b["xx"]  # unknown codes: stable hash colour
    assert plotting.lang_colors("zh_Hans")["zh_Hans"] == a["zh"]
    common = plotting.lang_colors(["en", "de", "es", "fr", "ru", "zh", "hi", "ar", "tr", "vi",
                                   "el", "th", "sw", "bg", "ur", "ja", "ro"])
    assert len(set(common.values())) == len(common)  # XNLI + XQuAD languages all distinct
    assert all(c.startswith("#") and len(c) == 7 for c in common.values())


def test_same_language_same_colour_across_figures(eval_df, proj_df, probs):
    want = plotting.lang_colors(["de"])["de"]
    gains = plotting.language_gains(eval_df)
    bars = next(t for t in gains.data if t.name == "target languages")
    assert dict(zip(bars.x, bars.marker.color))["de"] == want
    proj = plotting.projection_scatter(proj_df)
    assert {t.marker.color for t in proj.data if t.name == "de"} == {want}
    ecdf = plotting.activation_prob_distributions(probs)
    assert next(t for t in ecdf.data if t.name == "de").line.color == want



def test_unsteered_condition_named_once():
    assert style.resolve_unsteered(["clas", "unsteered"], None) == "unsteered"
    assert style.resolve_unsteered(["base", "clas"], None) == "base"
    assert style.resolve_unsteered(["clas", "int_mu"], None) is None
    assert [style.condition_label(c) for c in ("unsteered", "baseline", "base", "clas")] == [
        "unsteered", "unsteered", "unsteered", "clas"]
    assert style.unsteered_first(["clas", "base"], "base") == ["base", "clas"]
    colors = plotting.condition_colors(["clas", "unsteered", "int_mu"])
    assert colors["unsteered"] == plotting.BASE_COLOR and colors["clas"] != colors["int_mu"]
    assert style.rgba("#000000", 0.5) == "rgba(0,0,0,0.5)"
    assert style.width_for(3) is None and style.width_for(5) == 1600
