"""The embedded multilingual data: every language's corpus / nli / qa file validates, is in
the language it claims (CLD2, at most 3 flagged items per file) and is large enough.

Parametrised over the 12 core languages, so a language whose files are missing fails here."""
from __future__ import annotations

import collections

import pytest

from clas_lens.data.corpus import CORE_LANGS, EMBEDDED_DIR, ParallelCorpus
from clas_lens.data.hub import read_records
from clas_lens.data.langid import flag_language_mismatches
from clas_lens.data.tasks import load_task

pytestmark = pytest.mark.integration

MAX_FLAGS = 3


def _file(kind: str, lang: str):
    f = EMBEDDED_DIR / kind / f"{lang}.jsonl"
    if not f.exists():
        pytest.fail(f"Embedded file {kind}/{lang}.jsonl is missing.")
    return f


def _flags(texts: dict[str, str], lang: str) -> list:
    return flag_language_mismatches(texts, lang)


@pytest.mark.parametrize("lang", CORE_LANGS)
def test_corpus_file(lang):
    f = _file("corpus", lang)
    files = {"en": _file("corpus", "en"), lang: f} if lang != "en" else {"en": f}
    corpus = ParallelCorpus.from_jsonl(files, check_langid=False)  # validates and aligns with English
    assert len(corpus) >= 200
    flags = _flags(dict(zip(corpus.ids, corpus.texts(lang))), lang)
    assert len(flags) <= MAX_FLAGS, f"{lang}: texts that look like another language: {flags}"


@pytest.mark.parametrize("lang", CORE_LANGS)
def test_nli_file(lang):
    _file("nli", lang)
    task = load_task("nli", langs=[lang])  # validates fields and labels
    items = task.items(lang)
    assert len(items) >= 90
    counts = collections.Counter(it.answer for it in items)
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) >= 0.8 * len(items) / 3, f"unbalanced labels: {dict(counts)}"
    recs = read_records(_file("nli", lang))
    en = {r["id"]: r["label"] for r in read_records(_file("nli", "en"))}
    assert [r["id"] for r in recs] == list(en), "ids differ from the English file"
    wrong = [r["id"] for r in recs if r["label"] != en[r["id"]]]
    assert not wrong, f"labels differ from English for {wrong[:10]}"
    flags = _flags({r["id"]: f"{r['premise']} {r['hypothesis']}" for r in recs}, lang)
    assert len(flags) <= MAX_FLAGS, f"{lang}: items that look like another language: {flags}"


@pytest.mark.parametrize("lang", CORE_LANGS)
def test_qa_file(lang):
    _file("qa", lang)
    task = load_task("qa", langs=[lang])  # validates every answer span at its offset
    assert len(task.items(lang)) >= 60
    recs = read_records(_file("qa", lang))
    en_ids = [r["id"] for r in read_records(_file("qa", "en"))]
    assert [r["id"] for r in recs] == en_ids, "ids differ from the English file"
    flags = _flags({r["id"]: f"{r['context']} {r['question']}" for r in recs}, lang)
    assert len(flags) <= MAX_FLAGS, f"{lang}: items that look like another language: {flags}"


def test_default_corpus_loads_all_languages():
    from clas_lens.data.corpus import load_corpus

    corpus = load_corpus("default", check_langid=False)
    assert corpus.langs[0] == "en" and len(corpus) >= 200
