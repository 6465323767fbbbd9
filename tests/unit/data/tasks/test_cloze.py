"""The cloze task: CLDR names, separators and stand-alone forms, options, other CLDR languages."""
from __future__ import annotations

import pytest

from clas_lens.data.loaders import embedded_languages
from clas_lens.data.tasks import cloze_names, cloze_separator, load_task
from clas_lens.errors import DataValidationError


def test_cloze_items_english():
    task = load_task("cloze", langs=["en"], steps=1, lengths=3, directions="forward")
    items = task.items("en")
    assert len(items) == 7 + 12
    assert [it.id for it in items] == [it.id for it in load_task("cloze", langs=["en"]).items("en")[:19]]
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
    assert len(yo.items("yo")) == 7 * 18


@pytest.mark.parametrize("lang", embedded_languages("corpus"))
def test_every_embedded_language_has_342_distinct_items_with_a_computed_key(lang):
    items = load_task("cloze", langs=[lang]).items(lang)
    assert len(items) == 342 >= 300
    assert len({it.id for it in items}) == len({it.prompt for it in items}) == 342
    names = {kind: cloze_names(lang, kind) for kind in ("weekday", "month")}
    sep = cloze_separator(lang)
    for it in items:  # recompute the key from the shown names alone
        kind = it.id.split("-")[0]
        seq = names[kind]
        shown = (it.prompt + sep[len(sep.rstrip()):]).split(sep)[:-1]
        idx = [seq.index(name) for name in shown]
        step = (idx[1] - idx[0]) % len(seq)
        assert all((b - a) % len(seq) == step for a, b in zip(idx, idx[1:]))
        assert it.options[it.answer].strip() == seq[(idx[-1] + step) % len(seq)]


def test_cloze_patterns_are_checked():
    with pytest.raises(DataValidationError, match="cloze steps must be some of"):
        load_task("cloze", langs=["en"], steps=[4])
    with pytest.raises(DataValidationError, match="Unknown cloze direction 'up'"):
        load_task("cloze", langs=["en"], directions="up")
    back = load_task("cloze", langs=["en"], kinds="month", directions="backward", steps=3, lengths=4).items("en")
    assert back[0].prompt == "January, October, July, April," and back[0].options[back[0].answer] == " January"
