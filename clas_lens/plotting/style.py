"""Figure style: the ``clas_lens`` plotly template, fonts, sizes, colours and panel layout.

The only place with plotting settings. It owns the template registered in
``plotly.io.templates`` (registered on import, never made the default on import),
:func:`set_defaults` (the ONE helper that changes plotly's global template and renderer),
:func:`apply_style` (every figure passes through it), the fixed colours per language
(:func:`lang_colors`: the same language has the same colour in every figure), per neuron
category (:func:`category_colors`, legend labels in :data:`CATEGORY_LABELS`) and per condition
(:func:`condition_colors`), how conditions are named in figures (:func:`condition_label`: the
unsteered condition is always "unsteered", see docs/glossary.md) and the panel grid
(:func:`subplots`, :func:`width_for`).

>>> apply_style(go.Figure()).layout.template.layout.font.family == FONT_FAMILY
True
"""
from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from clas_lens.plotting.geometry import SizePreset, get_size, top_margin
from clas_lens.vocab import CATEGORIES, UNSTEERED, is_unsteered

__all__ = [
    "BASE_COLOR",
    "CATEGORY_LABELS",
    "CI_OPACITY",
    "CONDITION_PALETTE",
    "DASHES",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "FIT_COLOR",
    "FONT_FAMILY",
    "LANG_PALETTE",
    "PANEL_HEIGHT",
    "POOLED_LANGS",
    "SEQUENTIAL",
    "SIGN_COLORS",
    "TEMPLATE_NAME",
    "apply_style",
    "category_colors",
    "condition_colors",
    "condition_label",
    "lang_colors",
    "resolve_unsteered",
    "rgba",
    "set_defaults",
    "subplots",
    "template_for",
    "unsteered_first",
    "width_for",
]

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

#: Legend label of each neuron category of :data:`clas_lens.vocab.CATEGORIES`.
CATEGORY_LABELS: dict[str, str] = {
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
#: Colours for steered conditions, in order of first appearance (the unsteered one is grey).
CONDITION_PALETTE: tuple[str, ...] = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                      "#e6ab02", "#a6761d", "#1f78b4")


