"""Parallel corpora: the same items (sentences) in several languages, aligned by id.

A :class:`ParallelCorpus` holds one text per (id, language). It is validated on construction:
every id has a non-empty text in every language, ids are unique, language codes are ISO 639-1
codes, and a language-ID check (CLD2) warns about texts that are clearly in another language.
Errors are :class:`~clas_lens.errors.DataValidationError` (a ``ValueError``) naming the id,
language and, for files, the file and line.

Sources:

* ``ParallelCorpus.from_dict({lang: [texts]})`` (ids generated) or ``{lang: {id: text}}``;
* ``ParallelCorpus.from_jsonl(path)``: records ``{"id", "lang", "text"}``, one file for all
  languages, one file per language (``{lang}.jsonl``; ``"lang"`` may then be omitted), a
  folder of such files, a list of files or a mapping ``{lang: file}``;
* ``ParallelCorpus.from_flores(langs)``: FLORES-200 / FLORES+ through ``datasets`` (hub), or
  local files in its schema via ``data_files=``;
* ``load_corpus("default")``: the corpus embedded in the package
  (``clas_lens/data/embedded/corpus/{lang}.jsonl``, written for clas_lens).

``corpus.split("stats" | "dev" | "test")`` (or ``load_corpus(..., split=)``) keeps one part of a
disjoint, deterministic split by id (:mod:`clas_lens.data.splits`: stats 0.4 / dev 0.2 / test
0.4 by default): statistics read "stats", evaluations "dev" and "test".

Reading files is :mod:`clas_lens.data.loaders`' job (the table, records and writing them
:mod:`clas_lens.data.records`') and the ``{lang: [texts]}`` adapter is :mod:`clas_lens.data.adapter`'s.

>>> c = ParallelCorpus.from_dict({"en": ["The cat sleeps.", "It rains."],
...                               "de": ["Die Katze schläft.", "Es regnet."]}, check_langid=False)
>>> c.langs, len(c), c.texts("de")[1]
(['en', 'de'], 2, 'Es regnet.')
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from clas_lens.data.adapter import DictCorpus, as_corpus  # noqa: F401  (re-exported: the old import path)
from clas_lens.data.aligned import check_aligned, complete_items
from clas_lens.data.langid import check_corpus_languages
from clas_lens.data.loaders import (  # noqa: F401  (EMBEDDED_DIR, embedded_languages: re-exported)
    DEFAULT_FLORES_DATASET,
    EMBEDDED_DIR,
    FLORES_NAMES,
    CorpusPath,
    embedded_files,
    embedded_languages,
    flores_texts,
    jsonl_corpus_records,
    texts_from_lists,
    unknown_languages_error,
)
from clas_lens.data.records import mapping_table, records_table, table_records, write_records_jsonl
from clas_lens.data.splits import CORPUS_FRACTIONS, Split, check_fractions, select_split, split_record
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.languages import (  # noqa: F401  (CORE_LANGS, LANGUAGES, flores_code: re-exported)
    CORE_LANGS,
    LANGUAGES,
    check_lang_code,
    flores_code,
)


class ParallelCorpus:
    """Texts aligned by id across languages, validated on construction.

    ``data`` maps language -> {id: text}; ``ids`` fixes the item order (default: the first
    language's order). ``check_langid`` runs the CLD2 language-ID check, which warns
    (:class:`~clas_lens.data.langid.LanguageIDWarning`) naming offending ids.
    ``drop_incomplete`` keeps only the items with a text in every language instead of refusing
    the others; ``info["dropped"]`` then lists each dropped id with the languages it lacks and
    why (:func:`~clas_lens.data.aligned.complete_items`).

    >>> c = ParallelCorpus({"en": {"a": "Good morning, my friend.", "b": "See you tomorrow."},
    ...                     "es": {"b": "Hasta mañana.", "a": "Buenos días, amigo."}}, check_langid=False)
    >>> c.ids, c.texts("es")
    (['a', 'b'], ['Buenos días, amigo.', 'Hasta mañana.'])
    """

    def __init__(
        self,
        data: Mapping[str, Mapping[str, str]],
        ids: Sequence[str] | None = None,
        *,
        name: str | None = None,
        check_langid: bool = True,
        drop_incomplete: bool = False,
    ) -> None:
        if not data:
            raise DataValidationError("A parallel corpus needs at least one language; got none.")
        self._langs: list[str] = [check_lang_code(lang) for lang in data]
        self._data: dict[str, dict[str, str]] = mapping_table(data, self._langs)
        first = self._langs[0]
        self._ids: list[str] = [str(i) for i in ids] if ids is not None else list(self._data[first])
        self.name = name
        self.split_info: dict[str, Any] | None = None  # set by split(): which part this is
        self.info: dict[str, Any] = {}  # "dropped": the items drop_incomplete left out, and why
        if drop_incomplete:
            keep, dropped = complete_items(self._data, self._ids, self._langs)
            if not keep:
                raise DataValidationError(
                    f"drop_incomplete: none of the {len(dropped)} items has a text in every language {self._langs}; "
                    f"e.g. id {dropped[0]['id']!r}: {dropped[0]['reason']}."
                )
            self._data = {lang: {i: texts[i] for i in keep} for lang, texts in self._data.items()}
            self._ids = keep
            self.info["dropped"] = dropped
        check_aligned(self._data, self._ids, self._langs)
        if check_langid:
            check_corpus_languages(self, warn=True)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Sequence[str] | Mapping[str, str]],
        ids: Sequence[str] | None = None,
        *,
        name: str | None = None,
        check_langid: bool = True,
        drop_incomplete: bool = False,
    ) -> "ParallelCorpus":
        """Build from ``{lang: [texts]}`` (aligned lists; ids generated ``s0001``... unless
        given) or ``{lang: {id: text}}``; ``drop_incomplete`` as in :class:`ParallelCorpus`.

        >>> c = ParallelCorpus.from_dict({"en": ["One.", "Two."], "fr": ["Un.", "Deux."]},
        ...                              check_langid=False)
        >>> c.ids
        ['s0001', 's0002']
        """
        ordered, ids = texts_from_lists(data, ids)
        return cls(ordered, ids=ids, name=name, check_langid=check_langid, drop_incomplete=drop_incomplete)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        langs: Sequence[str] | None = None,
        name: str | None = None,
        check_langid: bool = True,
        drop_incomplete: bool = False,
    ) -> "ParallelCorpus":
        """Build from records ``{"id", "lang", "text"}`` (optional ``"__where__"`` for messages).

        Duplicate (id, lang) pairs are errors. ``langs`` keeps only those languages, in that
        order (each must be present). ``drop_incomplete``: items lacking a language (or with
        an empty text there) are dropped and reported in ``info["dropped"]``.

        >>> recs = [{"id": "a", "lang": "en", "text": "Hello there."},
        ...         {"id": "a", "lang": "it", "text": "Ciao a tutti."}]
        >>> ParallelCorpus.from_records(recs, check_langid=False).langs
        ['en', 'it']
        """
        data, ids = records_table(records, langs, drop_blank=drop_incomplete)
        return cls(data, ids=ids, name=name, check_langid=check_langid, drop_incomplete=drop_incomplete)

    @classmethod
    def from_jsonl(
        cls,
        path: CorpusPath,
        *,
        langs: Sequence[str] | None = None,
        name: str | None = None,
        check_langid: bool = True,
        drop_incomplete: bool = False,
    ) -> "ParallelCorpus":
        """Read records ``{"id", "lang", "text"}`` from JSON-lines file(s).

        ``path`` may be one file holding every language, a file per language named
        ``{lang}.jsonl`` (then ``"lang"`` may be omitted from its records), a folder of such
        files, a list of files or a mapping ``{lang: file}``. With ``langs``, only those
        languages are kept (and in a folder only their ``{lang}.jsonl`` files are read when
        they exist). See :func:`~clas_lens.data.loaders.jsonl_corpus_records`.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "en.jsonl").write_text('{"id": "1", "text": "Good night."}\\n')
        >>> _ = (d / "de.jsonl").write_text('{"id": "1", "text": "Gute Nacht."}\\n')
        >>> ParallelCorpus.from_jsonl(d, check_langid=False).texts("de")
        ['Gute Nacht.']
        """
        records = jsonl_corpus_records(path, langs)
        return cls.from_records(
            records, langs=langs, name=name or str(path), check_langid=check_langid, drop_incomplete=drop_incomplete
        )

    @classmethod
    def from_flores(
        cls,
        langs: Sequence[str],
        *,
        split: str = "devtest",
        dataset: str = DEFAULT_FLORES_DATASET,
        data_files: Any = None,
        limit: int | None = None,
        check_langid: bool = True,
        drop_incomplete: bool = False,
    ) -> "ParallelCorpus":
        """FLORES-200 sentences (aligned by their ``id``) for ISO codes ``langs``.

        From the hub (``dataset``, one config per FLORES code, e.g. ``eng_Latn``; FLORES+ names
        Chinese ``cmn_Hans``) when reachable; or from local files in the FLORES schema (fields
        ``id`` and ``text`` or ``sentence``) with ``data_files={lang: path}`` or a pattern
        containing ``{lang}``. ``limit`` keeps the first n sentences.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "en.jsonl").write_text('{"id": 1, "text": "Good night."}\\n')
        >>> ParallelCorpus.from_flores(["en"], data_files=d / "en.jsonl", check_langid=False).ids
        ['1']
        """
        langs = [check_lang_code(lang) for lang in langs]
        data = {
            lang: flores_texts(lang, split=split, dataset=dataset, data_files=data_files, n_langs=len(langs), limit=limit)
            for lang in langs
        }
        order = list(data[langs[0]]) if langs else None
        return cls(data, ids=order, name=f"flores:{split}", check_langid=check_langid, drop_incomplete=drop_incomplete)

    # -- accessors ----------------------------------------------------------------------
    @property
    def langs(self) -> list[str]:
        """Languages, in order."""
        return list(self._langs)

    @property
    def ids(self) -> list[str]:
        """Item ids, in order."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"ParallelCorpus({name}{len(self)} items x {len(self._langs)} langs: {', '.join(self._langs)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParallelCorpus) and self.hash() == other.hash() and self._langs == other._langs

    def _check_lang(self, lang: str) -> None:
        if lang not in self._data:
            raise unknown_languages_error([lang], self._langs, "the corpus")

    def texts(self, lang: str) -> list[str]:
        """Texts of ``lang`` in id order.

        >>> ParallelCorpus.from_dict({"en": ["Hi there.", "Bye now."]}, check_langid=False).texts("en")
        ['Hi there.', 'Bye now.']
        """
        self._check_lang(lang)
        d = self._data[lang]
        return [d[i] for i in self._ids]

    def text(self, item_id: str, lang: str) -> str:
        """One text."""
        self._check_lang(lang)
        if item_id not in self._data[lang]:
            raise DataValidationError(f"Unknown id {item_id!r}; the corpus has {len(self)} ids.")
        return self._data[lang][item_id]

    def items(self) -> list[tuple[str, dict[str, str]]]:
        """``[(id, {lang: text}), ...]`` in id order."""
        return [(i, {lang: self._data[lang][i] for lang in self._langs}) for i in self._ids]

    def records(self) -> list[dict[str, str]]:
        """``[{"id", "lang", "text"}, ...]`` grouped by language, in id order."""
        return table_records(self._data, self._ids, self._langs)

    def to_dict(self) -> dict[str, list[str]]:
        """``{lang: [texts]}`` in id order."""
        return {lang: self.texts(lang) for lang in self._langs}

    def subset(self, ids: Sequence[str] | None = None, langs: Sequence[str] | None = None) -> "ParallelCorpus":
        """A corpus with only ``ids`` (in the given order) and/or ``langs``.

        >>> c = ParallelCorpus.from_dict({"en": ["A b.", "C d.", "E f."], "de": ["G.", "H.", "I."]},
        ...                              check_langid=False)
        >>> sub = c.subset(ids=["s0003", "s0001"], langs=["de"])
        >>> sub.langs, sub.texts("de")
        (['de'], ['I.', 'G.'])
        """
        langs = list(langs) if langs is not None else self.langs
        missing = [lang for lang in langs if lang not in self._data]
        if missing:
            raise unknown_languages_error(missing, self._langs, "the corpus")
        ids = [str(i) for i in ids] if ids is not None else self.ids
        known = set(self._ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataValidationError(
                f"Unknown id {unknown[0]!r} in subset() ({len(unknown)} unknown); the corpus has "
                f"{len(self)} ids, e.g. {self._ids[:3]}."
            )
        data = {lang: {i: self._data[lang][i] for i in ids} for lang in langs}
        out = ParallelCorpus(data, ids=ids, name=self.name, check_langid=False)
        out.info = dict(self.info)
        return out

    def split(self, split: Split, *, fractions: Mapping[str, float] | None = None, key: str | None = None) -> "ParallelCorpus":
        """The items of ``split`` (``"stats"``, ``"dev"``, ``"test"`` or a ``(start, stop)``
        fraction pair), by a stable hash of (``key``, id): see :mod:`clas_lens.data.splits`.
        ``fractions``: default stats 0.4 / dev 0.2 / test 0.4; ``key``: default the corpus's
        name. The result records the choice in ``split_info``.

        >>> c = load_corpus("default", langs=["en"], check_langid=False)
        >>> dev, test = c.split("dev"), c.split("test")
        >>> set(dev.ids) & set(test.ids), dev.split_info["split"]
        (set(), 'dev')
        """
        fractions = check_fractions(fractions, CORPUS_FRACTIONS)
        key = key or self.name or "corpus"
        ids = select_split(key, self._ids, split, fractions)
        if not ids:
            raise DataValidationError(f"Split {split!r} of the corpus {self.name!r} has no items.")
        out = self.subset(ids=ids)
        out.split_info = split_record(key, split, fractions)
        return out

    def hash(self) -> str:
        """sha256 of the content (ids in order, and each language's texts).

        >>> a = ParallelCorpus.from_dict({"en": ["X y."]}, check_langid=False)
        >>> a.hash() == ParallelCorpus.from_dict({"en": ["X y."]}, check_langid=False).hash()
        True
        """
        return sha256_json({"ids": self._ids, "texts": {lang: self.texts(lang) for lang in sorted(self._langs)}})

    def to_jsonl(self, path: str | os.PathLike) -> Path:
        """Write records ``{"id", "lang", "text"}``: one file if ``path`` ends in ``.jsonl``,
        else a folder with one ``{lang}.jsonl`` per language. Written atomically; returns ``path``.
        """
        return write_records_jsonl(path, self.records(), self._langs)


def load_corpus(
    name_or_path: str | os.PathLike = "default",
    langs: Sequence[str] | None = None,
    *,
    check_langid: bool = True,
    split: Split | None = None,
    split_fractions: Mapping[str, float] | None = None,
    drop_incomplete: bool = False,
    **options: Any,
) -> ParallelCorpus:
    """Load a parallel corpus; with ``split``, only that part (:meth:`ParallelCorpus.split`,
    fractions ``split_fractions``). ``drop_incomplete``: keep the items that have a text in
    every language and list the others, with the languages each lacks, in
    ``corpus.info["dropped"]`` (by default such a corpus is refused, naming the first gap).

    * ``"default"``: the corpus embedded in clas_lens (every language whose file exists);
    * ``"flores"`` (also ``"flores200"``, ``"flores_plus"``): FLORES-200 through ``datasets``
      (``langs`` required; options ``split``, ``dataset``, ``data_files``, ``limit``);
    * a path: JSON lines, see :meth:`ParallelCorpus.from_jsonl`.

    >>> c = load_corpus("default", langs=["en"])
    >>> len(c) >= 200, c.langs
    (True, ['en'])
    >>> load_corpus("default", langs=["en", "de"], drop_incomplete=True).info["dropped"]
    []
    """
    if drop_incomplete:
        options["drop_incomplete"] = True
    corpus = _load_corpus(name_or_path, langs, check_langid=check_langid, **options)
    if split is None:
        return corpus
    return corpus.split(split, fractions=split_fractions)


def _load_corpus(name_or_path: str | os.PathLike, langs: Sequence[str] | None, *, check_langid: bool, **options: Any) -> ParallelCorpus:
    drop = bool(options.pop("drop_incomplete", False))
    if isinstance(name_or_path, str) and name_or_path == "default":
        files = embedded_files("corpus", langs)
        return ParallelCorpus.from_jsonl(files, langs=list(files), name="default", check_langid=check_langid, drop_incomplete=drop)
    if isinstance(name_or_path, str) and name_or_path.lower() in FLORES_NAMES:
        if not langs:
            raise DataValidationError(
                f"load_corpus({name_or_path!r}) needs langs=[...] (ISO codes such as {list(CORE_LANGS)})."
            )
        if name_or_path.lower() in {"flores_plus", "flores+"}:
            options.setdefault("dataset", DEFAULT_FLORES_DATASET)
        return ParallelCorpus.from_flores(langs, check_langid=check_langid, drop_incomplete=drop, **options)
    p = Path(name_or_path)
    if p.exists():
        if options:
            warnings.warn(f"load_corpus ignores options {sorted(options)} for local files.", stacklevel=3)
        return ParallelCorpus.from_jsonl(p, langs=langs, check_langid=check_langid, drop_incomplete=drop)
    raise DataValidationError(
        f"Unknown corpus {str(name_or_path)!r}: pass 'default' (embedded), 'flores' (FLORES-200 via "
        "datasets) or the path of a .jsonl file or folder of {lang}.jsonl files."
    )
