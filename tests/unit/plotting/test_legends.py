"""The legend test: every figure family, built with 12 and with 20 languages (codes from
clas_lens.languages.LANGUAGES) on screen and at the print sizes, names every language and
leaves room for what it draws.

Not the mirror of one module: it checks every figure function (clas_lens.plotting.neurons,
.overlap, .gains, .clusters) against the page rules of clas_lens.plotting.layout, so it covers
them all. Where a language is named:
- in the legend (a trace shown in the legend with that name, or in that legend group): neuron
  categories, activation ECDFs (pooled and per layer), sweep curves (overlaid and small
  multiples), cluster metrics per language, projection, divergence, top neurons per language;
- as an axis tick (every language listed in ``tickvals``): language gains (x axis of every
  panel), the overlap heatmap (both axes), which have no language legend by design.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from clas_lens import plotting
from clas_lens.languages import LANGUAGES
from clas_lens.plotting import geometry

TICKS = {"language_gains", "active_overlap"}
SIZES = [(12, None), (20, None), (12, "single"), (20, "single"), (20, "double")]


def _families(langs: list[str], size: str | None, title: str | None) -> dict:
    rng = np.random.default_rng(len(langs))
    kw = dict(size=size, title=title)
    out = {}
    rows = [(layer, cat, "", c) for layer in range(6) for cat, c in
            (("all_shared", 100), ("partial_shared", 300), ("non_activated", 500))]
    rows += [(layer, "specific", l, 5 + i) for layer in range(6) for i, l in enumerate(langs)]
    out["neuron_categories"] = plotting.neuron_categories(
        pd.DataFrame(rows, columns=["layer", "category", "lang", "count"]), **kw)
    probs = {l: rng.beta(0.5 + 0.05 * i, 2, size=(3, 60)) for i, l in enumerate(langs)}
    out["active_overlap"] = plotting.active_overlap(probs, **kw)
    out["activation_prob_distributions"] = plotting.activation_prob_distributions(probs, **kw)
    out["activation_by_layer"] = plotting.activation_prob_distributions(probs, by_layer=True,
                                                                       **kw)
    sweep = pd.DataFrame([dict(task=t, lang=l, metric="accuracy", beta=b, value=v,
                               ci_low=v - 0.1, ci_high=v + 0.1)
                          for t in ("cloze", "nli") for l in langs for b in (0.0, 0.2, 0.5)
                          for v in [rng.random()]])
    out["sweep_small_multiples"] = plotting.sweep_curves(sweep, **kw)
    out["sweep_overlaid"] = plotting.sweep_curves(sweep, facet=None, **kw)
    ev = pd.DataFrame([dict(task="cloze", lang=l, condition=c, metric="accuracy", diff=d,
                            diff_ci_low=d - 0.1, diff_ci_high=d + 0.1, p_value=rng.random())
                       for c in ("unsteered", "clas", "int_mu") for l in langs
                       for d in [0.0 if c == "unsteered" else rng.normal(0, 0.05)]])
    out["language_gains"] = plotting.language_gains(ev, anchor=langs[0], **kw)
    met = pd.DataFrame([dict(condition=c, layer=layer, lang=l, metric=m, value=rng.random())
                        for c in ("unsteered", "clas") for layer in range(6) for l in langs
                        for m in ("silhouette_cosine", "parallel_cosine")])
    out["cluster_by_layer"] = plotting.cluster_by_layer(met, per_lang=True, **kw)
    proj = pd.DataFrame([dict(x=rng.normal(), y=rng.normal(), lang=l, condition=c, id=f"s{i}",
                              text="t") for c in ("unsteered", "clas") for l in langs
                         for i in range(5)])
    out["projection_scatter"] = plotting.projection_scatter(proj, **kw)
    n = len(langs)
    pts = pd.DataFrame({"lang": langs, "gain": rng.normal(0, 0.05, n).round(2),
                        "delta_separation": rng.normal(0, 0.03, n).round(2),
                        "delta_alignment": rng.normal(0, 0.005, n).round(3)})
    out["divergence_scatter"] = plotting.divergence_scatter(pts, **kw)
    attr = pd.concat([pd.DataFrame({"layer": i % 6, "neuron": np.arange(8),
                                    "score": rng.normal(size=8), "lang": l})
                      for i, l in enumerate(langs)])
    out["top_attributed_neurons"] = plotting.top_attributed_neurons(attr, k=5, **kw)
    return out


@lru_cache(maxsize=None)
def built(n: int, size: str | None, title: str | None = None) -> tuple:
    langs = list(LANGUAGES)[:n]
    return tuple(langs), _families(langs, size, title)


FAMILIES = list(_families(list(LANGUAGES)[:3], None, None))


def _named_in_legend(fig) -> set[str]:
    names: set[str] = set()
    if fig.layout.showlegend is False:
        return names
    for t in fig.data:
        if t.showlegend is False or t.type == "heatmap" or t.visible is False:
            continue
        names.add(str(t.name))
        if t.legendgroup:
            names.add(str(t.legendgroup))
    return names


@pytest.mark.parametrize("n,size", SIZES)
def test_every_language_is_named(n, size):
    langs, figs = built(n, size)
    assert set(figs) == set(FAMILIES)
    for family, fig in figs.items():
        if family == "language_gains":
            ticked = [list(ax.tickvals) for ax in fig.select_xaxes() if ax.tickvals is not None]
            assert ticked and all(set(t) == set(langs) for t in ticked), family
        elif family == "active_overlap":
            assert list(fig.layout.xaxis.tickvals) == list(langs), family
            assert list(fig.layout.yaxis.tickvals) == list(langs), family
        else:
            missing = set(langs) - _named_in_legend(fig)
            assert not missing, f"{family} (n={n}, size={size}) legend lacks {sorted(missing)}"


@pytest.mark.parametrize("n,size", SIZES)
def test_the_legend_has_room(n, size):
    _, figs = built(n, size)
    p = geometry.get_size(size)
    for family, fig in figs.items():
        entries = geometry.legend_entries(fig)
        lay = fig.layout
        if not entries:
            assert family in TICKS, family
            continue
        title = lay.legend.title.text or ""
        if lay.legend.orientation == "v":
            assert size != "single", family  # one column: the legend always goes below
            _, need, _ = geometry.legend_size(entries, p, title=title)
            assert need <= lay.height - lay.margin.t, (family, need, lay.height)
            assert lay.legend.maxheight >= need, family  # plotly would scroll (and cut) it
        else:
            width = float(lay.width or plotting.DEFAULT_WIDTH) - lay.margin.l - lay.margin.r
            _, need, _ = geometry.legend_size(entries, p, title=title, width=width,
                                              grouped=lay.legend.traceorder == "grouped")
            assert lay.legend.yref == "container" and lay.legend.y == 0, family
            assert lay.margin.b >= geometry.axis_band(p, titled=False) + need, family
            assert lay.legend.maxheight >= need, family


@pytest.mark.parametrize("n,size", SIZES)
def test_margins_follow_what_is_drawn(n, size):
    _, figs = built(n, size)
    p = geometry.get_size(size)
    band = 10 + geometry.line_height(p.font) + 2  # panel titles only
    for family, fig in figs.items():
        lay = fig.layout
        assert lay.title.text is None and lay.margin.t <= band + 1, (family, lay.margin.t)
        has_panel_titles = any(geometry.is_panel_title(a) for a in lay.annotations)
        if not has_panel_titles:
            assert lay.margin.t == 10, family  # no title, no panel title: no band at all
        plot_h = lay.height - lay.margin.t - lay.margin.b
        assert plot_h >= 0.25 * lay.height or family == "top_attributed_neurons", family


def test_a_title_gets_its_band():
    _, plain = built(12, None)
    _, titled = built(12, None, "A title")
    for family, fig in titled.items():
        grew = fig.layout.margin.t - plain[family].layout.margin.t
        assert fig.layout.title.text == "A title" and grew >= 25, (family, grew)


@pytest.mark.parametrize("size", ["single", "double"])
def test_size_presets_for_every_family(size):
    _, figs = built(20 if size == "double" else 12, size)
    p = plotting.SIZES[size]
    for family, fig in figs.items():
        assert fig.layout.width == p.width, family
        tpl = fig.layout.template.layout
        assert tpl.font.size == p.font and tpl.xaxis.tickfont.size == p.small, family
        assert tpl.font.family == plotting.FONT_FAMILY, family
        panel_titles = [a for a in fig.layout.annotations if geometry.is_panel_title(a)]
        assert all(a.font.size == p.font for a in panel_titles), family
    _, screen = built(12, None)
    assert all(f.layout.width in (None, 1280) or f.layout.width > 336 for f in screen.values())
