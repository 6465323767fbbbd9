"""data.tasks.heldout: corpus tasks read the dev and test parts, never stats (the same hash as
ParallelCorpus.split), refuse "stats" and ranges overlapping it."""
from __future__ import annotations

import pytest

from clas_lens.data.corpus import ParallelCorpus, load_corpus
from clas_lens.data.tasks.heldout import corpus_languages, heldout_ids, task_corpus
from clas_lens.errors import DataValidationError


def test_heldout_is_the_complement_of_stats():
    corpus = task_corpus("default", ["en"])
    ids = heldout_ids(corpus, None, None)
    stats = load_corpus("default", langs=["en"], split="stats", check_langid=False).ids
    assert sorted([i for i, _ in ids] + stats) == sorted(corpus.ids) and not set(stats) & {i for i, _ in ids}
    assert [i for i, label in ids if label == "dev"] == corpus.split("dev").ids
    assert [i for i, _ in heldout_ids(corpus, "test", None)] == corpus.split("test").ids
    assert [i for i, _ in heldout_ids(corpus, (0.6, 1.0), None)] == corpus.split("test").ids


def test_stats_is_refused():
    corpus = task_corpus("default", ["en"])
    with pytest.raises(DataValidationError, match="reserved for neuron statistics"):
        heldout_ids(corpus, "stats", None)
    with pytest.raises(DataValidationError, match="overlaps the 'stats' range"):
        heldout_ids(corpus, (0.3, 0.7), None)
    with pytest.raises(DataValidationError, match="must name the 'stats' split"):
        heldout_ids(corpus, None, {"dev": 0.5, "test": 0.5})


def test_task_corpus_and_languages():
    c = ParallelCorpus.from_dict({"en": ["One two three.", "Four five six."], "de": ["Eins zwei drei.", "Vier fünf sechs."]},
                                 name="mine", check_langid=False)
    assert task_corpus(c, ["de"]).langs == ["de"] and task_corpus(c, None) is c
    assert corpus_languages(c) == ["en", "de"] and "zh" in corpus_languages()
