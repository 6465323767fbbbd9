"""Language identification with pycld2."""
from __future__ import annotations

import math

import pytest

from clas_lens.data.langid import (
    LanguageIDWarning,
    check_corpus_languages,
    detect,
    detect_language,
    flag_language_mismatches,
    language_fidelity,
    same_language,
    to_iso,
)

SENTENCES = {
    "en": "The children walked to school together on a cold and windy morning.",
    "de": "Die Kinder gingen an einem kalten und windigen Morgen zusammen zur Schule.",
    "es": "Los niños caminaron juntos a la escuela en una mañana fría y ventosa.",
    "ru": "Дети вместе шли в школу холодным и ветреным утром.",
    "el": "Τα παιδιά περπάτησαν μαζί στο σχολείο ένα κρύο και θυελλώδες πρωί.",
    "tr": "Çocuklar soğuk ve rüzgarlı bir sabah birlikte okula yürüdüler.",
    "ar": "مشى الأطفال معًا إلى المدرسة في صباح بارد وعاصف.",
    "zh": "孩子们在一个寒冷而多风的早晨一起走路去上学。",
    "hi": "बच्चे एक ठंडी और तूफानी सुबह एक साथ स्कूल गए।",
    "sw": "Watoto walitembea pamoja kwenda shuleni asubuhi yenye baridi na upepo mkali.",
    "he": "הילדים הלכו יחד לבית הספר בבוקר קר וסוער מאוד.",
    "vi": "Những đứa trẻ cùng nhau đi bộ đến trường vào một buổi sáng lạnh và nhiều gió.",
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_detect_language(lang):
    code, conf = detect_language(SENTENCES[lang])
    assert code == lang
    assert 0.5 < conf <= 1.0


def test_cld2_code_mapping():
    assert to_iso("iw") == "he"
    assert to_iso("zh-Hant") == "zh"
    assert to_iso("jw") == "jv"
    assert to_iso("un") == "und"
    assert detect_language("孩子們在一個寒冷而多風的早晨一起走路去上學，老師在門口等他們。")[0] == "zh"


def test_undetermined_and_unreliable():
    assert detect_language("") == ("und", 0.0)
    assert detect_language("   ") == ("und", 0.0)
    assert detect_language("12345 !!!")[0] == "und"
    # Control characters must not crash CLD2.
    code, _ = detect_language("Der Hund\x00 schläft\x07 im Garten hinter dem Haus am Nachmittag.")
    assert code == "de"
    # Too short to identify.
    assert detect("Hello") == ("und", 0.0, False)


def test_same_language_confusables():
    assert same_language("ms", "id")
    assert not same_language("en", "de")


def test_language_fidelity():
    texts = [SENTENCES["de"], SENTENCES["en"], "", SENTENCES["de"]]
    assert language_fidelity(texts, "de") == 0.5
    assert language_fidelity([SENTENCES["sw"]], "sw") == 1.0
    assert math.isnan(language_fidelity([], "de"))


def test_flag_language_mismatches():
    items = {"a": SENTENCES["de"], "b": SENTENCES["en"], "c": "OK", "d": SENTENCES["de"]}
    flags = flag_language_mismatches(items, "de")
    assert [(i, c) for i, c, _ in flags] == [("b", "en")]


def test_check_corpus_languages_warns_with_ids():
    data = {"de": {"s1": SENTENCES["de"], "s2": SENTENCES["ru"]}, "en": {"s1": SENTENCES["en"], "s2": SENTENCES["en"]}}
    with pytest.warns(LanguageIDWarning, match=r"'de': s2 \(looks like 'ru'\)"):
        flagged = check_corpus_languages(data)
    assert list(flagged) == ["de"]
    assert flagged["de"][0][:2] == ("s2", "ru")


def test_check_corpus_languages_quiet_when_clean(recwarn):
    data = {"en": {"s1": SENTENCES["en"]}, "es": {"s1": SENTENCES["es"]}}
    assert check_corpus_languages(data) == {}
    assert not [w for w in recwarn if issubclass(w.category, LanguageIDWarning)]
