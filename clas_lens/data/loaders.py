"""Reading parallel-corpus sources: JSON-lines files, FLORES-200, records, aligned lists and
the embedded folder.

The functions here turn sources into plain ``{lang: {id: text}}`` texts, with every error
naming the file and line (or record); :mod:`clas_lens.data.corpus` builds and validates the
:class:`~clas_lens.data.corpus.ParallelCorpus` from them (so this module does not import it).

* :func:`texts_by_language` (records) and :func:`texts_from_lists` (``{lang: [texts]}``);
* :func:`jsonl_corpus_records`: records ``{"id", "lang", "text", "__where__"}`` from one file,
  a folder of ``{lang}.jsonl`` files, a list of files or a mapping ``{lang: file}``;
* :func:`flores_texts`: one language of FLORES-200 / FLORES+ (hub or local files);
* :data:`EMBEDDED_DIR`, :func:`embedded_languages`, :func:`embedded_files`: the data shipped
  in ``clas_lens/data/embedded/{kind}/{lang}.jsonl`` (corpus, nli, qa).

>>> "en" in embedded_languages("corpus"), embedded_files("corpus", ["de"])["de"].name
(True, 'de.jsonl')
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from clas_lens.data.hub import load_hub_records, read_jsonl_strict, read_records, resolve_data_files
from clas_lens.errors import DataValidationError
from clas_lens.languages import canonical_order, check_lang_code, flores_code

#: Folder of the data shipped with the package: ``{kind}/{lang}.jsonl``.
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
#: The FLORES dataset read by default (FLORES+, the maintained FLORES-200).
DEFAULT_FLORES_DATASET = "openlanguagedata/flores_plus"
#: Names :func:`~clas_lens.data.corpus.load_corpus` accepts for FLORES (lower case).
FLORES_NAMES: frozenset[str] = frozenset({"flores", "flores200", "flores-200", "flores_200", "flores_plus", "flores+"})
#: FLORES+ renamed a few FLORES-200 configs.
_FLORES_PLUS_RENAMES = {"zho_Hans": "cmn_Hans", "zho_Hant": "cmn_Hant"}

CorpusPath = str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike]


def unknown_languages_error(missing: Sequence[str], available: Iterable[str], what: str) -> DataValidationError:
    """The error for languages missing from a source, listing those it has.

    >>> str(unknown_languages_error(["fr"], ["en", "de"], "the corpus"))
    "Language(s) 'fr' not in the corpus; available: en, de."
    """
    available = list(available)
    return DataValidationError(
        f"Language(s) {', '.join(map(repr, missing))} not in {what}; available: "
        f"{', '.join(available) if available else '(none)'}."
    )


def _looks_like_lang(stem: str) -> bool:
    try:
        check_lang_code(stem)
        return True
    except DataValidationError:
        return False


def embedded_languages(kind: str = "corpus") -> list[str]:
    """Languages with an embedded file ``clas_lens/data/embedded/{kind}/{lang}.jsonl``.

    >>> "en" in embedded_languages("corpus")
    True
    """
    folder = EMBEDDED_DIR / kind
    if not folder.is_dir():
        return []
    return canonical_order(f.stem for f in folder.glob("*.jsonl") if _looks_like_lang(f.stem))


def embedded_files(kind: str, langs: Sequence[str] | None = None) -> dict[str, Path]:
    """``{lang: file}`` of the embedded ``kind`` for ``langs`` (default: every language).

    >>> list(embedded_files("corpus", ["en", "de"]))
    ['en', 'de']
    """
    available = embedded_languages(kind)
    if langs is not None:
        missing = [lang for lang in langs if lang not in available]
        if missing:
            raise unknown_languages_error(missing, available, f"the embedded {kind}")
    chosen = list(langs) if langs is not None else available
    return {lang: EMBEDDED_DIR / kind / f"{lang}.jsonl" for lang in chosen}


def _corpus_files(path: CorpusPath, langs: Sequence[str] | None) -> list[tuple[Path, str | None]]:
    """``[(file, language implied by its name)]`` of a corpus path (file, folder, list, mapping)."""
    if isinstance(path, Mapping):
        return [(Path(p), lang) for lang, p in path.items()]
    if not isinstance(path, (str, os.PathLike)):
        return [(Path(f), Path(f).stem if _looks_like_lang(Path(f).stem) else None) for f in path]
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.jsonl"))
        if not found:
            raise DataValidationError(f"No .jsonl files in folder {str(p)!r}.")
        per_lang = {f.stem: f for f in found if _looks_like_lang(f.stem)}
        others = [f for f in found if f.stem not in per_lang]
        if langs is not None:
            missing = [lang for lang in langs if lang not in per_lang]
            if missing and not others:
                raise unknown_languages_error(missing, canonical_order(per_lang), f"folder {str(p)!r}")
            # Read only the requested languages' files (and files not named by a language).
            found = [per_lang[lang] for lang in langs if lang in per_lang] + others
        else:
            found = [per_lang[lang] for lang in canonical_order(per_lang)] + others
        return [(f, f.stem if f.stem in per_lang else None) for f in found]
    if p.exists():
        return [(p, p.stem if _looks_like_lang(p.stem) else None)]
    raise DataValidationError(f"Corpus file or folder {str(p)!r} does not exist.")


def jsonl_corpus_records(path: CorpusPath, langs: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Records ``{"id", "lang", "text", "__where__"}`` of JSON-lines corpus file(s).

    ``path``: one file holding every language, a file per language named ``{lang}.jsonl``
    (``"lang"`` may then be omitted from its records), a folder of such files, a list of files
    or a mapping ``{lang: file}``. With ``langs`` only those languages are kept (each must be
    present). ``"__where__"`` is ``file:line``, for error messages.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "de.jsonl").write_text('{"id": "1", "text": "Gute Nacht."}\\n')
    >>> [(r["lang"], r["text"]) for r in jsonl_corpus_records(d)]
    [('de', 'Gute Nacht.')]
    """
    records: list[dict[str, Any]] = []
    for f, implied in _corpus_files(path, langs):
        if not f.exists():
            raise DataValidationError(f"Corpus file {str(f)!r} does not exist.")
        for rec in read_jsonl_strict(f, keep_line=True):
            loc = f"{f}:{rec.pop('__line__')}"
            lang = rec.get("lang", implied)
            if lang is None:
                raise DataValidationError(f"{loc}: missing field 'lang' (and the file name does not name a language).")
            if implied is not None and lang != implied:
                raise DataValidationError(f"{loc}: record has lang {lang!r} but the file is for language {implied!r}.")
            rec["lang"] = lang
            rec["__where__"] = loc
            records.append(rec)
    if langs is not None:
        present = {r["lang"] for r in records}
        missing = [lang for lang in langs if lang not in present]
        if missing:
            raise unknown_languages_error(missing, canonical_order(present), f"{path}")
        records = [r for r in records if r["lang"] in set(langs)]
    return records


