"""ParallelCorpus: construction, accessors, JSONL round trips and every validation error."""
from __future__ import annotations

import json
import warnings

import pytest

from clas_lens.data.corpus import (
    CORE_LANGS,
    LANGUAGES,
    ParallelCorpus,
    check_lang_code,
    embedded_languages,
    flores_code,
    load_corpus,
)
from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.langid import LanguageIDWarning
from clas_lens.errors import DataValidationError

EN = ["The bus leaves every morning at seven.", "My sister plays the piano very well.", "It rained all night long."]
DE = ["Der Bus fährt jeden Morgen um sieben ab.", "Meine Schwester spielt sehr gut Klavier.", "Es hat die ganze Nacht geregnet."]
ES = ["El autobús sale todas las mañanas a las siete.", "Mi hermana toca muy bien el piano.", "Llovió toda la noche."]


@pytest.fixture()
def corpus() -> ParallelCorpus:
    return ParallelCorpus.from_dict({"en": EN, "de": DE, "es": ES}, ids=["a", "b", "c"])


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# -- construction and accessors -----------------------------------------------------------
def test_from_dict_accessors(corpus):
    assert corpus.langs == ["en", "de", "es"]
    assert len(corpus) == 3
    assert corpus.ids == ["a", "b", "c"]
    assert corpus.texts("de") == DE
    assert corpus.text("b", "es") == ES[1]
    assert corpus.items()[0] == ("a", {"en": EN[0], "de": DE[0], "es": ES[0]})
    assert corpus.to_dict()["en"] == EN
    assert "3 items x 3 langs" in repr(corpus)


def test_generated_ids():
    c = ParallelCorpus.from_dict({"en": EN, "de": DE})
    assert c.ids == ["s0001", "s0002", "s0003"]


def test_mapping_input_keeps_first_language_order():
    c = ParallelCorpus({"en": {"x": EN[0], "y": EN[1]}, "de": {"y": DE[1], "x": DE[0]}})
    assert c.ids == ["x", "y"]
    assert c.texts("de") == DE[:2]


def test_subset(corpus):
    sub = corpus.subset(ids=["c", "a"], langs=["es", "en"])
    assert sub.langs == ["es", "en"]
    assert sub.ids == ["c", "a"]
    assert sub.texts("es") == [ES[2], ES[0]]
    assert corpus.subset(langs=["de"]).ids == corpus.ids


def test_hash_is_content_hash(corpus):
    same = ParallelCorpus.from_dict({"en": EN, "de": DE, "es": ES}, ids=["a", "b", "c"])
    assert corpus.hash() == same.hash()
    assert corpus == same
    changed = ParallelCorpus.from_dict({"en": EN, "de": DE[:2] + ["Es regnete."], "es": ES}, ids=["a", "b", "c"])
    assert corpus.hash() != changed.hash()
    assert corpus.subset(ids=["b", "a", "c"]).hash() != corpus.hash()
    assert len(corpus.hash()) == 64


def test_jsonl_round_trip_single_file(tmp_path, corpus):
    p = corpus.to_jsonl(tmp_path / "all.jsonl")
    lines = p.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9
    assert json.loads(lines[0]) == {"id": "a", "lang": "en", "text": EN[0]}
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


def test_per_language_files_without_lang_field(tmp_path):
    write_jsonl(tmp_path / "en.jsonl", [{"id": "1", "text": EN[0]}, {"id": "2", "text": EN[1]}])
    write_jsonl(tmp_path / "de.jsonl", [{"id": "2", "text": DE[1]}, {"id": "1", "text": DE[0]}])
    c = ParallelCorpus.from_jsonl([tmp_path / "de.jsonl", tmp_path / "en.jsonl"])
    assert c.ids == ["1", "2"]  # English order is the item order
    assert c.texts("de") == DE[:2]
    c2 = ParallelCorpus.from_jsonl({"en": tmp_path / "en.jsonl", "de": tmp_path / "de.jsonl"})
    assert c2.hash() == c.hash()


def test_integer_ids_become_strings(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"id": 7, "lang": "en", "text": EN[0]}, {"id": 7, "lang": "de", "text": DE[0]}])
    assert ParallelCorpus.from_jsonl(tmp_path / "x.jsonl").ids == ["7"]


def test_load_default_reads_existing_languages():
    langs = embedded_languages("corpus")
    assert "en" in langs
    c = load_corpus("default", langs=["en"])
    assert c.langs == ["en"] and len(c) >= 200


