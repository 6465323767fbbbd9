"""Reading corpus sources (clas_lens.data.loaders): JSON-lines files and folders with their
errors (file and line), records and aligned lists, FLORES from local files, the embedded folder.

Most tests go through ParallelCorpus.from_jsonl / from_flores / from_dict and load_corpus (in
clas_lens.data.corpus), which are thin wrappers over these readers, so that the messages users
see are the ones checked.
"""
from __future__ import annotations

import json

import pytest

from clas_lens.data.corpus import ParallelCorpus, load_corpus
from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.loaders import (
    embedded_files,
    embedded_languages,
    flores_texts,
    jsonl_corpus_records,
    texts_by_language,
    texts_from_lists,
    unknown_languages_error,
)
from clas_lens.errors import DataValidationError


def test_jsonl_round_trip_single_file(tmp_path, corpus, texts):
    p = corpus.to_jsonl(tmp_path / "all.jsonl")
    lines = p.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9
    assert json.loads(lines[0]) == {"id": "a", "lang": "en", "text": texts["en"][0]}
    back = ParallelCorpus.from_jsonl(p)
    assert back.hash() == corpus.hash()
    assert back.langs == corpus.langs



def test_jsonl_round_trip_folder(tmp_path, corpus):
    d = corpus.to_jsonl(tmp_path / "corpus")
    assert sorted(f.name for f in d.iterdir()) == ["de.jsonl", "en.jsonl", "es.jsonl"]
    back = ParallelCorpus.from_jsonl(d)
    assert back.hash() == corpus.hash()
    assert back.langs == ["en", "de", "es"]  # canonical order
    only = ParallelCorpus.from_jsonl(d, langs=["es", "en"])
    assert only.langs == ["es", "en"]



def test_per_language_files_without_lang_field(tmp_path, texts, write_jsonl):
    write_jsonl(tmp_path / "en.jsonl", [{"id": "1", "text": texts["en"][0]}, {"id": "2", "text": texts["en"][1]}])
    write_jsonl(tmp_path / "de.jsonl", [{"id": "2", "text": texts["de"][1]}, {"id": "1", "text": texts["de"][0]}])
    c = ParallelCorpus.from_jsonl([tmp_path / "de.jsonl", tmp_path / "en.jsonl"])
    assert c.ids == ["1", "2"]  # English order is the item order
    assert c.texts("de") == texts["de"][:2]
    c2 = ParallelCorpus.from_jsonl({"en": tmp_path / "en.jsonl", "de": tmp_path / "de.jsonl"})
    assert c2.hash() == c.hash()



def test_integer_ids_become_strings(tmp_path, texts, write_jsonl):
    write_jsonl(tmp_path / "x.jsonl", [{"id": 7, "lang": "en", "text": texts["en"][0]}, {"id": 7, "lang": "de", "text": texts["de"][0]}])
    assert ParallelCorpus.from_jsonl(tmp_path / "x.jsonl").ids == ["7"]



def test_error_missing_id_names_first_missing(tmp_path, texts, write_jsonl):
    write_jsonl(tmp_path / "en.jsonl", [{"id": f"s{i}", "text": texts["en"][i]} for i in range(3)])
    write_jsonl(tmp_path / "de.jsonl", [{"id": "s0", "text": texts["de"][0]}, {"id": "s2", "text": texts["de"][2]}])
    with pytest.raises(DataValidationError, match=r"id 's1' is missing in language 'de' \(1 of 3"):
        ParallelCorpus.from_jsonl(tmp_path)



def test_error_empty_text_in_jsonl_names_file_line(tmp_path, texts, write_jsonl):
    p = write_jsonl(tmp_path / "x.jsonl", [{"id": "a", "lang": "en", "text": texts["en"][0]}, {"id": "b", "lang": "en", "text": "\n "}])
    with pytest.raises(DataValidationError, match=r"x\.jsonl:2: empty .*id 'b' in language 'en'"):
        ParallelCorpus.from_jsonl(p)



def test_error_duplicate_ids_jsonl(tmp_path, texts, write_jsonl):
    p = write_jsonl(
        tmp_path / "en.jsonl",
        [{"id": "a", "text": texts["en"][0]}, {"id": "b", "text": texts["en"][1]}, {"id": "a", "text": texts["en"][2]}],
    )
    with pytest.raises(DataValidationError, match=r"en\.jsonl:3: duplicate id 'a' in language 'en' \(first seen at .*en\.jsonl:1\)"):
        ParallelCorpus.from_jsonl(p)



def test_error_unknown_language_in_files_and_default(tmp_path, corpus):
    corpus.to_jsonl(tmp_path / "c")
    with pytest.raises(DataValidationError, match=r"'fr' not in folder .*; available: en, de, es"):
        ParallelCorpus.from_jsonl(tmp_path / "c", langs=["en", "fr"])
    corpus.to_jsonl(tmp_path / "all.jsonl")
    with pytest.raises(DataValidationError, match=r"'fr' not in .*all.jsonl; available: en, de, es"):
        ParallelCorpus.from_jsonl(tmp_path / "all.jsonl", langs=["fr"])
    with pytest.raises(DataValidationError, match=r"'xx'.*not in the embedded corpus; available: en"):
        load_corpus("default", langs=["xx"])



