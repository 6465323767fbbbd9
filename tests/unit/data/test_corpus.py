"""ParallelCorpus: construction, accessors, hash, subsets, every validation error, language ID;
load_corpus("default")."""
from __future__ import annotations

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
from clas_lens.data.langid import LanguageIDWarning
from clas_lens.errors import DataValidationError


def test_from_dict_accessors(corpus, texts):
    assert corpus.langs == ["en", "de", "es"]
    assert len(corpus) == 3
    assert corpus.ids == ["a", "b", "c"]
    assert corpus.texts("de") == texts["de"]
    assert corpus.text("b", "es") == texts["es"][1]
    assert corpus.items()[0] == ("a", {"en": texts["en"][0], "de": texts["de"][0], "es": texts["es"][0]})
    assert corpus.to_dict()["en"] == texts["en"]
    assert "3 items x 3 langs" in repr(corpus)



def test_generated_ids(texts):
    c = ParallelCorpus.from_dict({"en": texts["en"], "de": texts["de"]})
    assert c.ids == ["s0001", "s0002", "s0003"]



def test_mapping_input_keeps_first_language_order(texts):
    c = ParallelCorpus({"en": {"x": texts["en"][0], "y": texts["en"][1]}, "de": {"y": texts["de"][1], "x": texts["de"][0]}})
    assert c.ids == ["x", "y"]
    assert c.texts("de") == texts["de"][:2]



def test_subset(corpus, texts):
    sub = corpus.subset(ids=["c", "a"], langs=["es", "en"])
    assert sub.langs == ["es", "en"]
    assert sub.ids == ["c", "a"]
    assert sub.texts("es") == [texts["es"][2], texts["es"][0]]
    assert corpus.subset(langs=["de"]).ids == corpus.ids



def test_hash_is_content_hash(corpus, texts):
    same = ParallelCorpus.from_dict({"en": texts["en"], "de": texts["de"], "es": texts["es"]}, ids=["a", "b", "c"])
    assert corpus.hash() == same.hash()
    assert corpus == same
    changed = ParallelCorpus.from_dict({"en": texts["en"], "de": texts["de"][:2] + ["Es regnete."], "es": texts["es"]}, ids=["a", "b", "c"])
    assert corpus.hash() != changed.hash()
    assert corpus.subset(ids=["b", "a", "c"]).hash() != corpus.hash()
    assert len(corpus.hash()) == 64



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



def test_error_missing_id_mapping(texts):
    with pytest.raises(DataValidationError, match=r"id 'y' is missing in language 'de' \(1 of 2"):
        ParallelCorpus({"en": {"x": texts["en"][0], "y": texts["en"][1]}, "de": {"x": texts["de"][0]}})



def test_error_id_only_in_a_later_language(texts):
    with pytest.raises(DataValidationError, match=r"id 'y' \(in 'de'\) is missing in language 'en'"):
        ParallelCorpus({"en": {"x": texts["en"][0]}, "de": {"x": texts["de"][0], "y": texts["de"][1]}})



def test_error_missing_id_in_given_ids(texts):
    with pytest.raises(DataValidationError, match=r"id 'q' is missing in language 'en'"):
        ParallelCorpus({"en": {"p": texts["en"][0]}}, ids=["p", "q"])



def test_error_empty_text_names_id_and_lang(texts):
    with pytest.raises(DataValidationError, match=r"id 's0002' in language 'de'"):
        ParallelCorpus.from_dict({"en": texts["en"], "de": [texts["de"][0], "   ", texts["de"][2]]})
    with pytest.raises(DataValidationError, match=r"Empty.*id 'a' in language 'en'"):
        ParallelCorpus({"en": {"a": ""}})



def test_error_non_string_text():
    with pytest.raises(DataValidationError, match=r"id 'a' in language 'en' is int"):
        ParallelCorpus({"en": {"a": 5}})



