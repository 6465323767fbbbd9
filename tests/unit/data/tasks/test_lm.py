"""The lm task: held-out corpus sentences (dev / test, never stats), one item per (id, lang)."""
from __future__ import annotations

import pytest

from clas_lens.data.corpus import ParallelCorpus, load_corpus
from clas_lens.data.tasks import load_task
from clas_lens.errors import DataValidationError


def test_lm_items_are_the_heldout_sentences():
    task = load_task("lm", langs=["en", "zh"])
    corpus = load_corpus("default", langs=["en", "zh"], check_langid=False)
    stats = set(corpus.split("stats").ids)
    assert task.mode == "lm" and task.metrics == ["neg_nll", "nll"]
    for lang in ("en", "zh"):
        items = task.items(lang)
        assert len(items) == len(corpus) - len(stats)
        assert not stats & {it.id for it in items} and {it.split for it in items} == {"dev", "test"}
        assert all(it.prompt == corpus.text(it.id, lang) for it in items)
    dev = load_task("lm", langs=["en"], split="dev")
    assert [it.id for it in dev.items("en")] == corpus.split("dev").ids
    assert dev.config["split"] == "dev" and dev.config["split_key"] == "default" and dev.config["corpus"] == "default"
    assert dev.config["split_fractions"] == {"stats": 0.4, "dev": 0.2, "test": 0.4}
    with pytest.raises(DataValidationError, match="reserved"):
        load_task("lm", langs=["en"], split="stats")


def test_lm_on_a_given_corpus():
    texts = {"en": [f"Sentence number {k} is here." for k in range(40)]}
    corpus = ParallelCorpus.from_dict(texts, name="mine", check_langid=False)
    task = load_task("lm", langs=["en"], corpus=corpus)
    assert {it.id for it in task.items("en")} == set(corpus.split("dev").ids) | set(corpus.split("test").ids)