def test_error_malformed_jsonl_line(tmp_path, texts):
    p = tmp_path / "en.jsonl"
    p.write_text(json.dumps({"id": "a", "text": texts["en"][0]}) + '\n{"id": "b", "text": "trunc\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"en\.jsonl:2: not valid JSON"):
        ParallelCorpus.from_jsonl(p)



def test_error_missing_field_and_lang(tmp_path, texts, write_jsonl):
    p = write_jsonl(tmp_path / "all.jsonl", [{"id": "a", "lang": "en"}])
    with pytest.raises(DataValidationError, match=r"all\.jsonl:1: missing field 'text'"):
        ParallelCorpus.from_jsonl(p)
    p = write_jsonl(tmp_path / "all.jsonl", [{"id": "a", "text": texts["en"][0]}])
    with pytest.raises(DataValidationError, match=r"all\.jsonl:1: missing field 'lang'"):
        ParallelCorpus.from_jsonl(p)



def test_error_lang_field_disagrees_with_file_name(tmp_path, texts, write_jsonl):
    p = write_jsonl(tmp_path / "de.jsonl", [{"id": "a", "lang": "en", "text": texts["en"][0]}])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:1: record has lang 'en' but the file is for language 'de'"):
        ParallelCorpus.from_jsonl(p)



def test_error_missing_path_and_unknown_name(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        ParallelCorpus.from_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(DataValidationError, match="Unknown corpus 'nope'.*'default'"):
        load_corpus("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="No .jsonl files"):
        ParallelCorpus.from_jsonl(tmp_path / "empty")



def test_flores_offline_error_says_how_to_pass_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"data_files"):
        ParallelCorpus.from_flores(["en", "de"])
    with pytest.raises(DatasetUnavailableError, match=r"FLORES-200"):
        load_corpus("flores", langs=["en"])



def test_flores_needs_langs():
    with pytest.raises(DataValidationError, match="needs langs"):
        load_corpus("flores")



def test_flores_from_local_files(tmp_path, texts, write_jsonl):
    write_jsonl(tmp_path / "en.jsonl", [{"id": 1, "text": texts["en"][0]}, {"id": 2, "text": texts["en"][1]}, {"id": 3, "text": texts["en"][2]}])
    write_jsonl(tmp_path / "de.jsonl", [{"id": 1, "sentence": texts["de"][0]}, {"id": 2, "sentence": texts["de"][1]}, {"id": 3, "sentence": texts["de"][2]}])
    c = ParallelCorpus.from_flores(["en", "de"], data_files=str(tmp_path / "{lang}.jsonl"), limit=2)
    assert c.ids == ["1", "2"]
    assert c.texts("de") == texts["de"][:2]
    c2 = load_corpus("flores", langs=["de"], data_files={"de": tmp_path / "de.jsonl"})
    assert c2.langs == ["de"] and len(c2) == 3



def test_error_missing_id_from_dict_lists(texts):
    with pytest.raises(DataValidationError, match=r"id 's0003' \(item 2\) is missing in language 'de'"):
        ParallelCorpus.from_dict({"en": texts["en"], "de": texts["de"][:2]})



def test_readers_directly(tmp_path, write_jsonl):
    recs = jsonl_corpus_records({"de": write_jsonl(tmp_path / "x.jsonl", [{"id": 1, "text": "Hallo."}])})
    assert recs == [{"id": 1, "text": "Hallo.", "lang": "de", "__where__": f"{tmp_path / 'x.jsonl'}:1"}]
    assert texts_by_language(recs) == {"de": {"1": "Hallo."}}
    with pytest.raises(DataValidationError, match=r"'fr' not in the corpus; available: de"):
        texts_by_language(recs, langs=["fr"])
    with pytest.raises(DataValidationError, match="No records"):
        texts_by_language([])
    with pytest.raises(DataValidationError, match=r"record 0: id must be a non-empty string"):
        texts_by_language([{"id": " ", "lang": "en", "text": "x"}])
    maps, ids = texts_from_lists({"en": ["a", "b"], "de": {"s0001": "c", "s0002": "d"}})
    assert ids == ["s0001", "s0002"] and maps["en"] == {"s0001": "a", "s0002": "b"} and list(maps) == ["en", "de"]
    with pytest.raises(DataValidationError, match="Got 1 ids for 2 texts"):
        texts_from_lists({"en": ["a", "b"]}, ids=["x"])
    assert str(unknown_languages_error(["xx"], [], "x")) == "Language(s) 'xx' not in x; available: (none)."


def test_embedded_folder():
    langs = embedded_languages("corpus")
    assert langs[0] == "en" and embedded_languages("no-such-kind") == []
    files = embedded_files("corpus", ["de", "en"])
    assert list(files) == ["de", "en"] and all(f.exists() for f in files.values())
    with pytest.raises(DataValidationError, match=r"'xx' not in the embedded nli"):
        embedded_files("nli", ["xx"])


def test_flores_texts_limit_and_field_errors(tmp_path, write_jsonl):
    f = write_jsonl(tmp_path / "en.jsonl", [{"id": k, "text": f"Sentence {k}."} for k in range(4)])
    assert list(flores_texts("en", data_files=f, limit=2)) == ["0", "1"]
    bad = write_jsonl(tmp_path / "de.jsonl", [{"id": 1, "content": "Hallo."}])
    with pytest.raises(DataValidationError, match=r"need a 'text' \(or 'sentence'\) field"):
        flores_texts("de", data_files=bad)
