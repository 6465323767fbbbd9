"""Task registry: names, unknown task / language / option errors, available languages,
duplicate names refused, a user task registered and loaded like the built-in ones."""
from __future__ import annotations

import pytest

import clas_lens.data.tasks as tasks_package
from clas_lens.data.tasks import TASKS, TaskItem, available_languages, load_task, register_task, registry, task_names
from clas_lens.data.tasks.base import make_task
from clas_lens.errors import DataValidationError


def test_unknown_task_lists_available():
    with pytest.raises(DataValidationError, match=r"Unknown task 'nope'; available tasks: nli, qa, cloze, xnli, xquad, lm, completion"):
        load_task("nope")
    assert TASKS == ("nli", "qa", "cloze", "xnli", "xquad", "lm", "completion")
    assert task_names() == TASKS


def test_unknown_language_lists_available():
    with pytest.raises(DataValidationError, match=r"no language\(s\) 'ko'; available: en.*data_files"):
        load_task("nli", langs=["en", "ko"])
    with pytest.raises(DataValidationError, match=r"Unknown language code 'klingon'"):
        load_task("cloze", langs=["klingon"])
    with pytest.raises(DataValidationError, match=r"no language\(s\) 'ja'; available: ar, bg"):
        load_task("xnli", langs=["ja"])
    task = load_task("cloze", langs=["en"])
    with pytest.raises(DataValidationError, match=r"no language 'de'; it has en"):
        task.items("de")


def test_unknown_option_lists_accepted():
    with pytest.raises(DataValidationError, match=r"Unknown option\(s\) \['kinds'\] for task 'nli'; accepted: .*label_words"):
        load_task("nli", langs=["en"], kinds=("weekday",))


def test_available_languages():
    assert "en" in available_languages("nli") and "en" in available_languages("qa")
    assert set(("en", "de", "zh")) <= set(available_languages("cloze"))
    assert len(available_languages("xnli")) == 15 and len(available_languages("xquad")) == 12
    with pytest.raises(DataValidationError, match="Unknown task 'nope'"):
        available_languages("nope")


def test_duplicate_task_name_is_refused():
    for name in TASKS:
        with pytest.raises(DataValidationError, match=f"Task '{name}' is already registered"):
            register_task(name, lambda langs, **options: None, languages=lambda **options: [])
    assert task_names() == ("nli", "qa", "cloze", "xnli", "xquad", "lm", "completion")  # nothing replaced or added
    with pytest.raises(DataValidationError, match="non-empty string"):
        register_task(" ", lambda langs, **options: None, languages=lambda **options: [])


@pytest.fixture()
def isolated_registry(monkeypatch):
    """The registry as it is, restored after the test (a test's task does not leak)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _load_echo(langs, **options):
    items = {lang: [TaskItem("1", lang, f"Say {lang}:", [" yes", " no"], 0)] for lang in langs}
    return make_task("echo", "choice", ["accuracy"], items, {"loud": options.get("loud")}, options)


def test_user_task_is_registered_listed_and_loaded(isolated_registry):
    register_task("echo", _load_echo, options={"loud"}, languages=lambda **options: ["en", "de"])
    # TASKS is read from the registry on each access of the module attribute
    assert tasks_package.TASKS[-1] == "echo" and task_names()[-1] == "echo"
    assert available_languages("echo") == ["en", "de"]
    task = load_task("echo", langs=["de"], loud=True, seed=4)
    assert task.items("de")[0].prompt == "Say de:" and task.config["loud"] is True and task.seed == 4
    # load_task records the split (all items here) and labels every item with its split
    assert task.config["split"] is None and task.config["split_key"] == "echo"
    assert task.items("de")[0].split in ("dev", "test")
    assert load_task("echo").langs == ["en", "de"]
    with pytest.raises(DataValidationError, match=r"no language\(s\) 'fr'; available: en, de\.$"):
        load_task("echo", langs=["fr"])
    with pytest.raises(DataValidationError, match="already registered"):
        register_task("echo", _load_echo, languages=lambda **options: [])


def test_user_task_gone_after_isolation():
    assert "echo" not in task_names() and tasks_package.TASKS == TASKS


def test_alpha_option_is_deprecated_for_confidence():
    with pytest.warns(DeprecationWarning, match=r"load_task\(alpha=...\) is deprecated; pass confidence=0.9"):
        task = load_task("cloze", langs=["en"], alpha=0.1)
    assert task.confidence == pytest.approx(0.9) and task.to_dict()["confidence"] == pytest.approx(0.9)
    assert load_task("cloze", langs=["en"], confidence=0.8).confidence == 0.8
    with pytest.warns(DeprecationWarning), pytest.raises(DataValidationError, match="disagree"):
        load_task("cloze", langs=["en"], alpha=0.1, confidence=0.8)
