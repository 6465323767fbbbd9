"""Task records written in the tests: XNLI and XQuAD records in German (the JSON-lines writer
is in ../conftest.py)."""
from __future__ import annotations

import pytest

CTX = "Die Brücke wurde 1890 gebaut und ist 300 Meter lang."
XNLI_DE = [
    {"premise": "Der Laden öffnet um neun Uhr.", "hypothesis": "Der Laden ist morgens geöffnet.", "label": 0},
    {"premise": "Anna hat einen Hund.", "hypothesis": "Annas Hund ist braun.", "label": 1},
    {"premise": "Es regnet heute den ganzen Tag.", "hypothesis": "Heute ist es trocken.", "label": 2},
]
XQUAD_DE = [
    {"id": "x1", "context": CTX, "question": "Wann wurde die Brücke gebaut?", "answers": {"text": ["1890"], "answer_start": [CTX.index("1890")]}},
    {"id": "x2", "context": CTX, "question": "Wie lang ist die Brücke?", "answers": {"text": ["300 Meter", "300"], "answer_start": [CTX.index("300"), CTX.index("300")]}},
]


@pytest.fixture()
def xnli_de():
    return [dict(r) for r in XNLI_DE]


@pytest.fixture()
def xquad_de():
    return [dict(r) for r in XQUAD_DE]


@pytest.fixture()
def ctx():
    return CTX
