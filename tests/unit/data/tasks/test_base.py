"""Task and TaskItem: items, to_dict, the deprecated Task.predict / Task.evaluate / alpha, and
the item helpers every task shares."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from clas_lens.data.tasks import Task, TaskItem, load_task
from clas_lens.data.tasks.base import (
    check_options,
    fill_template,
    item_id,
    make_task,
    option_prefix,
    per_language,
    text_field,
)
from clas_lens.errors import DataValidationError
from clas_lens.evaluation import predict, score_task


def test_task_to_dict():
    task = load_task("qa", langs=["en"], seed=3)
    d = task.to_dict()
    assert d["name"] == "qa" and d["mode"] == "generate" and d["seed"] == 3
    assert d["n_items"]["en"] >= 60 and d["max_new_tokens"] == 16
    assert d["confidence"] == 0.95 and "alpha" not in d


def test_items_are_copies_and_unknown_language_lists_known():
    task = load_task("cloze", langs=["en"], kinds="weekday")
    items = task.items("en")
    items.clear()
    assert len(task.items("en")) == 126
    with pytest.raises(DataValidationError, match=r"no language 'de'; it has en"):
        task.items("de")
    assert repr(task) == "Task('cloze', mode='choice', items en:126)"


def test_deprecated_predict_warns_and_equals_the_evaluation_function(tiny_llama):
    task = load_task("cloze", langs=["en"], kinds=["weekday"])
    with pytest.warns(DeprecationWarning, match=r"Task.predict.*clas_lens.evaluation.predict"):
        old = task.predict(tiny_llama, "en", limit=3, batch_size=8)
    new = predict(tiny_llama, task, "en", limit=3, batch_size=8)
    pd.testing.assert_frame_equal(old, new)


def test_deprecated_evaluate_warns_and_equals_score_task(tiny_llama):
    task = load_task("cloze", langs=["en", "de"], kinds=["weekday"], n_boot=200)
    with pytest.warns(DeprecationWarning, match=r"Task.evaluate.*score_task"):
        old = task.evaluate(tiny_llama, limit=3)
    new = score_task(tiny_llama, task, limit=3)
    pd.testing.assert_frame_equal(old, new)
    pd.testing.assert_frame_equal(old.attrs["predictions"], new.attrs["predictions"])


def test_task_alpha_is_a_deprecated_alias_of_confidence():
    item = TaskItem("a", "en", "Q:", [" x"], 0)
    with pytest.warns(DeprecationWarning, match="Task\\(alpha=...\\) is deprecated"):
        task = Task(name="t", mode="choice", metrics=["accuracy"], item_map={"en": [item]}, alpha=0.1)
    assert task.confidence == pytest.approx(0.9)
    with pytest.warns(DeprecationWarning, match="Task.alpha is deprecated"):
        assert task.alpha == pytest.approx(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = Task(name="t", mode="choice", metrics=["accuracy"], item_map={"en": [item]})
    assert plain.confidence == 0.95


def test_shared_item_helpers():
    with pytest.raises(DataValidationError, match=r"Unknown option\(s\) \['x'\] for task 't'; accepted: alpha, confidence, n_boot, seed, split, split_fractions, y"):
        check_options("t", {"x": 1}, {"y"})
    check_options("t", {"y": 1, "seed": 0}, {"y"})
    assert per_language({"de": "D"}, "de", {"de": "d"}, "template", "t") == "D"
    assert per_language({"de": "D"}, "en", {"en": "e"}, "template", "t") == "e"
    with pytest.raises(DataValidationError, match=r"no default template for language 'ko'.*template=\{'ko'"):
        per_language(None, "ko", {"en": "e"}, "template", "t")
    assert option_prefix(None, "th") == "" and option_prefix(" ", "th") == " " and option_prefix({"en": ""}, "de") == " "
    with pytest.raises(DataValidationError, match="ends with whitespace"):
        fill_template("{q} ", "en", "t", q="x")
    with pytest.raises(DataValidationError, match=r"cannot be filled.*\{q\}"):
        fill_template("{p}", "en", "t", q="x")
    seen: set[str] = set()
    assert item_id({"id": 7}, 0, "f:1", seen) == "7" and item_id({}, 3, "f:2", seen, prefix="i-") == "i-00003"
    with pytest.raises(DataValidationError, match=r"f:3: duplicate id '7'"):
        item_id({"id": "7"}, 4, "f:3", seen)
    with pytest.raises(DataValidationError, match=r"f:1: field 'premise' is missing or empty"):
        text_field({"premise": " "}, "premise", "f:1")


def test_make_task_checks_and_records():
    it = TaskItem("a", "en", "Q:", references=["x"])
    with pytest.raises(DataValidationError, match=r"no items for language 'de'"):
        make_task("t", "generate", ["f1"], {"en": [it], "de": []}, {}, {})
    task = make_task("t", "generate", ["f1"], {"en": [it]}, {}, {"data_files": {"en": "x.jsonl"}, "stop": None, "n_boot": 5})
    assert task.config == {"data_files": {"en": "x.jsonl"}, "max_new_tokens": 16, "stop": None}
    assert task.stop is None and task.n_boot == 5
    choice = make_task("t", "choice", ["accuracy"], {"en": [TaskItem("a", "en", "Q:", [" x", " y"], 0)]}, {},
                       {"length_norm": "tokens", "calibrate": True})
    assert choice.config == {"length_norm": "tokens", "calibrate": True}
    assert (choice.length_norm, choice.calibrate) == ("tokens", True)
    assert choice.to_dict()["length_norm"] == "tokens"
    with pytest.raises(DataValidationError, match=r"length_norm='bytes'"):
        make_task("t", "choice", ["accuracy"], {"en": [TaskItem("a", "en", "Q:", [" x"], 0)]}, {}, {"length_norm": "bytes"})
