"""The item split of a task: every item labelled with its split, and ``split=`` keeping one.

:func:`apply_split` labels each item of a task with the named split it falls in (by a stable
hash of the task's name and the item id, :mod:`clas_lens.data.splits`; default fractions dev
0.3 / test 0.7) and, when ``split`` is given, keeps only that split's items, labelled with it.
The choice is recorded in ``task.config`` (``split``, ``split_range``, ``split_key``,
``split_fractions``). :func:`~clas_lens.data.tasks.load_task` calls it for every task that
does not split its items itself (``lm`` and ``completion`` take the corpus's dev and test parts).

>>> from clas_lens.data.tasks.base import Task, TaskItem
>>> items = [TaskItem(f"i{k}", "en", "Q:", references=["a"]) for k in range(20)]
>>> task = apply_split(Task(name="toy", mode="generate", metrics=["f1"], item_map={"en": items}), "dev")
>>> {it.split for it in task.items("en")}, task.config["split"]
({'dev'}, 'dev')
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from clas_lens.data.splits import TASK_FRACTIONS, Split, check_fractions, in_range, split_label, split_record
from clas_lens.data.tasks.base import Task, TaskItem
from clas_lens.errors import DataValidationError


def label_items(items: list[TaskItem], key: str, fractions: Mapping[str, float]) -> list[TaskItem]:
    """``items`` with ``split`` set to the named split each falls in.

    >>> it = label_items([TaskItem("weekday-01", "en", "Q:")], "cloze", TASK_FRACTIONS)[0]
    >>> it.split in ("dev", "test")
    True
    """
    return [dataclasses.replace(it, split=split_label(key, it.id, fractions)) for it in items]


def record_split(config: dict, key: str, split: Split | None, fractions: Mapping[str, float]) -> None:
    """Write the split choice into a task's ``config``.

    >>> cfg = {}; record_split(cfg, "nli", None, TASK_FRACTIONS); cfg["split"], cfg["split_range"]
    (None, [0.0, 1.0])
    """
    rec = split_record(key, split, fractions)
    config.update(split=rec["split"], split_range=rec["range"], split_key=key, split_fractions=rec["fractions"])


def apply_split(
    task: Task, split: Split | None = None, fractions: Mapping[str, float] | None = None, key: str | None = None
) -> Task:
    """Label the items of ``task`` with their split and keep only ``split``'s (all when None).

    ``fractions``: default :data:`~clas_lens.data.splits.TASK_FRACTIONS`; ``key``: default
    the task's name. Returns ``task``, changed in place. A language left without items is an
    error.

    >>> from clas_lens.data.tasks import load_task
    >>> dev, test = load_task("nli", langs=["en"], split="dev"), load_task("nli", langs=["en"], split="test")
    >>> {i.id for i in dev.items("en")} & {i.id for i in test.items("en")}
    set()
    """
    fractions = check_fractions(fractions, TASK_FRACTIONS)
    key = key or task.name
    if split is None:
        task.item_map = {lang: label_items(items, key, fractions) for lang, items in task.item_map.items()}
    else:
        rec = split_record(key, split, fractions)
        label, bounds = rec["split"], (rec["range"][0], rec["range"][1])
        kept: dict[str, list[TaskItem]] = {}
        for lang, items in task.item_map.items():
            kept[lang] = [dataclasses.replace(it, split=label) for it in items if in_range(key, it.id, bounds)]
            if not kept[lang]:
                raise DataValidationError(
                    f"Task {task.name!r}: split {split!r} leaves no items for language {lang!r} "
                    f"(of {len(items)}); use a larger split or split=None."
                )
        task.item_map = kept
    record_split(task.config, key, split, fractions)
    return task
