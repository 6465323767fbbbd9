"""Running a task with a model: per-item predictions, and per-language scores with CIs.

:func:`predict` scores one language of a task: choice tasks by the log-probability of each
option (:mod:`~clas_lens.evaluation.choice`: ``margin``, ``gold_logprob``, ``accuracy``;
optional length normalisation and contextual calibration), generation tasks by greedy
generation (:func:`clas_lens.generation.generate`) scored with SQuAD F1 and exact match, plus
``gold_logprob``, the teacher-forced log-likelihood of the first reference after the prompt;
language-model tasks by the mean token NLL of each text (:func:`clas_lens.lm_nll.sentence_nll`:
``nll`` and ``neg_nll``). Every row carries the item's ``split``. :func:`score_task`
summarises every language with a seeded bootstrap CI of the mean. Hooks active on the model
(steering) apply; :func:`clas_lens.evaluation.evaluate` runs both under steering conditions.

>>> from clas_lens.data.tasks import load_task
>>> from clas_lens.testing import tiny_model
>>> df = predict(tiny_model("llama"), load_task("cloze", langs=["en"]), "en", limit=2)
>>> df["item_id"].tolist()
['weekday-01', 'weekday-02']
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from clas_lens.checks import positive_int
from clas_lens.data.tasks import Task
from clas_lens.data.tasks.base import option_prefix
from clas_lens.data.tasks.options import check_length_norm
from clas_lens.errors import DataValidationError
from clas_lens.evaluation.choice import CHOICE_COLUMNS, predict_choice
from clas_lens.evaluation.inference import metric_row
from clas_lens.evaluation.summary import split_of
from clas_lens.generation import generate
from clas_lens.lm_nll import sentence_nll
from clas_lens.metrics import exact_match, resolve_confidence, squad_f1
from clas_lens.scoring import score_choices
from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Columns of :func:`predict` for generation and language-model tasks (choice tasks:
#: :data:`~clas_lens.evaluation.choice.CHOICE_COLUMNS`), in order.
GENERATE_COLUMNS = [
    "task", "lang", "item_id", "split", "prediction", "reference", "f1", "exact_match", "gold_logprob", "references",
]
LM_COLUMNS = ["task", "lang", "item_id", "split", "nll", "neg_nll"]
#: Columns of :func:`score_task`, in order.
SCORE_COLUMNS = ["task", "lang", "metric", "value", "ci_low", "ci_high", "n", "split"]


def predict(
    model,
    task,
    lang: str,
    *,
    limit: int | None = None,
    batch_size: int = 32,
    length_norm: str | None = None,
    calibrate: bool | None = None,
) -> pd.DataFrame:
    """One row per item of ``task`` in ``lang``: task, lang, item_id, split, then per mode
    (:data:`~clas_lens.evaluation.choice.CHOICE_COLUMNS`, :data:`GENERATE_COLUMNS`,
    :data:`LM_COLUMNS`). ``limit`` takes the first n items.

    Choice tasks: ``length_norm`` ("none", "tokens", "chars") and ``calibrate`` default to the
    task's (``load_task(..., length_norm=, calibrate=)``; plain summed log-probs otherwise).
    Hooks active on the model (steering) apply. ``batch_size`` counts sequences per forward
    pass (one per option for choice tasks). ``task`` is a :class:`~clas_lens.data.tasks.Task`;
    another object that brings its own ``predict(model, lang, *, limit, batch_size)`` is run
    with it, one without is scored like a Task from its ``name``, ``mode`` and ``items(lang)``.

    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.testing import tiny_model
    >>> df = predict(tiny_model("llama"), load_task("cloze", langs=["en"]), "en", limit=2)
    >>> list(df.columns[:7]), len(df)
    (['task', 'lang', 'item_id', 'split', 'prediction', 'reference', 'accuracy'], 2)
    """
    if not isinstance(task, Task) and callable(getattr(task, "predict", None)):
        return task.predict(model, lang, limit=limit, batch_size=batch_size)
    positive_int(batch_size, "batch_size")
    items = task.items(lang)
    if positive_int(limit, "limit", none_ok=True) is not None:
        items = items[:limit]
    if task.mode == "choice":
        norm = check_length_norm(length_norm if length_norm is not None else getattr(task, "length_norm", "none"))
        cal = bool(calibrate if calibrate is not None else getattr(task, "calibrate", False))
        return predict_choice(model, task.name, lang, items, batch_size, length_norm=norm, calibrate=cal)
    if task.mode == "generate":
        gen = {"max_new_tokens": getattr(task, "max_new_tokens", 16), "stop": getattr(task, "stop", "\n")}
        return _predict_generate(model, task.name, lang, items, batch_size, **gen)
    if task.mode == "lm":
        return _predict_lm(model, task.name, lang, items, batch_size)
    raise DataValidationError(f"Task {task.name!r} has mode {task.mode!r}; expected 'choice', 'generate' or 'lm'.")


def _predict_lm(model, name: str, lang: str, items: list, batch_size: int) -> pd.DataFrame:
    nll = sentence_nll(model, [it.prompt for it in items], batch_size=batch_size).tolist()
    rows = [
        {"task": name, "lang": lang, "item_id": it.id, "split": getattr(it, "split", None), "nll": v, "neg_nll": -v}
        for it, v in zip(items, nll)
    ]
    return pd.DataFrame(rows, columns=LM_COLUMNS)


def _predict_generate(
    model, name: str, lang: str, items: list, batch_size: int, *, max_new_tokens: int, stop: str | None
) -> pd.DataFrame:
    # Generate in order of prompt length (less padding), then restore the item order.
    order = sorted(range(len(items)), key=lambda k: len(items[k].prompt))
    outs = generate(model, [items[k].prompt for k in order], max_new_tokens, stop=stop, batch_size=batch_size)
    by_item = {k: o for k, o in zip(order, outs)}
    # Teacher-forced log-likelihood of the first reference, as the single option after the prompt.
    prefix = option_prefix(None, lang)
    gold = score_choices(model, [(it.prompt, [prefix + it.references[0]]) for it in items], batch_size=batch_size)
    rows = []
    for k, it in enumerate(items):
        pred = by_item[k].strip()
        refs = list(it.references or [])
        rows.append(
            {
                "task": name,
                "lang": lang,
                "item_id": it.id,
                "split": getattr(it, "split", None),
                "prediction": pred,
                "reference": refs[0],
                "f1": squad_f1(pred, refs, lang),
                "exact_match": exact_match(pred, refs, lang),
                "gold_logprob": float(gold[k][0]),
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
    task, lang, metric, value, ci_low, ci_high, n (seeded percentile bootstrap CI of the mean)
    and split (the items' split labels, e.g. "dev+test").
    The per-item predictions are in ``df.attrs["predictions"]``.

    ``langs``: default the task's. ``n_boot``, ``seed``, ``confidence``: default the task's
    settings (``alpha``: deprecated complement of ``confidence``).

    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.testing import tiny_model
    >>> df = score_task(tiny_model("llama"), load_task("cloze", langs=["en", "de"]), limit=3)
    >>> list(df.columns), df["n"].tolist()[:3]
    (['task', 'lang', 'metric', 'value', 'ci_low', 'ci_high', 'n', 'split'], [3, 3, 3])
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
            row["split"] = split_of(df)
            rows.append(row)
    out = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    out.attrs["predictions"] = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()
    return out
