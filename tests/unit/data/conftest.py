"""Shared test data of the data tests: three aligned sentences in English, German and Spanish,
a corpus of them, and a JSON-lines writer."""
from __future__ import annotations

import json

import pytest

from clas_lens.data.corpus import ParallelCorpus

TEXTS = {
    "en": ["The bus leaves every morning at seven.", "My sister plays the piano very well.", "It rained all night long."],
    "de": ["Der Bus fährt jeden Morgen um sieben ab.", "Meine Schwester spielt sehr gut Klavier.", "Es hat die ganze Nacht geregnet."],
    "es": ["El autobús sale todas las mañanas a las siete.", "Mi hermana toca muy bien el piano.", "Llovió toda la noche."],
}


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def write_jsonl():
    """``write_jsonl(path, records) -> path``."""
    return _write_jsonl


@pytest.fixture()
def texts() -> dict[str, list[str]]:
    """``{"en": [...], "de": [...], "es": [...]}``: three aligned sentences."""
    return {lang: list(v) for lang, v in TEXTS.items()}


@pytest.fixture()
def corpus(texts) -> ParallelCorpus:
    return ParallelCorpus.from_dict(texts, ids=["a", "b", "c"])
