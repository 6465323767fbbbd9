"""Task splits (data.tasks.selection via load_task): items labelled with their split; dev and
test disjoint, deterministic and covering every item; fraction pairs and custom fractions;
recorded in task.config; an empty split refused; the same item in the same split in every
language."""
from __future__ import annotations

import pytest

from clas_lens.data.splits import split_label
from clas_lens.data.tasks import TaskItem, load_task
from clas_lens.data.tasks.base import Task
from clas_lens.data.tasks.selection import apply_split, label_items, record_split
from clas_lens.errors import DataValidationError


@pytest.mark.parametrize("name", ["nli", "qa", "cloze"])
def test_dev_and_test_are_disjoint_and_cover_every_item(name):
    whole = load_task(name, langs=["en", "de"])
    dev = load_task(name, langs=["en", "de"], split="dev")
    test = load_task(name, langs=["en", "de"], split="test")
    for lang in ("en", "de"):
        ids = [it.id for it in whole.items(lang)]
        d = [it.id for it in dev.items(lang)]
        t = [it.id for it in test.items(lang)]
        assert not set(d) & set(t) and sorted(d + t) == sorted(ids)
        assert d == [i for i in ids if i in set(d)]  # item order kept
        assert {it.split for it in dev.items(lang)} == {"dev"} and {it.split for it in test.items(lang)} == {"test"}
        # without split= every item carries the split it falls in
        assert [it.split for it in whole.items(lang)] == [split_label(name, i, {"dev": 0.3, "test": 0.7}) for i in ids]
    # parallel items share their split across languages; loading again gives the same split
    assert [it.id for it in dev.items("en")] == [it.id for it in dev.items("de")]
    assert [it.id for it in load_task(name, langs=["en"], split="dev").items("en")] == [it.id for it in dev.items("en")]
    assert dev.config["split"] == "dev" and dev.config["split_range"] == [0.0, 0.3] and dev.config["split_key"] == name
    assert whole.config["split"] is None and whole.to_dict()["config"]["split_fractions"] == {"dev": 0.3, "test": 0.7}


def test_fraction_pairs_and_custom_fractions():
    whole = load_task("nli", langs=["en"])
    pair = load_task("nli", langs=["en"], split=(0.0, 0.3))
    assert [it.id for it in pair.items("en")] == [it.id for it in load_task("nli", langs=["en"], split="dev").items("en")]
    assert {it.split for it in pair.items("en")} == {"0-0.3"} and pair.config["split"] == "0-0.3"
    half = load_task("nli", langs=["en"], split="a", split_fractions={"a": 0.5, "b": 0.5})
    assert 0.3 < len(half.items("en")) / len(whole.items("en")) < 0.7
    with pytest.raises(DataValidationError, match="Unknown split 'stats'"):
        load_task("nli", langs=["en"], split="stats")


def test_apply_split_refuses_an_empty_language():
    items = [TaskItem("only", "en", "Q:", [" a", " b"], 0)]
    task = Task(name="toy", mode="choice", metrics=["accuracy"], item_map={"en": items})
    other = "dev" if split_label("toy", "only", {"dev": 0.3, "test": 0.7}) == "test" else "test"
    with pytest.raises(DataValidationError, match=f"split '{other}' leaves no items for language 'en'"):
        apply_split(task, other)


def test_helpers():
    it = label_items([TaskItem("x", "en", "Q:")], "k", {"all": 1.0})[0]
    assert it.split == "all"
    cfg: dict = {}
    record_split(cfg, "k", (0.2, 0.4), {"dev": 0.3, "test": 0.7})
    assert cfg == {"split": "0.2-0.4", "split_range": [0.2, 0.4], "split_key": "k", "split_fractions": {"dev": 0.3, "test": 0.7}}
