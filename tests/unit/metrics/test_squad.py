"""clas_lens.metrics.squad: SQuAD normalisation, F1 / EM textbook cases, character tokens for
zh / ja / th, accuracy."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.metrics import (
    CHARACTER_LEVEL_LANGS,
    accuracy,
    answer_tokens,
    exact_match,
    normalize_answer,
    squad_f1,
)


# -- normalisation ------------------------------------------------------------------------
def test_normalize_lowercase_punct_articles_whitespace():
    assert normalize_answer("  The   Quick, brown FOX!  ") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    # Articles are removed as whole words only.
    assert normalize_answer("Theatre and anthem") == "theatre and anthem"


def test_normalize_unicode_punctuation():
    assert normalize_answer("«Привет», — сказал он…", lang="ru") == "привет сказал он"
    assert normalize_answer("„Haus“", lang="de") == "haus"
    assert normalize_answer("北京。", lang="zh") == "北京"


def test_articles_only_for_english():
    assert normalize_answer("the house", lang="de") == "the house"
    assert normalize_answer("the house", lang="en") == "house"


def test_character_tokens_for_zh_ja_th():
    assert answer_tokens("北京大学", lang="zh") == ["北", "京", "大", "学"]
    assert answer_tokens("東京タワー", lang="ja") == ["東", "京", "タ", "ワ", "ー"]
    assert answer_tokens("กรุงเทพ", lang="th") == list("กรุงเทพ")
    # Latin words and numbers inside stay whole.
    assert answer_tokens("2008年 Olympics", lang="zh") == ["2008", "年", "olympics"]
    # Other languages split on whitespace.
    assert answer_tokens("北京大学", lang="en") == ["北京大学"]


# -- F1 / EM textbook cases ---------------------------------------------------------------
def test_exact_match_articles_and_punctuation():
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0


def test_f1_partial_overlap():
    # pred tokens {cat, sat}, ref {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8
    assert squad_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # pred {new, york, city}, ref {york}: P = 1/3, R = 1 -> F1 = 0.5
    assert squad_f1("New York City", "York") == pytest.approx(0.5)
    assert squad_f1("Berlin", "Paris") == 0.0


def test_f1_counts_repeated_tokens_once_each():
    # pred {the->removed} "very very good": tokens [very, very, good]; ref [very, good]
    # common = very x1 + good x1 = 2; P = 2/3, R = 1 -> F1 = 0.8
    assert squad_f1("very very good", "very good") == pytest.approx(0.8)


def test_max_over_references():
    refs = ["Denver Broncos", "The Broncos", "Broncos"]
    assert exact_match("broncos", refs) == 1.0
    assert squad_f1("Denver", refs) == pytest.approx(2 * (1 * 0.5) / 1.5)  # vs "Denver Broncos"


def test_empty_prediction():
    assert squad_f1("", ["Paris"]) == 0.0
    assert exact_match("", ["Paris"]) == 0.0
    # Prediction of only punctuation/articles normalises to empty as well.
    assert squad_f1("the.", ["Paris"]) == 0.0


def test_empty_references_rejected():
    with pytest.raises(ValueError, match="reference"):
        squad_f1("x", [])


def test_chinese_character_f1():
    # pred 北京市 (3 chars), ref 北京 (2 chars): common 2, P = 2/3, R = 1 -> F1 = 0.8
    assert squad_f1("北京市", ["北京"], lang="zh") == pytest.approx(0.8)
    assert exact_match("北京。", ["北京"], lang="zh") == 1.0
    # Without character tokenisation the same pair would share no token.
    assert squad_f1("北京市", ["北京"], lang="en") == 0.0


def test_thai_character_f1():
    assert squad_f1("เจ็ดโมง", ["เจ็ด"], lang="th") == pytest.approx(2 * (4 / 7) * 1 / (4 / 7 + 1))


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=0, max_size=30), st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_f1_in_unit_interval(pred, refs):
    for lang in ("en", "zh"):
        f1 = squad_f1(pred, refs, lang=lang)
        em = exact_match(pred, refs, lang=lang)
        assert 0.0 <= f1 <= 1.0
        assert em in (0.0, 1.0)
        if em == 1.0:
            assert f1 == 1.0


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abcdefg XYZ.,北京", min_size=1, max_size=20))
def test_f1_of_itself_is_one(text):
    for lang in ("en", "zh"):
        assert squad_f1(text, [text], lang=lang) == 1.0
        assert exact_match(text, [text], lang=lang) == 1.0


# -- accuracy ---------------------------------------------------------------------------
def test_accuracy():
    assert accuracy([True, False, True, True]) == 0.75
    assert accuracy([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)
    assert math.isnan(accuracy([]))
    with pytest.raises(ValueError, match="references"):
        accuracy([1, 2], [1])


def test_character_level_langs_come_from_languages():
    from clas_lens.languages import NO_SPACE_LANGS

    assert CHARACTER_LEVEL_LANGS is NO_SPACE_LANGS and {"zh", "ja", "th"} <= set(CHARACTER_LEVEL_LANGS)