def test_language_table():
    for lang in CORE_LANGS + ("fr", "ja", "ko", "it", "pt", "nl", "pl", "id", "bn", "ur", "fa", "he", "uk"):
        assert lang in LANGUAGES
    assert flores_code("en") == "eng_Latn"
    assert flores_code("zh") == "zho_Hans"
    assert flores_code("de") == "deu_Latn"


# -- validation errors --------------------------------------------------------------------
def test_error_missing_id_from_dict_lists():
    with pytest.raises(DataValidationError, match=r"id 's0003' \(item 2\) is missing in language 'de'"):
        ParallelCorpus.from_dict({"en": EN, "de": DE[:2]})


def test_error_missing_id_mapping():
    with pytest.raises(DataValidationError, match=r"id 'y' is missing in language 'de' \(1 of 2"):
        ParallelCorpus({"en": {"x": EN[0], "y": EN[1]}, "de": {"x": DE[0]}})


def test_error_id_only_in_a_later_language():
    with pytest.raises(DataValidationError, match=r"id 'y' \(in 'de'\) is missing in language 'en'"):
        ParallelCorpus({"en": {"x": EN[0]}, "de": {"x": DE[0], "y": DE[1]}})


def test_error_missing_id_names_first_missing(tmp_path):
    write_jsonl(tmp_path / "en.jsonl", [{"id": f"s{i}", "text": EN[i]} for i in range(3)])
    write_jsonl(tmp_path / "de.jsonl", [{"id": "s0", "text": DE[0]}, {"id": "s2", "text": DE[2]}])
    with pytest.raises(DataValidationError, match=r"id 's1' is missing in language 'de' \(1 of 3"):
        ParallelCorpus.from_jsonl(tmp_path)


def test_error_missing_id_in_given_ids():
    with pytest.raises(DataValidationError, match=r"id 'q' is missing in language 'en'"):
        ParallelCorpus({"en": {"p": EN[0]}}, ids=["p", "q"])


def test_error_empty_text_names_id_and_lang():
    with pytest.raises(DataValidationError, match=r"id 's0002' in language 'de'"):
        ParallelCorpus.from_dict({"en": EN, "de": [DE[0], "   ", DE[2]]})
    with pytest.raises(DataValidationError, match=r"Empty.*id 'a' in language 'en'"):
        ParallelCorpus({"en": {"a": ""}})


def test_error_empty_text_in_jsonl_names_file_line(tmp_path):
    p = write_jsonl(tmp_path / "x.jsonl", [{"id": "a", "lang": "en", "text": EN[0]}, {"id": "b", "lang": "en", "text": "\n "}])
    with pytest.raises(DataValidationError, match=r"x\.jsonl:2: empty .*id 'b' in language 'en'"):
        ParallelCorpus.from_jsonl(p)


def test_error_non_string_text():
    with pytest.raises(DataValidationError, match=r"id 'a' in language 'en' is int"):
        ParallelCorpus({"en": {"a": 5}})


def test_error_duplicate_ids_jsonl(tmp_path):
    p = write_jsonl(
        tmp_path / "en.jsonl",
        [{"id": "a", "text": EN[0]}, {"id": "b", "text": EN[1]}, {"id": "a", "text": EN[2]}],
    )
    with pytest.raises(DataValidationError, match=r"en\.jsonl:3: duplicate id 'a' in language 'en' \(first seen at .*en\.jsonl:1\)"):
        ParallelCorpus.from_jsonl(p)


def test_error_duplicate_ids_given():
    with pytest.raises(DataValidationError, match="Duplicate id 'a'"):
        ParallelCorpus.from_dict({"en": EN}, ids=["a", "b", "a"])
    with pytest.raises(DataValidationError, match="Duplicate id 'a'"):
        ParallelCorpus({"en": {"a": EN[0], "b": EN[1]}}, ids=["a", "b", "a"])


def test_error_unknown_language_code():
    with pytest.raises(DataValidationError, match=r"Unknown language code 'english'.*en, de, es"):
        ParallelCorpus.from_dict({"english": EN})
    with pytest.raises(DataValidationError, match="Unknown language code 'xx'"):
        check_lang_code("xx")
    assert check_lang_code("yo") == "yo"  # CLDR knows Yoruba


