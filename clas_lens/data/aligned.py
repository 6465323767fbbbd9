"""The alignment check of parallel texts: unique ids, every id in every language, non-empty
strings. :class:`~clas_lens.data.corpus.ParallelCorpus` runs it on construction.

>>> check_aligned({"en": {"a": "Hi."}, "de": {"a": ""}}, ["a"], ["en", "de"])
Traceback (most recent call last):
...
clas_lens.errors.DataValidationError: Empty (or whitespace-only) text for id 'a' in language 'de'.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from clas_lens.errors import DataValidationError


def check_aligned(data: Mapping[str, Mapping[str, str]], ids: Sequence[str], langs: Sequence[str]) -> None:
    """Raise :class:`~clas_lens.errors.DataValidationError` naming the first id / language
    where ``data`` (``{lang: {id: text}}``) is not aligned on ``ids``.

    >>> check_aligned({"en": {"a": "Hi."}}, ["a"], ["en"]) is None
    True
    """
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise DataValidationError(f"Duplicate id {dup!r} in the corpus ids; ids must be unique.")
    if not ids:
        raise DataValidationError("The corpus has no items.")
    id_set = set(ids)
    for lang in langs:
        extra = [i for i in data[lang] if i not in id_set]
        if extra:
            # An id present in this language but missing in another (or in ``ids``).
            other = next((o for o in langs if extra[0] not in data[o]), None)
            where = f"language {other!r}" if other else "the corpus ids"
            raise DataValidationError(
                f"Corpus is not aligned: id {extra[0]!r} (in {lang!r}) is missing in {where}. "
                "Every id must have a text in every language."
            )
    for lang in langs:
        texts = data[lang]
        missing = [i for i in ids if i not in texts]
        if missing:
            raise DataValidationError(
                f"Corpus is not aligned: id {missing[0]!r} is missing in language {lang!r} "
                f"({len(missing)} of {len(ids)} ids missing there). Every id must have a "
                "text in every language."
            )
        for i in ids:
            t = texts[i]
            if not isinstance(t, str):
                raise DataValidationError(
                    f"Text of id {i!r} in language {lang!r} is {type(t).__name__}, not a string."
                )
            if not t.strip():
                raise DataValidationError(
                    f"Empty (or whitespace-only) text for id {i!r} in language {lang!r}."
                )
