"""Helpers shared by the figure tests: the languages of the synthetic tables and two checks."""
from __future__ import annotations

import plotly.graph_objects as go

from clas_lens import plotting

LANGS = ["en", "de", "zh", "hi"]


def annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def styled(fig: go.Figure) -> bool:
    return fig.layout.template.layout.font.family == plotting.FONT_FAMILY
