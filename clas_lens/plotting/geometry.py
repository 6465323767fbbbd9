"""Page geometry of figures: size presets, text metrics, margins computed from what is drawn,
the legend's place and size, and facet grids.

Owns :class:`SizePreset` and :data:`SIZES` (``"screen"``, the default; ``"double"``, a
two-column print figure ~7.2 in wide; ``"single"``, a one-column print figure ~3.5 in wide),
:func:`get_size`, the estimates of text and legend sizes in layout pixels, :func:`top_margin`
(no band above the plot unless a title or a panel title is there), :func:`axis_band` and
:func:`grid`. Layout pixels are CSS pixels: :data:`PX_PER_INCH` of them make one printed inch
(PDF pages from kaleido use the same), so font sizes in points are ``px * 72 / 96``.

Pure arithmetic on plotly objects: no template, colour or figure function here (those are
:mod:`clas_lens.plotting.style` and :mod:`clas_lens.plotting.layout`).

>>> get_size("single").width, get_size(None).name
(336, 'screen')
>>> grid(12, 4), grid(3, 4)
((3, 4), (1, 3))
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "PRINT_DPI",
    "PX_PER_INCH",
    "SIZES",
    "LegendEntry",
    "SizePreset",
    "axis_band",
    "blocks_of",
    "get_size",
    "grid",
    "is_panel_title",
    "legend_entries",
    "legend_size",
    "line_height",
    "text_width",
    "top_margin",
    "wrap_lines",
]

#: Layout pixels per printed inch (CSS pixels; kaleido's PDF pages use the same scale).
PX_PER_INCH = 96
#: Resolution of PNGs saved for print (``save_figure(..., size="single")``).
PRINT_DPI = 300
_LEGEND_SYMBOL = 40  # symbol + gap before an entry's text (plotly.js: itemwidth 30 + textgap)
_ITEM_GAP = 5


@dataclass(frozen=True)
class SizePreset:
    """How big a figure is and how big its text is (all in layout pixels, 96 per inch).

    ``width``: figure width (None: responsive in HTML, 1000 px when exported); ``font``: axis
    titles and panel titles; ``small``: tick labels, legend and notes; ``title``: the figure
    title; ``panel_height``: plot height of one row of main panels; ``facet_height``: plot height
    of one row of small multiples; ``max_cols``: most small multiples per row; ``wide_cols``:
    most wide panels (scatter plots, bar charts of many languages) per row; ``legend``:
    ``"right"`` (beside the plot when it fits, else below) or ``"bottom"`` (always below);
    ``scale``: pixels per layout pixel of exported PNGs.
    """

    name: str
    width: int | None
    font: float
    small: float
    title: float
    panel_height: int
    facet_height: int
    max_cols: int
    wide_cols: int
    legend: str
    scale: float


#: The size presets: ``single`` and ``double`` are print sizes (fonts 7.5-9 pt once printed at
#: that width, PNGs at :data:`PRINT_DPI`), ``screen`` is the interactive default.
SIZES: dict[str, SizePreset] = {
    "screen": SizePreset("screen", None, 13, 12, 16, 300, 190, 4, 4, "right", 2.0),
    "double": SizePreset("double", round(7.2 * PX_PER_INCH), 12, 11, 13, 230, 130, 4, 2,
                         "right", PRINT_DPI / PX_PER_INCH),
    "single": SizePreset("single", round(3.5 * PX_PER_INCH), 11, 10, 12, 190, 105, 3, 1,
                         "bottom", PRINT_DPI / PX_PER_INCH),
}


def get_size(size: str | SizePreset | None) -> SizePreset:
    """The preset named ``size`` (None: ``"screen"``); a :class:`SizePreset` is returned as is.

    >>> get_size("double").width, round(get_size("double").small * 72 / PX_PER_INCH, 2)
    (691, 8.25)
    >>> get_size("poster")
    Traceback (most recent call last):
    ...
    ValueError: unknown figure size 'poster'; choose from ['screen', 'double', 'single']
    """
    if size is None:
        return SIZES["screen"]
    if isinstance(size, SizePreset):
        return size
    if size not in SIZES:
        raise ValueError(f"unknown figure size {size!r}; choose from {list(SIZES)}")
    return SIZES[size]


_TAG = re.compile(r"<[^>]+>")


def text_width(text: Any, font: float) -> float:
    """Estimated width (px) of one line of ``text`` at ``font`` px (HTML tags ignored).

    >>> text_width("<b>de</b>", 10)
    12.0
    """
    return len(_TAG.sub("", str(text))) * font * 0.6


def line_height(font: float) -> float:
    """Height (px) of one line of text at ``font`` px.

    >>> line_height(10)
    13.0
    """
    return font * 1.3


def wrap_lines(text: str, width_px: float, font: float) -> list[str]:
    """``text`` split at ``<br>`` and wrapped at word boundaries to fit ``width_px``.

    >>> wrap_lines("one two three<br>four", 60, 10)
    ['one two', 'three', 'four']
    """
    per_line = max(8, int(width_px // (font * 0.6)))
    out: list[str] = []
    for line in str(text).split("<br>"):
        words, cur = line.split(" "), ""
        for w in words:
            cand = f"{cur} {w}" if cur else w
            if cur and len(_TAG.sub("", cand)) > per_line:
                out.append(cur)
                cur = w
            else:
                cur = cand
        out.append(cur)
    return out


def is_panel_title(ann: Any) -> bool:
    """Whether an annotation is a panel (subplot) title: above a panel, anchored at its top."""
    return (getattr(ann, "yref", None) or "").endswith("paper") and ann.yanchor == "bottom" \
        and ann.showarrow is False and ann.name is None and ann.y is not None


def top_margin(fig: go.Figure, preset: SizePreset) -> int:
    """Top margin (px) for what is drawn above the plot: the title, panel titles of the top row.

    Without either, only a few pixels (the top tick label's overhang).

    >>> top_margin(go.Figure(), get_size(None))
    10
    >>> top_margin(go.Figure(layout_title_text="t"), get_size(None))
    40
    """
    t = 10.0
    if fig.layout.title.text:
        t = 6 + line_height(preset.title) + 13
    if any(is_panel_title(a) and a.y >= 0.999 for a in fig.layout.annotations):
        t += line_height(preset.font) + 2
    return int(math.ceil(t))


def axis_band(preset: SizePreset, titled: bool = True) -> int:
    """Height (px) under a plot for x tick labels and (if ``titled``) the x-axis title.

    >>> axis_band(get_size(None)), axis_band(get_size("single"), titled=False)
    (52, 24)
    """
    band = 5 + line_height(preset.small) + 6
    if titled:
        band += 6 + line_height(preset.font) + 2
    return int(math.ceil(band))


def grid(n: int, max_cols: int) -> tuple[int, int]:
    """(rows, cols) of a facet wrap of ``n`` panels, at most ``max_cols`` per row.

    >>> grid(20, 3)
    (7, 3)
    """
    cols = max(1, min(int(n), int(max_cols)))
    return math.ceil(n / cols), cols


@dataclass(frozen=True)
class LegendEntry:
    """One line of the legend: the trace's name, legend group and group title."""

    name: str
    group: str
    group_title: str


_NO_LEGEND = {"heatmap", "contour", "histogram2d", "image", "table"}


def legend_entries(fig: go.Figure) -> list[LegendEntry]:
    """The legend entries plotly draws for ``fig`` (traces shown in the legend, in order).

    >>> fig = go.Figure([go.Scatter(name="de"), go.Scatter(name="x", showlegend=False),
    ...                  go.Scatter(name="zh")])
    >>> [e.name for e in legend_entries(fig)]
    ['de', 'zh']
    >>> legend_entries(go.Figure(go.Scatter(name="alone")))  # plotly hides a one-trace legend
    []
    """
    if fig.layout.showlegend is False:
        return []
    shown = [t for t in fig.data
             if t.type not in _NO_LEGEND and t.showlegend is not False and t.visible is not False]
    if len(shown) == 1 and shown[0].showlegend is None and fig.layout.showlegend is None:
        return []
    return [LegendEntry(str(t.name or f"trace {i}"), str(t.legendgroup or ""),
                        str(t.legendgrouptitle.text or "") if "legendgrouptitle" in t else "")
            for i, t in enumerate(shown)]


def blocks_of(entries: Iterable[LegendEntry]) -> list[list[LegendEntry]]:
    """The entries in plotly's legend groups, in order (an entry without a group is its own).

    >>> [len(b) for b in blocks_of([LegendEntry("a", "g", ""), LegendEntry("b", "", ""),
    ...                              LegendEntry("c", "g", "")])]
    [2, 1]
    """
    blocks: dict[str, list[LegendEntry]] = {}
    for i, e in enumerate(entries):
        blocks.setdefault(e.group or f"\0{i}", []).append(e)
    return list(blocks.values())


def legend_size(entries: Iterable[LegendEntry], preset: SizePreset, *, title: str = "",
                width: float | None = None, grouped: bool = False) -> tuple[float, float, int]:
    """(width, height, rows) of a legend: vertical if ``width`` is None, else horizontal rows
    that wrap within ``width`` px, the title on its own row. Horizontal rows hold entries of
    equal width (the widest), or with ``grouped`` plotly's group blocks (each as wide as its
    widest entry, its entries stacked), as plotly.js lays them out.

    >>> es = [LegendEntry(c, c, "") for c in ["en", "de", "es"]]
    >>> legend_size(es, get_size(None))[1] > 2 * legend_size(es, get_size(None), width=500)[1]
    True
    """
    entries = list(entries)
    if not entries:
        return 0.0, 0.0, 0
    item_h = max(16.0, line_height(preset.small)) + 4
    text_w = max(text_width(e.name, preset.small) for e in entries)
    title_h = line_height(preset.small) + 8 if title else 0.0
    if width is None:
        group_titles = {e.group_title for e in entries if e.group_title}
        groups = len({e.group for e in entries})
        has_titles = bool(group_titles)
        h = len(entries) * item_h + title_h + len(group_titles) * (item_h + 2) \
            + (groups - 1) * 8 * has_titles + 10
        w = max(_LEGEND_SYMBOL + text_w + _ITEM_GAP,
                text_width(title, preset.small) + 4) + 12
        return w, h, len(entries)
    if not grouped:
        blocks = [[e] for e in entries]
        widths = [_LEGEND_SYMBOL + text_w + _ITEM_GAP] * len(blocks)
    else:
        blocks = blocks_of(entries)
        widths = [_LEGEND_SYMBOL + max(text_width(e.name, preset.small) for e in b) + _ITEM_GAP
                  for b in blocks]
    rows, x, row_h, total = 1, 0.0, 0.0, 0.0
    for b, w in zip(blocks, widths):
        if x > 0 and x + w > width - 4:
            rows, x, total, row_h = rows + 1, 0.0, total + row_h, 0.0
        x += w
        row_h = max(row_h, len(b) * item_h)
    return float(width), total + row_h + title_h + 8, rows