def test_error_duplicate_ids_given(texts):
    with pytest.raises(DataValidationError, match="Duplicate id 'a'"):
        ParallelCorpus.from_dict({"en": texts["en"]}, ids=["a", "b", "a"])
    with pytest.raises(DataValidationError, match="Duplicate id 'a'"):
        ParallelCorpus({"en": {"a": texts["en"][0], "b": texts["en"][1]}}, ids=["a", "b", "a"])



def test_error_unknown_language_code(texts):
    with pytest.raises(DataValidationError, match=r"Unknown language code 'english'.*en, de, es"):
        ParallelCorpus.from_dict({"english": texts["en"]})
    with pytest.raises(DataValidationError, match="Unknown language code 'xx'"):
        check_lang_code("xx")
    assert check_lang_code("yo") == "yo"  # CLDR knows Yoruba



def test_error_unknown_language_in_accessors_lists_available(corpus):
    with pytest.raises(DataValidationError, match=r"'fr' not in the corpus; available: en, de, es"):
        corpus.texts("fr")
    with pytest.raises(DataValidationError, match=r"'fr' not in the corpus; available: en, de, es"):
        corpus.subset(langs=["en", "fr"])



def test_error_unknown_id_in_subset(corpus):
    with pytest.raises(DataValidationError, match="Unknown id 'zz'"):
        corpus.subset(ids=["a", "zz"])



def test_error_no_languages():
    with pytest.raises(DataValidationError):
        ParallelCorpus({})
    with pytest.raises(DataValidationError, match="expected a list of texts"):
        ParallelCorpus.from_dict({"en": "one text"})



def test_langid_warning_names_offending_ids(texts):
    de = [texts["de"][0], "The weather was lovely and we spent the whole afternoon in the park.", texts["de"][2]]
    with pytest.warns(LanguageIDWarning, match=r"'de': s0002 \(looks like 'en'\)"):
        ParallelCorpus.from_dict({"en": texts["en"], "de": de})



def test_langid_can_be_disabled(texts):
    de = [texts["de"][0], "The weather was lovely and we spent the whole afternoon in the park.", texts["de"][2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LanguageIDWarning)
        ParallelCorpus.from_dict({"en": texts["en"], "de": de}, check_langid=False)


def test_split_is_disjoint_deterministic_complete_and_recorded():
    corpus = load_corpus("default", langs=["en", "de"], check_langid=False)
    parts = {name: corpus.split(name) for name in ("stats", "dev", "test")}
    ids = [i for p in parts.values() for i in p.ids]
    assert sorted(ids) == sorted(corpus.ids) and len(ids) == len(set(ids))
    for name, part in parts.items():
        assert part.langs == ["en", "de"] and part.split_info["split"] == name and part.split_info["key"] == "default"
        assert part.ids == [i for i in corpus.ids if i in set(part.ids)]  # corpus order kept
        assert part.texts("de") == [corpus.text(i, "de") for i in part.ids]
    assert abs(len(parts["stats"]) / len(corpus) - 0.4) < 0.1
    assert corpus.split_info is None
    again = load_corpus("default", langs=["en"], split="dev", check_langid=False)
    assert again.ids == parts["dev"].ids and again.split_info == parts["dev"].split_info
    # configurable fractions and fraction pairs; a custom key changes the assignment
    half = corpus.split("a", fractions={"a": 0.5, "b": 0.5})
    assert half.split_info["fractions"] == {"a": 0.5, "b": 0.5}
    assert corpus.split((0.0, 0.4)).ids == parts["stats"].ids
    assert corpus.split("dev", key="other").ids != parts["dev"].ids
    with pytest.raises(DataValidationError, match="Unknown split 'train'"):
        corpus.split("train")
    tiny = ParallelCorpus.from_dict({"en": ["One two."]}, check_langid=False)
    with pytest.raises(DataValidationError, match="has no items"):
        tiny.split((0.0, 1e-9))