def test_error_unknown_language_in_accessors_lists_available(corpus):
    with pytest.raises(DataValidationError, match=r"'fr' not in the corpus; available: en, de, es"):
        corpus.texts("fr")
    with pytest.raises(DataValidationError, match=r"'fr' not in the corpus; available: en, de, es"):
        corpus.subset(langs=["en", "fr"])


def test_error_unknown_language_in_files_and_default(tmp_path, corpus):
    corpus.to_jsonl(tmp_path / "c")
    with pytest.raises(DataValidationError, match=r"'fr' not in folder .*; available: en, de, es"):
        ParallelCorpus.from_jsonl(tmp_path / "c", langs=["en", "fr"])
    corpus.to_jsonl(tmp_path / "all.jsonl")
    with pytest.raises(DataValidationError, match=r"'fr' not in .*all.jsonl; available: en, de, es"):
        ParallelCorpus.from_jsonl(tmp_path / "all.jsonl", langs=["fr"])
    with pytest.raises(DataValidationError, match=r"'xx'.*not in the embedded corpus; available: en"):
        load_corpus("default", langs=["xx"])


def test_error_unknown_id_in_subset(corpus):
    with pytest.raises(DataValidationError, match="Unknown id 'zz'"):
        corpus.subset(ids=["a", "zz"])


def test_error_malformed_jsonl_line(tmp_path):
    p = tmp_path / "en.jsonl"
    p.write_text(json.dumps({"id": "a", "text": EN[0]}) + '\n{"id": "b", "text": "trunc\n', encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"en\.jsonl:2: not valid JSON"):
        ParallelCorpus.from_jsonl(p)


def test_error_missing_field_and_lang(tmp_path):
    p = write_jsonl(tmp_path / "all.jsonl", [{"id": "a", "lang": "en"}])
    with pytest.raises(DataValidationError, match=r"all\.jsonl:1: missing field 'text'"):
        ParallelCorpus.from_jsonl(p)
    p = write_jsonl(tmp_path / "all.jsonl", [{"id": "a", "text": EN[0]}])
    with pytest.raises(DataValidationError, match=r"all\.jsonl:1: missing field 'lang'"):
        ParallelCorpus.from_jsonl(p)


def test_error_lang_field_disagrees_with_file_name(tmp_path):
    p = write_jsonl(tmp_path / "de.jsonl", [{"id": "a", "lang": "en", "text": EN[0]}])
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


def test_error_no_languages():
    with pytest.raises(DataValidationError):
        ParallelCorpus({})
    with pytest.raises(DataValidationError, match="expected a list of texts"):
        ParallelCorpus.from_dict({"en": "one text"})


# -- language ID --------------------------------------------------------------------------
def test_langid_warning_names_offending_ids():
    de = [DE[0], "The weather was lovely and we spent the whole afternoon in the park.", DE[2]]
    with pytest.warns(LanguageIDWarning, match=r"'de': s0002 \(looks like 'en'\)"):
        ParallelCorpus.from_dict({"en": EN, "de": de})


def test_langid_can_be_disabled():
    de = [DE[0], "The weather was lovely and we spent the whole afternoon in the park.", DE[2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LanguageIDWarning)
        ParallelCorpus.from_dict({"en": EN, "de": de}, check_langid=False)


# -- FLORES -------------------------------------------------------------------------------
def test_flores_offline_error_says_how_to_pass_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"data_files"):
        ParallelCorpus.from_flores(["en", "de"])
    with pytest.raises(DatasetUnavailableError, match=r"FLORES-200"):
        load_corpus("flores", langs=["en"])


def test_flores_needs_langs():
    with pytest.raises(DataValidationError, match="needs langs"):
        load_corpus("flores")


def test_flores_from_local_files(tmp_path):
    write_jsonl(tmp_path / "en.jsonl", [{"id": 1, "text": EN[0]}, {"id": 2, "text": EN[1]}, {"id": 3, "text": EN[2]}])
    write_jsonl(tmp_path / "de.jsonl", [{"id": 1, "sentence": DE[0]}, {"id": 2, "sentence": DE[1]}, {"id": 3, "sentence": DE[2]}])
    c = ParallelCorpus.from_flores(["en", "de"], data_files=str(tmp_path / "{lang}.jsonl"), limit=2)
    assert c.ids == ["1", "2"]
    assert c.texts("de") == DE[:2]
    c2 = load_corpus("flores", langs=["de"], data_files={"de": tmp_path / "de.jsonl"})
    assert c2.langs == ["de"] and len(c2) == 3