def texts_by_language(records: Iterable[Mapping[str, Any]], langs: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """``{lang: {id: text}}`` from records ``{"id", "lang", "text"}`` (optional ``"__where__"``).

    Each record is checked (fields present, id a non-empty string or integer, a known language
    code, a non-empty text); a duplicate (id, lang) pair is an error naming both places.
    ``langs`` keeps only those languages, in that order (each must be present).

    >>> texts_by_language([{"id": 1, "lang": "en", "text": "Hi."}, {"id": 1, "lang": "de", "text": "Hallo."}])
    {'en': {'1': 'Hi.'}, 'de': {'1': 'Hallo.'}}
    """
    data: dict[str, dict[str, str]] = {}
    where: dict[tuple[str, str], str] = {}
    for n, rec in enumerate(records):
        loc = rec.get("__where__") or f"record {n}"
        for key in ("id", "lang", "text"):
            if key not in rec or rec[key] is None:
                raise DataValidationError(f"{loc}: missing field {key!r} (need id, lang, text).")
        rid = rec["id"]
        if not isinstance(rid, (str, int)) or (isinstance(rid, str) and not rid.strip()):
            raise DataValidationError(f"{loc}: id must be a non-empty string or integer, got {rid!r}.")
        rid = str(rid)
        lang = rec["lang"]
        try:
            check_lang_code(lang)
        except DataValidationError as e:
            raise DataValidationError(f"{loc}: {e}") from None
        texts = data.setdefault(lang, {})
        if rid in texts:
            raise DataValidationError(
                f"{loc}: duplicate id {rid!r} in language {lang!r} "
                f"(first seen at {where[(lang, rid)]})."
            )
        text = rec["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataValidationError(
                f"{loc}: empty (or whitespace-only) text for id {rid!r} in language {lang!r}."
            )
        texts[rid] = text
        where[(lang, rid)] = loc
    if not data:
        raise DataValidationError("No records: the corpus is empty.")
    if langs is not None:
        missing = [lang for lang in langs if lang not in data]
        if missing:
            raise unknown_languages_error(missing, canonical_order(data), "the corpus")
        data = {lang: data[lang] for lang in langs}
    return data


def texts_from_lists(
    data: Mapping[str, Sequence[str] | Mapping[str, str]], ids: Sequence[str] | None = None
) -> tuple[dict[str, Mapping[str, str]], Sequence[str] | None]:
    """``({lang: {id: text}}, ids)`` from ``{lang: [texts]}`` (aligned lists) and/or
    ``{lang: {id: text}}``, languages in the order given.

    List ids are ``ids`` or generated (``s0001``...); lists of unequal length are an error
    naming the first missing id. ``ids`` comes back unchanged when every value is a mapping.

    >>> texts_from_lists({"en": ["One.", "Two."]})
    ({'en': {'s0001': 'One.', 's0002': 'Two.'}}, ['s0001', 's0002'])
    """
    if not data:
        raise DataValidationError("from_dict() got no languages.")
    as_maps: dict[str, Mapping[str, str]] = {}
    lengths: dict[str, int] = {}
    for lang, texts in data.items():
        if isinstance(texts, Mapping):
            as_maps[lang] = texts
        elif isinstance(texts, str) or not isinstance(texts, Sequence):
            raise DataValidationError(
                f"Language {lang!r}: expected a list of texts or a mapping id -> text, "
                f"got {type(texts).__name__}."
            )
        else:
            lengths[lang] = len(texts)
    if lengths:
        n = max(lengths.values())
        short = [lang for lang, k in lengths.items() if k < n]
        if short:
            lang = short[0]
            k = lengths[lang]
            gen_ids = list(ids) if ids is not None else _make_ids(n)
            raise DataValidationError(
                f"Corpus is not aligned: language {lang!r} has {k} texts but others have {n}, "
                f"so id {gen_ids[k]!r} (item {k}) is missing in language {lang!r}."
            )
        gen_ids = [str(i) for i in ids] if ids is not None else _make_ids(n)
        if len(gen_ids) != n:
            raise DataValidationError(f"Got {len(gen_ids)} ids for {n} texts per language.")
        if len(set(gen_ids)) != len(gen_ids):
            seen: set[str] = set()
            dup = next(i for i in gen_ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise DataValidationError(f"Duplicate id {dup!r} in ids.")
        for lang in lengths:
            as_maps[lang] = dict(zip(gen_ids, data[lang]))  # type: ignore[arg-type]
        ids = gen_ids
    return {lang: as_maps[lang] for lang in data}, ids


def _make_ids(n: int) -> list[str]:
    width = max(4, len(str(n)))
    return [f"s{k + 1:0{width}d}" for k in range(n)]


def flores_texts(
    lang: str,
    *,
    split: str = "devtest",
    dataset: str = DEFAULT_FLORES_DATASET,
    data_files: Any = None,
    n_langs: int = 1,
    limit: int | None = None,
) -> dict[str, str]:
    """``{id: text}`` of one language of FLORES-200, in file order.

    From the hub (``dataset``, one config per FLORES code; FLORES+ names Chinese ``cmn_Hans``)
    or from local files in the FLORES schema (fields ``id`` and ``text`` or ``sentence``) via
    ``data_files`` (see :func:`~clas_lens.data.hub.resolve_data_files`; ``n_langs`` is the
    number of languages requested with it). ``limit`` keeps the first n sentences.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "en.jsonl"
    >>> _ = f.write_text('{"id": 1, "sentence": "Hello."}\\n')
    >>> flores_texts("en", data_files=f)
    {'1': 'Hello.'}
    """
    code = flores_code(lang)
    if data_files is not None:
        rows: list[dict[str, Any]] = []
        for f in resolve_data_files(data_files, lang, n_langs=n_langs):
            rows.extend(read_records(f))
    else:
        config = _FLORES_PLUS_RENAMES.get(code, code) if "flores_plus" in dataset else code
        hint = (
            "Pass local files in the FLORES schema (fields 'id' and 'text'), e.g. "
            "ParallelCorpus.from_flores(langs, data_files={'en': 'flores/eng_Latn.jsonl', ...}) "
            "or data_files='flores/{lang}.jsonl', or use load_corpus('default') (embedded)."
        )
        rows = load_hub_records(dataset, config, split, what=f"FLORES-200 ({lang})", local_hint=hint)
    texts: dict[str, str] = {}
    for k, row in enumerate(rows):
        text = row.get("text", row.get("sentence"))
        if text is None:
            raise DataValidationError(
                f"FLORES rows for {lang!r} need a 'text' (or 'sentence') field; got {sorted(row)}."
            )
        texts[str(row.get("id", k))] = text
    if limit is not None:
        texts = dict(list(texts.items())[:limit])
    return texts
