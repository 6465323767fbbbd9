"""The aligned table ``{lang: {id: text}}`` of a parallel corpus and its record form: the table
of a mapping (:func:`mapping_table`), records ``{"id", "lang", "text"}`` to and from the table
(:func:`records_table`, :func:`table_records`) and their JSON-lines files (:func:`write_records_jsonl`, one file or one ``{lang}.jsonl`` per language).
:class:`~clas_lens.data.corpus.ParallelCorpus` builds and writes itself with them; reading and
checking the files is :mod:`clas_lens.data.loaders`' job.

>>> data, ids = records_table([{"id": "a", "lang": "de", "text": "Hallo."}, {"id": "a", "lang": "en", "text": "Hi."}])
>>> ids, table_records(data, ids, ["en"])
(['a'], [{'id': 'a', 'lang': 'en', 'text': 'Hi.'}])
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from clas_lens.data.loaders import texts_by_language
from clas_lens.errors import DataValidationError
from clas_lens.io import atomic_write_text


def mapping_table(data: Mapping[str, Mapping[str, Any]], langs: Sequence[str]) -> dict[str, dict[str, str]]:
    """The table ``{lang: {id: text}}`` of ``data`` for ``langs`` (ids as strings); a language
    whose value is not a mapping is refused.

    >>> mapping_table({"en": {1: "Hi."}}, ["en"])
    {'en': {'1': 'Hi.'}}
    """
    table: dict[str, dict[str, str]] = {}
    for lang in langs:
        texts = data[lang]
        if not isinstance(texts, Mapping):
            raise DataValidationError(
                f"Language {lang!r}: expected a mapping id -> text, got {type(texts).__name__}."
            )
        table[lang] = {str(k): v for k, v in texts.items()}
    return table


def records_table(
    records: Iterable[Mapping[str, Any]], langs: Sequence[str] | None = None, *, drop_blank: bool = False
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``({lang: {id: text}}, ids)`` of ``records`` (checked by
    :func:`~clas_lens.data.loaders.texts_by_language`; ``langs`` keeps those languages, in that
    order). Items follow the anchor (English) when present, else the first language read.
    ``drop_blank``: records with a blank text are left out (no translation) instead of refused.

    >>> records_table([{"id": 2, "lang": "en", "text": "Hi."}, {"id": 1, "lang": "en", "text": " "}], drop_blank=True)
    ({'en': {'2': 'Hi.'}}, ['2'])
    """
    if drop_blank:  # a blank text is no translation: leave it out, the item is dropped
        records = [r for r in records if not (isinstance(r.get("text"), str) and not r["text"].strip())]
    data = texts_by_language(records, langs)
    first = "en" if "en" in data else next(iter(data))
    return data, list(data[first])


def table_records(data: Mapping[str, Mapping[str, str]], ids: Sequence[str], langs: Sequence[str]) -> list[dict[str, str]]:
    """``[{"id", "lang", "text"}, ...]`` of the table ``data``, grouped by language, in ``ids`` order.

    >>> table_records({"en": {"a": "Hi.", "b": "Bye."}}, ["b", "a"], ["en"])[0]
    {'id': 'b', 'lang': 'en', 'text': 'Bye.'}
    """
    return [{"id": i, "lang": lang, "text": data[lang][i]} for lang in langs for i in ids]


def write_records_jsonl(path: str | os.PathLike, records: Sequence[Mapping[str, str]], langs: Sequence[str]) -> Path:
    """Write ``records`` (of languages ``langs``): one file if ``path`` ends in ``.jsonl``, else
    a folder with one ``{lang}.jsonl`` per language. Written atomically; returns ``path``.

    >>> import tempfile, pathlib
    >>> p = write_records_jsonl(pathlib.Path(tempfile.mkdtemp()) / "c.jsonl", [{"id": "a", "lang": "en", "text": "Hi."}], ["en"])
    >>> p.read_text()
    '{"id": "a", "lang": "en", "text": "Hi."}\\n'
    """
    p = Path(path)

    def lines(keep: Sequence[str]) -> str:
        return "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for lang in keep for r in records if r["lang"] == lang)

    if p.suffix == ".jsonl":
        atomic_write_text(p, lines(langs))
    else:
        p.mkdir(parents=True, exist_ok=True)
        for lang in langs:
            atomic_write_text(p / f"{lang}.jsonl", lines([lang]))
    return p
