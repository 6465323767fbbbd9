"""Running a task with a model: per-item predictions, and per-language scores with CIs.

:func:`predict` scores one language of a task: choice tasks by the summed log-probability of
each option (:func:`clas_lens.scoring.score_choices`), generation tasks by greedy generation
(:func:`clas_lens.generation.generate`) scored with SQuAD F1 and exact match.
:func:`score_task` summarises every language with a seeded bootstrap CI of the mean. Hooks
active on the model (steering) apply; :func:`clas_lens.evaluation.evaluate` runs both under
steering conditions.

>>> from clas_lens.data.tasks import load_task
>>> from clas_lens.testing import tiny_model
>>> df = predict(tiny_model("llama"), load_task("cloze", langs=["en"]), "en", limit=2)
>>> df["item_id"].tolist()
['weekday-01', 'weekday-02']
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from clas_lens.data.tasks import Task
from clas_lens.errors import DataValidationError
from clas_lens.evaluation.summary import metric_row
from clas_lens.generation import generate
from clas_lens.metrics import exact_match, resolve_confidence, squad_f1
from clas_lens.scoring import score_choices
from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Columns of :func:`predict` for choice tasks and for generation tasks, in order.
CHOICE_COLUMNS = ["task", "lang", "item_id", "prediction", "reference", "accuracy", "margin", "pred_index", "answer_index"]
GENERATE_COLUMNS = ["task", "lang", "item_id", "prediction", "reference", "f1", "exact_match", "references"]
#: Columns of :func:`score_task`, in order.
SCORE_COLUMNS = ["task", "lang", "metric", "value", "ci_low", "ci_high", "n"]


def predict(model, task, lang: str, *, limit: int | None = None, batch_size: int = 32) -> pd.DataFrame:
    """One row per item of ``task`` in ``lang``: task, lang, item_id, prediction, reference,
    the metric columns and, for choice tasks, ``margin`` (log-prob of the correct option minus
    the best other) plus ``pred_index`` / ``answer_index``. ``limit`` takes the first n items.

    Hooks active on the model (steering) apply. ``batch_size`` counts sequences per forward
    pass (one per option for choice tasks). ``task`` is a :class:`~clas_lens.data.tasks.Task`;
    another object that brings its own ``predict(model, lang, *, limit, batch_size)`` is run
    with it, one without is scored like a Task from its ``name``, ``mode`` and ``items(lang)``.

    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.testing import tiny_model
    >>> df = predict(tiny_model("llama"), load_task("cloze", langs=["en"]), "en", limit=2)
    >>> list(df.columns[:6]), len(df)
    (['task', 'lang', 'item_id', 'prediction', 'reference', 'accuracy'], 2)
    """
    if not isinstance(task, Task) and callable(getattr(task, "predict", None)):
        return task.predict(model, lang, limit=limit, batch_size=batch_size)
    items = task.items(lang)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}.")
        items = items[:limit]
    if task.mode == "choice":
        return _predict_choice(model, task.name, lang, items, batch_size)
    if task.mode == "generate":
        gen = {"max_new_tokens": getattr(task, "max_new_tokens", 16), "stop": getattr(task, "stop", "\n")}
        return _predict_generate(model, task.name, lang, items, batch_size, **gen)
    raise DataValidationError(f"Task {task.name!r} has mode {task.mode!r}; expected 'choice' or 'generate'.")


def _predict_choice(model, name: str, lang: str, items: list, batch_size: int) -> pd.DataFrame:
    scores = score_choices(model, [(it.prompt, it.options) for it in items], batch_size=batch_size)
    rows = []
    for it, s in zip(items, scores):
        pred = int(s.argmax())
        others = [float(v) for k, v in enumerate(s.tolist()) if k != it.answer]
        margin = float(s[it.answer]) - max(others) if others else float("inf")
        rows.append(
            {
                "task": name,
                "lang": lang,
                "item_id": it.id,
                "prediction": it.options[pred].strip(),
                "reference": it.options[it.answer].strip(),
                "accuracy": float(pred == it.answer),
                "margin": margin,
                "pred_index": pred,
                "answer_index": it.answer,
            }
        )
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def _predict_generate(
    model, name: str, lang: str, items: list, batch_size: int, *, max_new_tokens: int, stop: str | None
) -> pd.DataFrame:
    # Generate in order of prompt length (less padding), then restore the item order.
    order = sorted(range(len(items)), key=lambda k: len(items[k].prompt))
    outs = generate(model, [items[k].prompt for k in order], max_new_tokens, stop=stop, batch_size=batch_size)
    by_item = {k: o for k, o in zip(order, outs)}
    rows = []
    for k, it in enumerate(items):
        pred = by_item[k].strip()
        refs = list(it.references or [])
        rows.append(
            {
                "task": name,
                "lang": lang,
                "item_id": it.id,
                "prediction": pred,
                "reference": refs[0],
                "f1": squad_f1(pred, refs, lang),
                "exact_match": exact_match(pred, refs, lang),
                "references": refs,
            }
        )
    return pd.DataFrame(rows, columns=GENERATE_COLUMNS)


def score_task(
    model,
    task,
    langs: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    batch_size: int = 32,
    n_boot: int | None = None,
    seed: int | None = None,
    confidence: float | None = None,
    alpha: float | None = None,
) -> pd.DataFrame:
    """Tidy scores of ``task`` without steering: one row per (language, metric) with columns
    task, lang, metric, value, ci_low, ci_high, n (seeded percentile bootstrap CI of the mean).
    The per-item predictions are in ``df.attrs["predictions"]``.

    ``langs``: default the task's. ``n_boot``, ``seed``, ``confidence``: default the task's
    settings (``alpha``: deprecated complement of ``confidence``).

    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.testing import tiny_model
    >>> df = score_task(tiny_model("llama"), load_task("cloze", langs=["en", "de"]), limit=3)
    >>> list(df.columns), df["n"].tolist()
    (['task', 'lang', 'metric', 'value', 'ci_low', 'ci_high', 'n'], [3, 3])
    """
    if alpha is not None:
        confidence = resolve_confidence(DEFAULT_CONFIDENCE if confidence is None else confidence, alpha, where="score_task")
    boot: dict[str, Any] = {
        "n_boot": n_boot if n_boot is not None else getattr(task, "n_boot", 1000),
        "seed": seed if seed is not None else getattr(task, "seed", 0),
        "confidence": confidence if confidence is not None else getattr(task, "confidence", DEFAULT_CONFIDENCE),
    }
    langs = list(langs) if langs is not None else list(task.langs)
    for lang in langs:
        task.items(lang)  # a clear error for an unknown language before any work
    preds, rows = [], []
    for lang in langs:
        df = predict(model, task, lang, limit=limit, batch_size=batch_size)
        preds.append(df)
        for metric in task.metrics:
            row: dict[str, Any] = {"task": task.name, "lang": lang, "metric": metric}
            row.update(metric_row(df[metric].astype(float).to_numpy(), **boot))
            rows.append(row)
    out = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    out.attrs["predictions"] = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()
    return out
