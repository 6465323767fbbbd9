"""as_corpus / DictCorpus: the one adapter from a dict or corpus-like object to a corpus."""
from __future__ import annotations

import pytest

from clas_lens.data.adapter import DictCorpus, as_corpus
from clas_lens.data.corpus import ParallelCorpus
from clas_lens.errors import DataValidationError


def test_dict_becomes_a_dict_corpus():
    c = as_corpus({"en": ["a cat", "a dog"], "de": ["eine Katze", "ein Hund"]})
    assert isinstance(c, DictCorpus)
    assert c.langs == ["en", "de"] and c.ids == ["0", "1"] and len(c) == 2
    assert c.texts("de") == ["eine Katze", "ein Hund"]
    assert c.hash() == DictCorpus({"en": ["a cat", "a dog"], "de": ["eine Katze", "ein Hund"]}).hash()
    assert c.hash() != DictCorpus({"en": ["a cat", "a bird"], "de": ["eine Katze", "ein Hund"]}).hash()


def test_corpus_like_objects_pass_unchanged(corpus):
    assert as_corpus(corpus) is corpus
    assert isinstance(corpus, ParallelCorpus)


def test_errors_name_the_caller_and_the_problem():
    with pytest.raises(DataValidationError, match=r"collect_stats needs a parallel corpus .* got list without \.langs"):
        as_corpus(["a"], what="collect_stats")
    with pytest.raises(DataValidationError, match="same number of sentences"):
        as_corpus({"en": ["a", "b"], "de": ["c"]})
    with pytest.raises(DataValidationError, match="no languages"):
        DictCorpus({})
