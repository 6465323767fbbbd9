"""Evaluation: running tasks with a model, under steering conditions, with CIs and paired tests.

* :mod:`~clas_lens.evaluation.prediction`: :func:`predict` (per-item predictions of one language)
  and :func:`score_task` (per-language scores with bootstrap CIs, no steering);
* :mod:`~clas_lens.evaluation.steered`: :func:`evaluate` (every language under every steering
  condition, with paired differences against the unsteered condition) and :func:`describe`;
* :mod:`~clas_lens.evaluation.choice`: choice-task rows (margin, gold_logprob, accuracy;
  ``length_norm`` and contextual calibration);
* :mod:`~clas_lens.evaluation.summary`: the pure summary :func:`summarise` (calibrated tests,
  ``mde``, ``p_holm``, ``split``); :mod:`~clas_lens.evaluation.inference`: its statistics
  (:func:`metric_row`, :func:`paired_row` -- the bootstrap, which :mod:`clas_lens.sweep`
  reuses -- :func:`level_row`, :func:`gain_row`, :func:`metric_kind`);
* :mod:`~clas_lens.evaluation.breakdown`: :func:`per_class_recall` and :func:`anchor_kept`
  (TOST: "kept" only when equivalence is shown).

Every interval takes ``confidence=0.95`` (``alpha=``, its complement, still works for one
release with a DeprecationWarning). The unsteered condition is written ``"unsteered"``
(:data:`clas_lens.vocab.UNSTEERED`); results that call it ``"baseline"`` are still read. See
docs/methods.md, "Evaluation".

>>> from clas_lens.data.tasks import load_task
>>> from clas_lens.testing import tiny_model
>>> scores = score_task(tiny_model("llama"), load_task("cloze", langs=["en"]), limit=2, n_boot=100)
>>> scores[["metric", "n"]].to_dict("list")
{'metric': ['margin', 'gold_logprob', 'accuracy'], 'n': [2, 2, 2]}
"""
from __future__ import annotations

import warnings
from typing import Any

from clas_lens.evaluation.breakdown import ANCHOR_COLUMNS, RECALL_COLUMNS, anchor_kept, per_class_recall
from clas_lens.evaluation.choice import CHOICE_COLUMNS
from clas_lens.evaluation.inference import gain_row, level_row, metric_kind, metric_row, paired_row
from clas_lens.evaluation.prediction import GENERATE_COLUMNS, LM_COLUMNS, SCORE_COLUMNS, predict, score_task
from clas_lens.evaluation.steered import describe, evaluate, steering_conditions
from clas_lens.evaluation.summary import COLUMNS, summarise
from clas_lens.vocab import UNSTEERED

__all__ = [
    "COLUMNS",
    "CHOICE_COLUMNS",
    "GENERATE_COLUMNS",
    "LM_COLUMNS",
    "RECALL_COLUMNS",
    "ANCHOR_COLUMNS",
    "SCORE_COLUMNS",
    "predict",
    "score_task",
    "evaluate",
    "describe",
    "steering_conditions",
    "metric_row",
    "paired_row",
    "summarise",
    "gain_row",
    "level_row",
    "metric_kind",
    "per_class_recall",
    "anchor_kept",
]


def __getattr__(name: str) -> Any:
    # Deprecated (one release): BASELINE named the unsteered condition; it is now
    # clas_lens.vocab.UNSTEERED ("unsteered").
    if name == "BASELINE":
        warnings.warn(
            "clas_lens.evaluation.BASELINE is deprecated; use clas_lens.vocab.UNSTEERED.",
            DeprecationWarning,
            stacklevel=2,
        )
        return UNSTEERED
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