def _template() -> go.layout.Template:
    tpl = go.layout.Template(pio.templates["plotly_white"])
    axis = dict(showline=True, linecolor="#444444", linewidth=1, ticks="outside",
                tickcolor="#444444", gridcolor="#e8e8e8", zeroline=False,
                title=dict(standoff=8))
    tpl.layout.update(
        font=dict(family=FONT_FAMILY, size=13, color="#222222"),
        title=dict(x=0.01, xanchor="left", font=dict(size=16), automargin=True),
        colorway=list(CONDITION_PALETTE),
        margin=dict(l=70, r=30, t=10, b=60),
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
_SIZED: dict[SizePreset, go.layout.Template] = {}


def template_for(size: str | SizePreset | None = None) -> go.layout.Template:
    """The ``clas_lens`` template with the font sizes of a size preset (None: the registered
    screen template itself). Fonts live in the template so that every axis of a large grid
    gets them at once.

    >>> t = template_for("single")
    >>> t.layout.xaxis.tickfont.size, t.layout.font.size, t.layout.font.family == FONT_FAMILY
    (10, 11, True)
    """
    _ensure_template()
    p = get_size(size)
    if p == get_size(None):
        return pio.templates[TEMPLATE_NAME]
    if p not in _SIZED:
        tpl = go.layout.Template(pio.templates[TEMPLATE_NAME])
        axis = dict(tickfont=dict(size=p.small), title=dict(font=dict(size=p.font)))
        tpl.layout.update(font=dict(size=p.font), title=dict(font=dict(size=p.title)),
                          legend=dict(font=dict(size=p.small), title=dict(font=dict(
                              size=p.small)), grouptitlefont=dict(size=p.small)),
                          hoverlabel=dict(font=dict(size=p.small)), xaxis=axis, yaxis=axis)
        _SIZED[p] = tpl
    return _SIZED[p]


def apply_style(fig: go.Figure, *, title: str | None = None, width: int | None = None,
                height: int | None = None,
                size: str | SizePreset | None = None) -> go.Figure:
    """Give ``fig`` the shared ``clas_lens`` template (and a title / size); return it.

    Every figure of ``clas_lens.plotting`` passes through here; use it on hand-made figures
    too so they match. ``size`` (``"single"`` / ``"double"``) takes the fonts of that print
    preset (:func:`template_for`). Unless ``fig`` sets its own top margin, the margin is
    computed from what is drawn above the plot: a title, panel titles, or (with neither) a few
    pixels only.

    >>> fig = apply_style(go.Figure(go.Bar(x=["a"], y=[1])), title="demo", height=300)
    >>> fig.layout.title.text, fig.layout.height, fig.layout.margin.t
    ('demo', 300, 40)
    >>> apply_style(go.Figure(go.Bar(x=["a"], y=[1]))).layout.margin.t
    10
    >>> fig.layout.template.layout.font.family == FONT_FAMILY
    True
    """
    fig.update_layout(template=template_for(size))
    if title is not None:
        fig.update_layout(title_text=title)
    if width is not None:
        fig.update_layout(width=width)
    if height is not None:
        fig.update_layout(height=height)
    if fig.layout.margin.t is None:
        fig.update_layout(margin_t=top_margin(fig, get_size(size)))
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


def resolve_unsteered(conditions: Iterable[Any], base: str | None) -> str | None:
    """The unsteered (reference) condition's name: ``base`` if given, else the first condition
    that :func:`clas_lens.vocab.is_unsteered` recognises ("unsteered" or a legacy name), or None.

    >>> resolve_unsteered(["clas", "baseline"], None), resolve_unsteered(["clas"], None)
    ('baseline', None)
    >>> resolve_unsteered(["clas", "unsteered"], "clas")
    'clas'
    """
    if base is not None:
        return base
    return next((c for c in conditions if is_unsteered(c)), None)


def unsteered_first(conditions: Sequence[Any], base: str | None) -> list[Any]:
    """``conditions`` with ``base`` (if present) moved to the front.

    >>> unsteered_first(["clas", "unsteered", "int_mu"], "unsteered")
    ['unsteered', 'clas', 'int_mu']
    """
    return ([base] if base in conditions else []) + [c for c in conditions if c != base]


def condition_label(condition: Any) -> str:
    """How a condition is named in figures: "unsteered" for the unsteered condition under any
    of its names (legacy "baseline" / "base" included), the condition itself otherwise.

    >>> condition_label("baseline"), condition_label("base"), condition_label("clas")
    ('unsteered', 'unsteered', 'clas')
    """
    return UNSTEERED if is_unsteered(condition) else str(condition)


def condition_colors(conditions: Iterable[str], base: str | None = None) -> dict[str, str]:
    """Colour per condition: the unsteered one grey, the others from a fixed palette in order.

    ``base=None`` finds the unsteered condition with :func:`resolve_unsteered`.

    >>> condition_colors(["unsteered", "clas", "int_mu"])
    {'unsteered': '#7f7f7f', 'clas': '#1b9e77', 'int_mu': '#d95f02'}
    >>> condition_colors(["clas", "baseline"])["baseline"] == BASE_COLOR
    True
    """
    conditions = list(conditions)
    base = resolve_unsteered(conditions, base)
    out: dict[str, str] = {}
    i = 0
    for cond in conditions:
        if cond in out:
            continue
        if cond == base:
            out[cond] = BASE_COLOR
        else:
            out[cond] = CONDITION_PALETTE[i % len(CONDITION_PALETTE)]
            i += 1
    return out


def rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` with an opacity, as plotly's ``rgba(...)`` string.

    >>> rgba("#1f77b4", 0.12)
    'rgba(31,119,180,0.12)'
    """
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def subplots(rows: int, cols: int, titles: Sequence[str] | None = None, *,
             shared_x: bool | str = False, shared_y: bool | str = False,
             h_spacing: float | None = None, v_spacing: float | None = None) -> go.Figure:
    """``make_subplots`` with the package's spacing rules (tighter between many columns);
    ``h_spacing`` / ``v_spacing`` (fractions of the plot area) override them.

    >>> fig = subplots(1, 2, ["left", "right"])
    >>> [a.text for a in fig.layout.annotations]
    ['left', 'right']
    """
    h = min(0.1 if cols <= 3 else 0.06, 0.5 / (cols - 1)) if cols > 1 else 0.0
    v = min(0.12, 0.5 / (rows - 1)) if rows > 1 else 0.0
    if h_spacing is not None and cols > 1:
        h = min(float(h_spacing), 0.9 / (cols - 1))
    if v_spacing is not None and rows > 1:
        v = min(float(v_spacing), 0.9 / (rows - 1))
    return make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) if titles else None,
                         shared_xaxes=shared_x, shared_yaxes=shared_y,
                         horizontal_spacing=h, vertical_spacing=v)


def width_for(cols: int) -> int | None:
    """A fixed width only for wide grids (others stay responsive in HTML).

    >>> width_for(2), width_for(4)
    (None, 1280)
    """
    return None if cols <= 3 else 320 * cols
