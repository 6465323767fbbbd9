"""Page layout of a finished figure: size, fonts, margins, legend, notes, and point labels.

Owns :func:`finish`, the last step of every figure function: it applies the style and a size
preset (:data:`clas_lens.plotting.geometry.SIZES`), computes the margins from what is drawn
(no band above the plot without a title), puts the legend beside the plot when all of it fits
there and below the plot (in rows) otherwise, so that no entry is ever cut off, and stacks the
notes (annotations named ``"note..."``, added with :func:`add_note`) under the x axis. It also
owns :func:`facet_spacing` (gaps between small multiples, in pixels) and :func:`place_labels`,
which picks a text position for each labelled point so that no two labels collide (a label
that fits nowhere is left out; hover and the legend still name the point).

>>> fig = finish(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), size="single", title=None,
...              plot_height=150)
>>> fig.layout.width, fig.layout.margin.t, fig.layout.template.layout.font.size
(336, 10, 11)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from clas_lens.plotting.geometry import (
    SizePreset,
    axis_band,
    blocks_of,
    get_size,
    is_panel_title,
    legend_entries,
    legend_size,
    line_height,
    text_width,
    top_margin,
    wrap_lines,
)
from clas_lens.plotting.style import DEFAULT_WIDTH, apply_style

__all__ = ["add_note", "facet_spacing", "finish", "panel_size", "place_labels", "resize"]


def add_note(fig: go.Figure, text: str, *, x: float = 0.0, row: int = 0) -> None:
    """Add a note under the plot: ``row`` 0 right under the x axis, 1 under that...; notes of
    one row sit side by side from ``x`` (a fraction of the plot width). :func:`finish` places
    them and wraps their lines to the width they have.

    >>> fig = go.Figure(); add_note(fig, "n = 3"); fig.layout.annotations[0].name
    'note0'
    """
    fig.add_annotation(text=text, xref="paper", yref="paper", x=x, y=0, xanchor="left",
                       yanchor="top", showarrow=False, align="left", name=f"note{int(row)}",
                       font=dict(color="#444444"))


def _set_fonts(fig: go.Figure, p: SizePreset) -> None:
    """Panel titles and notes: their own font sizes (all other fonts come from the template)."""
    changed = False
    anns = []
    for ann in fig.layout.annotations:
        a = ann.to_plotly_json()
        want = (p.font if is_panel_title(ann) else max(8.0, p.small - 1)
                if (ann.name or "").startswith("note") else None)
        if want is not None and a.get("font", {}).get("size") != want:
            a["font"] = {**a.get("font", {}), "size": want}
            changed = True
        anns.append(a)
    if changed:  # one assignment: far faster than setting each annotation on big grids
        fig.layout.annotations = anns


def _notes(fig: go.Figure, p: SizePreset, band: int, plot_w: float, place: bool) -> float:
    """Total height (px) of the notes wrapped to ``plot_w``; ``place``: also wrap and place
    them under the axis band."""
    rows: dict[int, list] = {}
    for ann in fig.layout.annotations:
        if (ann.name or "").startswith("note"):
            rows.setdefault(int(ann.name[4:] or 0), []).append(ann)
    font = max(8.0, p.small - 1)
    offset = float(band) + 4
    for r in sorted(rows):
        anns = sorted(rows[r], key=lambda a: a.x)
        height = 0.0
        for i, ann in enumerate(anns):
            right = anns[i + 1].x if i + 1 < len(anns) else 1.0
            lines = wrap_lines(ann.text, (right - ann.x) * plot_w - 8, font)
            if place:
                ann.text = "<br>".join(lines)
                ann.yshift = -offset
            height = max(height, len(lines) * line_height(font))
        offset += height + 6
    return offset - band - 4 if rows else 0.0


def finish(fig: go.Figure, *, size: str | SizePreset | None, title: str | None,
           plot_height: float, width: int | None = None, legend: str = "auto",
           x_titled: bool = True) -> go.Figure:
    """Style ``fig``, size it for the preset ``size``, and lay out margins, legend and notes.

    ``plot_height``: height (px) of the plot area (all panel rows and the gaps between them);
    ``width``: the screen width (None: responsive), replaced by the preset's width for print
    sizes. The legend goes beside the plot when all its entries fit in the figure's height
    (``legend="grow"``: the plot grows until they do), otherwise below the plot in rows
    (always below for ``size="single"``). The figure's height is the sum of what is drawn:
    top margin (title, panel titles), plot, x-axis band, notes, legend.

    >>> fig = go.Figure([go.Scatter(name=f"l{i}", y=[i]) for i in range(30)])
    >>> fig = finish(fig, size=None, title="t", plot_height=200)
    >>> fig.layout.legend.orientation, fig.layout.margin.t
    ('h', 40)
    """
    if legend not in ("auto", "grow"):
        raise ValueError(f"legend must be 'auto' or 'grow', got {legend!r}")
    return _finish(fig, get_size(size), title, float(plot_height), width, legend, x_titled)


def _finish(fig: go.Figure, p: SizePreset, title: str | None, plot_h: float,
            width: int | None, legend: str, x_titled: bool) -> go.Figure:
    apply_style(fig, title=title, size=p)
    _set_fonts(fig, p)
    fig_w = p.width if p.width is not None else width
    est_w = float(fig_w or DEFAULT_WIDTH)
    t = top_margin(fig, p)
    left = int(round(p.font * 4.2 + 8))  # plotly's automargin widens it for long tick labels
    right = 10 if p.width else 20
    band = axis_band(p, titled=x_titled)
    entries = legend_entries(fig)
    legend_title = fig.layout.legend.title.text or ""
    vw, vh, _ = legend_size(entries, p, title=legend_title)
    side = p.legend == "right" and bool(entries)
    notes_h = _notes(fig, p, band, est_w - left - right - (vw if side else 0), place=False)
    beside = side and vh <= plot_h + band + notes_h
    if side and not beside and legend == "grow":
        plot_h, beside = vh - band - notes_h, True
    # the notes get the full width unless the legend is beside the plot
    notes_h = _notes(fig, p, band, est_w - left - right - (vw if beside else 0), place=True)
    legend_h = 0.0
    grouped = any(e.group_title for e in entries)
    if beside:
        fig.update_layout(legend=dict(
            orientation="v", xref="paper", x=1.02, xanchor="left", yref="paper", y=1,
            yanchor="top", maxheight=plot_h + band + notes_h + t, entrywidth=None,
            tracegroupgap=8 if grouped else 0))
    elif entries:  # rows below the plot; small legend groups as blocks, else equal entries
        small_groups = max(len(b) for b in blocks_of(entries)) <= 3 and not grouped
        _, legend_h, _ = legend_size(entries, p, title=legend_title,
                                     width=est_w - left - right, grouped=small_groups)
        fig.update_layout(legend=dict(
            orientation="h", xref="paper", x=0, xanchor="left", yref="container", y=0,
            yanchor="bottom", traceorder="grouped" if small_groups else "normal",
            maxheight=legend_h + 40, tracegroupgap=0, entrywidth=None,
            title_side="top left"))
    bottom = band + notes_h + legend_h + (4 if legend_h else 0)
    height = int(math.ceil(t + plot_h + bottom))
    fig.update_layout(width=fig_w, height=height,
                      margin=dict(t=t, b=int(math.ceil(bottom)), l=left, r=right))
    return fig


def resize(fig: go.Figure, size: str | SizePreset | None) -> go.Figure:
    """``fig`` laid out again for the preset ``size`` (a copy; ``fig`` itself if it already
    has that print width). Fonts, width, margins, notes and legend follow the preset; the plot
    height scales with the preset's panel height. A figure function called with ``size=``
    lays out better (panel grid, marker sizes), so prefer that where you can.

    >>> fig = finish(go.Figure(go.Scatter(y=[1, 2])), size=None, title=None, plot_height=300)
    >>> small = resize(fig, "single")
    >>> small.layout.width, small.layout.height < fig.layout.height, fig.layout.width
    (336, True, None)
    """
    p = get_size(size)
    if p.width is not None and fig.layout.width == p.width:
        return fig
    out = go.Figure(fig)
    lay = out.layout
    height = float(lay.height or 600)
    plot_h = height - (lay.margin.t or 0) - (lay.margin.b or 0)
    plot_h *= p.panel_height / get_size(None).panel_height
    return finish(out, size=p, title=lay.title.text, plot_height=max(80.0, plot_h),
                  width=lay.width)


def facet_spacing(rows: int, cols: int, *, row_height: float, col_width: float,
                  preset: SizePreset, panel_titles: bool = True, x_titles: bool = False,
                  y_titles: bool = False, ytick_chars: int = 5) -> tuple[float, float, float]:
    """(h_spacing, v_spacing, plot_height) of a grid of panels ``row_height`` px high and about
    ``col_width`` px wide: gaps sized in pixels for tick labels, panel titles and (if every
    panel has them) axis titles, returned as the fractions ``make_subplots`` takes;
    ``ytick_chars``: the longest y tick label (characters).

    >>> h, v, total = facet_spacing(2, 2, row_height=100, col_width=150,
    ...                             preset=get_size("single"))
    >>> total > 200 and 0 < v < 0.5 and 0 < h < 0.5
    True
    """
    v_gap = 5 + line_height(preset.small) + 6 + (line_height(preset.font) + 4) * panel_titles \
        + (line_height(preset.font) + 6) * x_titles
    h_gap = 5 + text_width("0" * ytick_chars, preset.small) + 8 + (line_height(preset.font) + 6) * y_titles
    total_h = rows * row_height + (rows - 1) * v_gap
    total_w = cols * col_width + (cols - 1) * h_gap
    return h_gap / total_w if cols > 1 else 0.0, v_gap / total_h if rows > 1 else 0.0, total_h


def panel_size(fig: go.Figure, size: str | SizePreset | None, xaxis: str = "xaxis",
               yaxis: str = "yaxis") -> tuple[float, float]:
    """Estimated size (px) of one panel's plot area in ``fig`` once :func:`finish` laid it out
    for ``size`` (a legend beside the plot narrows it).

    >>> fig = finish(go.Figure(go.Scatter(y=[1, 2])), size="double", title=None, plot_height=200)
    >>> [round(v) for v in panel_size(fig, "double")]
    [623, 200]
    """
    lay = fig.layout
    w = float(lay.width or DEFAULT_WIDTH) - (lay.margin.l or 0) - (lay.margin.r or 0)
    if lay.legend.orientation == "v":
        w -= legend_size(legend_entries(fig), get_size(size),
                         title=lay.legend.title.text or "")[0]
    h = float(lay.height) - (lay.margin.t or 0) - (lay.margin.b or 0)
    xd = lay[xaxis].domain or (0, 1)
    yd = lay[yaxis].domain or (0, 1)
    return w * (xd[1] - xd[0]), h * (yd[1] - yd[0])


# text positions tried, in order, and where each puts the label's box relative to the point
_POSITIONS = (("top center", 0.0, 1.0), ("bottom center", 0.0, -1.0),
              ("middle right", 1.0, 0.0), ("middle left", -1.0, 0.0),
              ("top right", 1.0, 1.0), ("top left", -1.0, 1.0),
              ("bottom right", 1.0, -1.0), ("bottom left", -1.0, -1.0))


def _box(px: float, py: float, w: float, h: float, dx: float, dy: float,
         r: float) -> tuple[float, float, float, float]:
    cx = px + dx * (r + w / 2) if dx else px
    cy = py + dy * (r + h / 2) if dy else py
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], *,
                 width_px: float, height_px: float, font: float,
                 marker_px: float = 10.0) -> list[str | None]:
    """A plotly ``textposition`` for each labelled point such that no two labels overlap and no
    label covers another point; None where no position fits (leave that label out).

    Points are mapped to pixels with the axis range plotly picks (data range plus a margin).

    >>> place_labels([0, 1, 1, 2], [0, 1, 1, 2], ["de", "es", "el", "zh"], width_px=300,
    ...              height_px=200, font=12)
    ['top center', 'top center', 'bottom center', 'bottom center']
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)

    def to_px(v: np.ndarray, size: float) -> np.ndarray:
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        span = hi - lo if hi > lo else 1.0
        pad = span * 0.06
        return (v - lo + pad) / (span + 2 * pad) * size

    px, py = to_px(x, width_px), to_px(y, height_px)
    r = marker_px / 2 + 2
    dots = [(a - r + 2, b - r + 2, a + r - 2, b + r - 2) for a, b in zip(px, py)]
    placed: list[tuple] = []
    out: list[str | None] = []
    slack = 0.5 * font
    for i, (a, b, text) in enumerate(zip(px, py, texts)):
        w, h = text_width(text, font) + 2, line_height(font)
        choice = None
        for name, dx, dy in _POSITIONS:
            box = _box(a, b, w, h, dx, dy, r)
            inside = box[0] >= -slack and box[2] <= width_px + slack and box[1] >= -slack \
                and box[3] <= height_px + slack
            if inside and not any(_overlap(box, o) for o in placed) and not any(
                    _overlap(box, d) for j, d in enumerate(dots) if j != i):
                choice = (name, box)
                break
        if choice is None:
            out.append(None)
            continue
        placed.append(choice[1])
        out.append(choice[0])
    return out
