"""clas_lens.plotting.layout: finish (size, margins, legend, notes), resize, label placement."""
from __future__ import annotations

import itertools

import numpy as np
import plotly.graph_objects as go
import pytest

from clas_lens.plotting import geometry, layout
from clas_lens.plotting.geometry import get_size


def _lines(n):
    return go.Figure([go.Scatter(x=[0, 1], y=[i, i + 1], name=f"l{i:02d}", legendgroup=f"l{i:02d}")
                      for i in range(n)])


def test_no_title_no_top_band_and_height_is_the_sum_of_what_is_drawn():
    fig = layout.finish(_lines(3), size=None, title=None, plot_height=300)
    assert fig.layout.margin.t == 10 and fig.layout.title.text is None
    assert fig.layout.height == 10 + 300 + fig.layout.margin.b
    titled = layout.finish(_lines(3), size=None, title="a title", plot_height=300)
    assert titled.layout.margin.t >= 35 and titled.layout.height == fig.layout.height + (
        titled.layout.margin.t - 10)
    assert titled.layout.title.automargin is not False  # plotly may push it further, never less


def test_legend_beside_when_it_fits_below_in_rows_otherwise():
    few = layout.finish(_lines(4), size=None, title=None, plot_height=300)
    assert few.layout.legend.orientation == "v" and few.layout.legend.maxheight > 1
    many = layout.finish(_lines(20), size=None, title=None, plot_height=200)
    leg = many.layout.legend
    assert leg.orientation == "h" and leg.yref == "container" and leg.y == 0
    _, legend_h, _ = geometry.legend_size(geometry.legend_entries(many), get_size(None),
                                          width=1000 - 83, grouped=True)
    assert many.layout.margin.b >= geometry.axis_band(get_size(None)) + legend_h
    grown = layout.finish(_lines(20), size=None, title=None, plot_height=200, legend="grow")
    assert grown.layout.legend.orientation == "v"
    assert grown.layout.height - grown.layout.margin.t >= geometry.legend_size(
        geometry.legend_entries(grown), get_size(None))[1]
    single = layout.finish(_lines(3), size="single", title=None, plot_height=150)
    assert single.layout.legend.orientation == "h"  # one column: never beside
    with pytest.raises(ValueError, match="legend"):
        layout.finish(_lines(2), size=None, title=None, plot_height=10, legend="left")


def test_size_presets_set_width_and_fonts():
    for name in ("single", "double"):
        p = get_size(name)
        fig = go.Figure(_lines(2))
        fig.add_annotation(text="panel", xref="paper", yref="paper", x=0.5, y=1.0,
                           yanchor="bottom", showarrow=False)
        fig = layout.finish(fig, size=name, title="t", plot_height=100, width=1280)
        assert fig.layout.width == p.width  # the screen width is replaced
        tpl = fig.layout.template.layout  # fonts come with the preset's template
        assert tpl.font.size == p.font and tpl.legend.font.size == p.small
        assert tpl.xaxis.tickfont.size == p.small == tpl.yaxis.tickfont.size
        assert tpl.xaxis.title.font.size == p.font and tpl.title.font.size == p.title
        assert fig.layout.annotations[0].font.size == p.font  # panel titles set their own


def test_notes_sit_under_the_axis_and_wrap():
    fig = _lines(2)
    layout.add_note(fig, "a " * 200)
    layout.add_note(fig, "second row", row=1)
    fig = layout.finish(fig, size="single", title=None, plot_height=150)
    first, second = fig.layout.annotations
    assert first.text.count("<br>") >= 3  # wrapped to the figure's width
    band = geometry.axis_band(get_size("single"))
    assert -first.yshift >= band and -second.yshift > -first.yshift
    assert fig.layout.margin.b > -second.yshift


def test_resize_keeps_the_original_and_facet_spacing_fits():
    fig = layout.finish(_lines(5), size=None, title="t", plot_height=300)
    small = layout.resize(fig, "single")
    assert small is not fig and fig.layout.width is None and small.layout.width == 336
    assert layout.resize(small, "single") is small
    h, v, total = layout.facet_spacing(3, 3, row_height=100, col_width=100,
                                       preset=get_size("single"), x_titles=True)
    assert total > 300 and 0 < h < 0.5 and 0 < v < 0.5


def _boxes(xs, ys, texts, positions, w, h, font):
    """Label boxes (px) as plotly draws them, computed independently of layout.place_labels."""
    def to_px(v, size):
        v = np.asarray(v, dtype=float)
        lo, hi = v.min(), v.max()
        span = hi - lo if hi > lo else 1.0
        return (v - lo + 0.06 * span) / (1.12 * span) * size

    out = []
    for px, py, t, pos in zip(to_px(xs, w), to_px(ys, h), texts, positions):
        if pos is None:
            continue
        tw, th = geometry.text_width(t, font), geometry.line_height(font)
        vert, horiz = pos.split()
        cx = px + {"left": -(7 + tw / 2), "center": 0, "right": 7 + tw / 2}[horiz]
        cy = py + {"bottom": -(7 + th / 2), "middle": 0, "top": 7 + th / 2}[vert]
        out.append((cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2))
    return out


@pytest.mark.parametrize("n", [12, 20])
def test_place_labels_never_overlap(n):
    rng = np.random.default_rng(n)
    xs = rng.normal(size=n).round(1)  # rounded: several points coincide
    ys = rng.normal(size=n).round(1)
    xs[1], ys[1] = xs[0], ys[0]
    texts = [f"l{i}" for i in range(n)]
    where = layout.place_labels(xs, ys, texts, width_px=300, height_px=220, font=11)
    assert len(where) == n and sum(w is not None for w in where) >= n // 2
    assert where[0] is not None and where[1] != where[0]  # a coinciding pair: two places or one
    boxes = _boxes(xs, ys, texts, where, 300, 220, 11)
    for a, b in itertools.combinations(boxes, 2):
        assert not (a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5
                    and b[1] < a[3] - 0.5), (a, b)
