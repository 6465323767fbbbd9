"""The cloze task: CLDR names, separators and stand-alone forms, options, other CLDR languages."""
from __future__ import annotations

import pytest

from clas_lens.data.loaders import embedded_languages
from clas_lens.data.tasks import cloze_names, cloze_separator, load_task
from clas_lens.errors import DataValidationError


def test_cloze_items_english():
    task = load_task("cloze", langs=["en"])
    items = task.items("en")
    assert len(items) == 7 + 12
    days = [it for it in items if it.id.startswith("weekday")]
    assert days[0].prompt == "Monday, Tuesday, Wednesday,"
    assert days[0].options[days[0].answer] == " Thursday"
    assert days[6].prompt == "Sunday, Monday, Tuesday,"
    assert days[6].options[days[6].answer] == " Wednesday"
    months = [it for it in items if it.id.startswith("month")]
    assert len(months[0].options) == 12
    assert months[11].options[months[11].answer] == " March"  # December, January, February -> March


def test_cloze_languages_separators_and_forms():
    task = load_task("cloze", langs=["zh", "ar", "el", "th", "de"], kinds="month")
    zh = task.items("zh")[0]
    assert zh.prompt == "一月、二月、三月、" and zh.options[zh.answer] == "四月"
    ar = task.items("ar")[0]
    assert ar.prompt.endswith("،") and ar.options[ar.answer].startswith(" ")
    el = task.items("el")[0]
    assert el.prompt.startswith("Ιανουάριος")  # stand-alone (nominative), not genitive Ιανουαρίου
    th = task.items("th")[0]
    assert not th.prompt.endswith(" ") and th.options[th.answer] == " เมษายน"  # CLDR's Thai separator is a space
    assert cloze_separator("zh") == "、" and cloze_separator("ar") == "، " and cloze_separator("en") == ", "
    assert cloze_names("sw", "weekday")[0] == "Jumatatu"
    assert all(not it.prompt.endswith(" ") for lang in task.langs for it in task.items(lang))


def test_cloze_options():
    task = load_task("cloze", langs=["en"], kinds=["weekday"], separators={"en": " / "}, option_prefix={"en": " "})
    it = task.items("en")[0]
    assert it.prompt == "Monday / Tuesday / Wednesday /" and it.options[it.answer] == " Thursday"
    with pytest.raises(DataValidationError, match="Unknown cloze kind 'year'"):
        load_task("cloze", langs=["en"], kinds=["year"])
    with pytest.raises(DataValidationError, match="Unknown cloze kind 'year'"):
        cloze_names("en", "year")


def test_cloze_default_and_other_cldr_languages():
    assert load_task("cloze").langs == embedded_languages("corpus")
    yo = load_task("cloze", langs=["yo"], kinds="weekday")  # Yoruba: not in LANGUAGES, known to CLDR
    assert len(yo.items("yo")) == 7
