"""Per-item rows of choice tasks: options scored, normalised, calibrated; margin and gold log-prob.

Each option's summed log-probability after the prompt (:func:`clas_lens.scoring.score_choices`)
is the raw score. The decision score is that sum divided by the option's length
(``length_norm``: "none", "tokens", "chars"; :func:`clas_lens.scoring.length_normalise`) and,
with ``calibrate=True``, minus the same quantity after the item's content-free prompt (its
template filled with "N/A"; contextual calibration, Zhao et al. 2021), scored once per distinct
(content-free prompt, options). Per item: ``accuracy`` (argmax of the decision scores is the
gold option), ``margin`` (gold decision score minus the best other's; > 0 exactly when right)
and ``gold_logprob`` (the gold option's raw summed log-probability).

>>> from clas_lens.data.tasks import load_task
>>> from clas_lens.testing import tiny_model
>>> items = load_task("cloze", langs=["en"]).items("en")[:2]
>>> df = predict_choice(tiny_model("llama"), "cloze", "en", items, calibrate=True)
>>> list(df.columns) == CHOICE_COLUMNS, bool(((df.margin > 0) == (df.accuracy == 1)).all())
(True, True)
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from clas_lens.errors import DataValidationError
from clas_lens.scoring import length_normalise, option_token_counts, score_choices

#: Columns of choice predictions, in order.
CHOICE_COLUMNS = [
    "task", "lang", "item_id", "split", "prediction", "reference", "accuracy", "margin", "gold_logprob",
    "pred_index", "answer_index",
]


def decision_scores(
    model, items: Sequence, raw: list[torch.Tensor], *, length_norm: str, calibrate: bool, batch_size: int = 32
) -> list[torch.Tensor]:
    """The scores options are chosen by: ``raw`` summed log-probs after ``length_norm`` and,
    with ``calibrate``, minus the same after each item's ``content_free`` prompt.

    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.data.tasks import TaskItem
    >>> it = TaskItem("a", "en", "One, two,", [" three", " four"], 0, content_free="N/A")
    >>> decision_scores(tiny_model("llama"), [it], [torch.tensor([-2.0, -3.0])], length_norm="chars",
    ...                 calibrate=False)[0].tolist()
    [-0.3333333432674408, -0.6000000238418579]
    """
    tok = model.tokenizer
    out = [
        length_normalise(s, it.options, length_norm, option_token_counts(tok, it.prompt, it.options)
                         if length_norm == "tokens" else None)
        for it, s in zip(items, raw)
    ]
    if not calibrate:
        return out
    missing = [it.id for it in items if not getattr(it, "content_free", None)]
    if missing:
        raise DataValidationError(
            f"calibrate=True needs a content-free prompt per item; item {missing[0]!r} has none "
            "(build the task with load_task, or set TaskItem.content_free)."
        )
    keys = list(dict.fromkeys((it.content_free, tuple(it.options)) for it in items))
    cf = dict(zip(keys, score_choices(model, [(p, list(o)) for p, o in keys], batch_size=batch_size,
                                      length_norm=length_norm)))
    return [s - cf[(it.content_free, tuple(it.options))] for it, s in zip(items, out)]


def predict_choice(
    model,
    name: str,
    lang: str,
    items: Sequence,
    batch_size: int = 32,
    *,
    length_norm: str = "none",
    calibrate: bool = False,
) -> pd.DataFrame:
    """One row per choice item (:data:`CHOICE_COLUMNS`); see the module docstring."""
    raw = score_choices(model, [(it.prompt, it.options) for it in items], batch_size=batch_size)
    scores = decision_scores(model, items, raw, length_norm=length_norm, calibrate=calibrate, batch_size=batch_size)
    rows = []
    for it, r, s in zip(items, raw, scores):
        pred = int(s.argmax())
        others = [float(v) for k, v in enumerate(s.tolist()) if k != it.answer]
        margin = float(s[it.answer]) - max(others) if others else float("inf")
        rows.append(
            {
                "task": name,
                "lang": lang,
                "item_id": it.id,
                "split": getattr(it, "split", None),
                "prediction": it.options[pred].strip(),
                "reference": it.options[it.answer].strip(),
                "accuracy": float(pred == it.answer),
                "margin": margin,
                "gold_logprob": float(r[it.answer]),
                "pred_index": pred,
                "answer_index": it.answer,
            }
        )
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)
