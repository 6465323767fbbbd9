"""The completion task: final word removed (2 characters for zh / ja / th), the verified key
among 3 seeded distractors, items from the held-out splits only, deterministic."""
from __future__ import annotations

import pytest

from clas_lens.data.corpus import load_corpus
from clas_lens.data.tasks import load_task
from clas_lens.data.tasks.completion import completion_items, split_final_word
from clas_lens.errors import DataValidationError
from clas_lens.languages import NO_SPACE_LANGS


@pytest.mark.parametrize(
    "text, lang, expected",
    [
        ("The bus leaves at seven o'clock.", "en", ("The bus leaves at seven", "o'clock")),
        ("¿Vienes mañana?", "es", ("¿Vienes", "mañana")),
        ("वह घर जाता है।", "hi", ("वह घर जाता", "है")),
        ("他明天去北京。", "zh", ("他明天去", "北京")),
        ("ฉันชอบกินข้าว", "th", ("ฉันชอบกิน", "ข้าว")),  # a character keeps its combining marks
        ("Hello.", "en", None),  # one word: nothing left as prompt
        ('He said "yes."', "en", None),  # punctuation at the word's edge
    ],
)
def test_split_final_word(text, lang, expected):
    assert split_final_word(text, lang) == expected


def test_items_have_the_removed_word_as_key():
    corpus = load_corpus("default", check_langid=False)
    task = load_task("completion", langs=corpus.langs)
    stats = set(corpus.split("stats").ids)
    assert task.mode == "choice" and task.metrics == ["margin", "gold_logprob", "accuracy"]
    for lang in corpus.langs:
        items = task.items(lang)
        assert len(items) >= 0.5 * len(corpus)  # >= 300 per language with the 600-sentence corpus
        assert not stats & {it.id for it in items} and {it.split for it in items} == {"dev", "test"}
        prefix = "" if lang in NO_SPACE_LANGS else " "
        for it in items:
            prompt, word = split_final_word(corpus.text(it.id, lang), lang)
            assert it.prompt == prompt and it.options[it.answer] == prefix + word
            assert len(it.options) == 4 and len({o.casefold() for o in it.options}) == 4
            assert all(o.startswith(prefix) for o in it.options) and it.content_free == "N/A"
        assert len({it.answer for it in items}) == 4  # the key's position varies


def test_deterministic_seeded_and_independent_of_split():
    a = load_task("completion", langs=["de"])
    b = load_task("completion", langs=["de"])
    assert [(it.options, it.answer) for it in a.items("de")] == [(it.options, it.answer) for it in b.items("de")]
    other = load_task("completion", langs=["de"], distractor_seed=1)
    assert [it.options for it in other.items("de")] != [it.options for it in a.items("de")]
    dev = load_task("completion", langs=["de"], split="dev")
    by_id = {it.id: it for it in a.items("de")}
    assert dev.items("de") and all(it.options == by_id[it.id].options and it.split == "dev" for it in dev.items("de"))
    assert dev.config["split"] == "dev" and dev.config["distractor_seed"] == 0
    with pytest.raises(DataValidationError, match="reserved"):
        load_task("completion", langs=["de"], split="stats")


def test_too_few_distractors():
    rows = [("a", "dev", "I like apples."), ("b", "dev", "We like apples.")]
    with pytest.raises(DataValidationError, match="fewer than n_distractors=3"):
        completion_items("en", rows)
    assert completion_items("en", rows + [("c", "test", "They like pears.")], n_distractors=1)[0].options != []
