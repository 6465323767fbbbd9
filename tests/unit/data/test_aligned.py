"""data.aligned.check_aligned on plain dicts (ParallelCorpus runs it on construction; its error
messages are tested through the corpus in test_corpus.py)."""
from __future__ import annotations

import pytest

from clas_lens.data.aligned import check_aligned
from clas_lens.errors import DataValidationError


def test_check_aligned():
    data = {"en": {"a": "One.", "b": "Two."}, "de": {"a": "Eins.", "b": "Zwei."}}
    assert check_aligned(data, ["a", "b"], ["en", "de"]) is None
    with pytest.raises(DataValidationError, match="Duplicate id 'a'"):
        check_aligned(data, ["a", "a"], ["en", "de"])
    with pytest.raises(DataValidationError, match="no items"):
        check_aligned({"en": {}}, [], ["en"])
    with pytest.raises(DataValidationError, match=r"id 'b' \(in 'en'\) is missing in the corpus ids"):
        check_aligned(data, ["a"], ["en", "de"])
    with pytest.raises(DataValidationError, match=r"id 'b' is missing in language 'de'"):
        check_aligned({"en": data["en"], "de": {"a": "Eins."}}, ["a", "b"], ["en", "de"])
    with pytest.raises(DataValidationError, match="not a string"):
        check_aligned({"en": {"a": 3}}, ["a"], ["en"])
