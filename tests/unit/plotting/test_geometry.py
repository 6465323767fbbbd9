"""clas_lens.plotting.geometry: size presets, text metrics, margins and legend sizes."""
from __future__ import annotations

import plotly.graph_objects as go
import pytest

from clas_lens.plotting import geometry
from clas_lens.plotting.geometry import LegendEntry, get_size


def test_size_presets_are_print_widths_with_readable_fonts():
    single, double, screen = get_size("single"), get_size("double"), get_size(None)
    assert single.width / geometry.PX_PER_INCH == pytest.approx(3.5)
    assert double.width / geometry.PX_PER_INCH == pytest.approx(7.2, abs=0.01)
    assert screen.width is None and screen.name == "screen" and get_size("screen") is screen
    for p in (single, double):
        points = [px * 72 / geometry.PX_PER_INCH for px in (p.small, p.font, p.title)]
        assert all(7 <= pt <= 10 for pt in points), (p.name, points)  # readable in print
        assert p.scale * geometry.PX_PER_INCH == pytest.approx(geometry.PRINT_DPI)
    assert single.legend == "bottom" and single.wide_cols == 1 and double.wide_cols == 2
    assert get_size(single) is single
    with pytest.raises(ValueError, match="choose from"):
        get_size("a4")


def test_top_margin_follows_what_is_drawn():
    p = get_size(None)
    bare = geometry.top_margin(go.Figure(), p)
    titled = geometry.top_margin(go.Figure(layout_title_text="t"), p)
    panels = go.Figure()
    panels.add_annotation(text="panel", xref="paper", yref="paper", x=0.5, y=1.0,
                          yanchor="bottom", showarrow=False)
    both = go.Figure(panels, layout_title_text="t")
    assert bare == 10  # no title: no band above the plot
    assert titled >= geometry.line_height(p.title) + 10
    assert bare < geometry.top_margin(panels, p) < titled < geometry.top_margin(both, p)
    note = go.Figure()
    note.add_annotation(text="n", xref="paper", yref="paper", y=0, yanchor="top",
                        showarrow=False, name="note0")
    assert geometry.top_margin(note, p) == bare  # notes under the plot take no top room


def test_legend_entries_and_sizes():
    fig = go.Figure([go.Scatter(name="de", legendgroup="de"),
                     go.Scatter(name="de CI", legendgroup="de", showlegend=False),
                     go.Heatmap(z=[[1]]), go.Scatter(name="zh")])
    assert [e.name for e in geometry.legend_entries(fig)] == ["de", "zh"]
    assert geometry.legend_entries(go.Figure(fig, layout_showlegend=False)) == []
    p = get_size(None)
    langs = [LegendEntry(f"l{i:02d}", f"l{i:02d}", "") for i in range(20)]
    w, h, rows = geometry.legend_size(langs, p)
    assert rows == 20 and h > 20 * geometry.line_height(p.small)
    _, h_row, rows_h = geometry.legend_size(langs, p, width=600, grouped=True)
    assert 1 < rows_h < 20 and h_row < h / 3
    long = langs + [LegendEntry("least-squares fit", "fit", "")]
    _, _, rows_equal = geometry.legend_size(long, p, width=600)  # all as wide as the widest
    _, _, rows_blocks = geometry.legend_size(long, p, width=600, grouped=True)
    assert rows_equal > rows_blocks
    assert [len(b) for b in geometry.blocks_of(
        [LegendEntry("a", "g", ""), LegendEntry("b", "", ""), LegendEntry("c", "", "")])] == \
        [1, 1, 1]


def test_grid_and_wrapping():
    assert geometry.grid(12, 4) == (3, 4) and geometry.grid(20, 3) == (7, 3)
    assert geometry.grid(1, 4) == (1, 1)
    lines = geometry.wrap_lines("alpha beta gamma delta<br>epsilon", 70, 10)
    assert lines == ["alpha beta", "gamma delta", "epsilon"]
    assert geometry.text_width("<i>abc</i>", 10) == geometry.text_width("abc", 10)
