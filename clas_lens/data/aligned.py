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


def complete_items(
    data: Mapping[str, Mapping[str, str]], ids: Sequence[str] | None, langs: Sequence[str]
) -> tuple[list[str], list[dict]]:
    """Split the items of ``data`` (``{lang: {id: text}}``) into those with a non-empty text in
    every language of ``langs`` and a report of the others.

    Candidates are ``ids`` (default none) followed by every other id some language has, in the
    order the languages list them. Returns the complete ids in that order and, per dropped id,
    ``{"id", "missing": [langs without it], "empty": [langs with a blank text], "reason"}``.

    >>> keep, dropped = complete_items({"en": {"a": "Hi.", "b": "Bye."}, "sw": {"a": "Habari."}}, None, ["en", "sw"])
    >>> keep, dropped[0]["reason"]
    (['a'], 'no text in sw')
    """
    order = list(dict.fromkeys([*(ids or []), *(i for lang in langs for i in data[lang])]))
    keep: list[str] = []
    dropped: list[dict] = []
    for i in order:
        missing = [lang for lang in langs if i not in data[lang]]
        empty = [lang for lang in langs if i in data[lang] and not (isinstance(data[lang][i], str) and data[lang][i].strip())]
        if not missing and not empty:
            keep.append(i)
            continue
        parts = ([f"no text in {', '.join(missing)}"] if missing else []) + (
            [f"empty text in {', '.join(empty)}"] if empty else []
        )
        dropped.append({"id": i, "missing": missing, "empty": empty, "reason": "; ".join(parts)})
    return keep, dropped
