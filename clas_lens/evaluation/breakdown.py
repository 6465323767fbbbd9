"""Reports beside the gains: per-class recall of choice tasks, and whether the anchor is kept.

* :func:`per_class_recall`: for each (task, lang, condition) and gold class, the share of its
  items predicted right, with a Wilson CI -- an NLI model that always answers "true" scores
  a third on balanced data and recall 1 / 0 / 0, which accuracy alone hides.
* :func:`anchor_kept`: is the anchor language (English) unharmed by a steering condition?
  "kept" only when equivalence within ``margin`` is shown by two one-sided tests (TOST,
  :func:`~clas_lens.metrics.equivalence_test`); a non-significant drop is "not shown", never
  "kept". See docs/methods.md, "Statistical tests".

>>> preds = pd.DataFrame({"task": "nli", "lang": "en", "item_id": list("abcd"),
...                       "answer_index": [0, 0, 1, 2], "pred_index": [0, 0, 0, 2]})
>>> per_class_recall(preds)[["label", "recall", "n"]].to_dict("list")
{'label': ['entailment', 'neutral', 'contradiction'], 'recall': [1.0, 0.0, 1.0], 'n': [2, 1, 1]}
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from clas_lens.data.tasks import NLI_LABELS
from clas_lens.errors import DataValidationError
from clas_lens.evaluation.inference import paired_values
from clas_lens.metrics import equivalence_test, wilson_ci
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED, canonical_condition

#: Tasks whose classes are the NLI labels (entailment, neutral, contradiction).
NLI_TASKS: frozenset[str] = frozenset({"nli", "xnli"})
#: Columns of :func:`per_class_recall` and :func:`anchor_kept`.
RECALL_COLUMNS = ["task", "lang", "condition", "class", "label", "recall", "ci_low", "ci_high", "n"]
ANCHOR_COLUMNS = ["task", "lang", "condition", "metric", "diff", "ci_low", "ci_high", "p_value", "margin", "n", "verdict"]


def per_class_recall(frame: pd.DataFrame, *, confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Recall per gold class of choice predictions (``answer_index``, ``pred_index``): one row
    per (task, lang, condition, class) -- :data:`RECALL_COLUMNS`. ``label``: the NLI label for
    nli / xnli, else the gold option (``reference``). Without a ``condition`` column it is None.
    """
    need = {"task", "lang", "answer_index", "pred_index"}
    if not need <= set(frame.columns):
        raise DataValidationError(f"per_class_recall needs the columns {sorted(need)} (choice predictions).")
    df = frame if "condition" in frame.columns else frame.assign(condition=None)
    rows = []
    for (task, lang, cond), g in df.groupby(["task", "lang", "condition"], sort=False, dropna=False):
        for cls, h in sorted(g.groupby("answer_index"), key=lambda kv: kv[0]):
            hits = int((h["pred_index"] == cls).sum())
            if task in NLI_TASKS and 0 <= int(cls) < len(NLI_LABELS):
                label = NLI_LABELS[int(cls)]
            else:
                label = str(h["reference"].iloc[0]) if "reference" in h.columns else str(cls)
            low, high = wilson_ci(hits, len(h), confidence)
            rows.append({"task": task, "lang": lang, "condition": cond, "class": int(cls), "label": label,
                         "recall": hits / len(h), "ci_low": low, "ci_high": high, "n": int(len(h))})
    return pd.DataFrame(rows, columns=RECALL_COLUMNS)


def anchor_kept(
    frame: pd.DataFrame,
    anchor: str = "en",
    *,
    margin: float | Mapping[str, float],
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    level: float = 0.05,
) -> pd.DataFrame:
    """Equivalence of each steered condition to the unsteered one in the ``anchor`` language.

    ``frame``: :func:`~clas_lens.evaluation.evaluate`'s result (its ``attrs["predictions"]``
    are read) or a predictions table. ``margin``: the largest change that counts as none, one
    number or ``{metric: number}``; ``metrics``: default the dense metrics present (margin,
    gold_logprob, neg_nll, nll, f1) else accuracy. One row per (task, condition, metric) --
    :data:`ANCHOR_COLUMNS`: the mean paired difference, its ``1 - 2 level`` t interval, the
    TOST p-value and ``verdict`` "kept" (equivalence shown) or "not shown".

    >>> preds = pd.DataFrame({"task": "t", "lang": "en", "item_id": [str(k) for k in range(40)] * 2,
    ...                       "condition": ["unsteered"] * 40 + ["s"] * 40,
    ...                       "margin": [0.0] * 40 + [0.01, -0.01] * 20})
    >>> anchor_kept(preds, margin=0.1)[["condition", "metric", "verdict"]].values.tolist()
    [['s', 'margin', 'kept']]
    """
    preds = frame if "item_id" in frame.columns else frame.attrs.get("predictions")
    if preds is None:
        raise DataValidationError("anchor_kept needs per-item predictions: pass evaluate()'s result or its attrs['predictions'].")
    ref = canonical_condition(baseline or frame.attrs.get("unsteered", UNSTEERED))
    preds = preds.assign(condition=preds["condition"].map(canonical_condition))
    preds = preds[preds["lang"] == anchor]
    if preds.empty:
        raise DataValidationError(f"anchor_kept: no predictions in the anchor language {anchor!r}.")
    if metrics is None:
        metrics = [m for m in ("margin", "gold_logprob", "neg_nll", "nll", "f1") if m in preds.columns]
        metrics = metrics or [m for m in ("accuracy", "exact_match") if m in preds.columns]
    rows: list[dict[str, Any]] = []
    for (task, cond), g in preds.groupby(["task", "condition"], sort=False):
        base = preds[(preds["task"] == task) & (preds["condition"] == ref)]
        if cond == ref or base.empty:
            continue
        for metric in metrics:
            m = margin[metric] if isinstance(margin, Mapping) else margin
            b, s = paired_values(base, g, metric, f"{task}/{anchor}/{cond}")
            r = equivalence_test(s - b, float(m), level=level)
            rows.append({"task": task, "lang": anchor, "condition": cond, "metric": metric,
                         "diff": float(np.mean(s - b)), "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "p_value": r["p_value"], "margin": float(m), "n": r["n"],
                         "verdict": "kept" if r["equivalent"] else "not shown"})
    return pd.DataFrame(rows, columns=ANCHOR_COLUMNS)
