"""The one adapter from what users pass as a corpus to what analysis functions read.

Analysis functions (statistics, residual representations) need ``.langs``, ``.ids`` and
``.texts(lang)``. :func:`as_corpus` accepts a :class:`~clas_lens.data.corpus.ParallelCorpus`
(or anything with those attributes) unchanged, and wraps a plain ``{lang: [texts]}`` dict in a
:class:`DictCorpus`, so quick experiments need no corpus object.

>>> as_corpus({"en": ["a cat"], "de": ["eine Katze"]}).langs
['en', 'de']
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json


class DictCorpus:
    """A light ``{lang: [texts]}`` stand-in for a :class:`ParallelCorpus` (ids ``"0"``, ``"1"``...).

    No language-code or language-ID validation: analysis functions accept it so quick
    experiments need no corpus object. Aligned lengths are required.

    >>> c = DictCorpus({"en": ["a cat"], "de": ["eine Katze"]})
    >>> c.langs, c.ids, c.texts("de")
    (['en', 'de'], ['0'], ['eine Katze'])
    """

    def __init__(self, data: Mapping[str, Sequence[str]]):
        lengths = {str(lang): len(texts) for lang, texts in data.items()}
        if not lengths:
            raise DataValidationError("The corpus has no languages: pass {lang: [texts]}.")
        if len(set(lengths.values())) > 1:
            raise DataValidationError(
                f"Parallel texts must have the same number of sentences per language; got {lengths}."
            )
        self._data = {str(lang): [str(t) for t in texts] for lang, texts in data.items()}
        self.langs = list(self._data)
        self.ids = [str(i) for i in range(next(iter(lengths.values())))]

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self, lang: str) -> list[str]:
        """Texts of ``lang``, in order."""
        return self._data[lang]

    def hash(self) -> str:
        """sha256 of the content."""
        return sha256_json(self._data)


def as_corpus(corpus: Any, *, what: str = "this function") -> Any:
    """A parallel corpus from a ParallelCorpus-like object or a ``{lang: [texts]}`` dict.

    ``what`` names the caller in the error for anything else.

    >>> as_corpus({"en": ["x", "y"]}).ids
    ['0', '1']
    >>> as_corpus(["x"], what="collect_stats")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: collect_stats needs a parallel corpus (.langs, .ids, .texts(lang)) or a dict {lang: [texts]}; got list without .langs.
    """
    if isinstance(corpus, Mapping):
        return DictCorpus(corpus)
    for attr in ("langs", "ids", "texts"):
        if not hasattr(corpus, attr):
            raise DataValidationError(
                f"{what} needs a parallel corpus (.langs, .ids, .texts(lang)) or a dict "
                f"{{lang: [texts]}}; got {type(corpus).__name__} without .{attr}."
            )
    return corpus
