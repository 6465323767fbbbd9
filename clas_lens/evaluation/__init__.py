"""Evaluation: running tasks with a model, under steering conditions, with CIs and paired tests.

* :mod:`~clas_lens.evaluation.prediction`: :func:`predict` (per-item predictions of one language)
  and :func:`score_task` (per-language scores with bootstrap CIs, no steering);
* :mod:`~clas_lens.evaluation.steered`: :func:`evaluate` (every language under every steering
  condition, with paired differences against the unsteered condition) and :func:`describe`;
* :mod:`~clas_lens.evaluation.summary`: the pure summaries :func:`metric_row`,
  :func:`paired_row`, :func:`summarise` (:mod:`clas_lens.sweep` reuses them).

Every interval takes ``confidence=0.95`` (``alpha=``, its complement, still works for one
release with a DeprecationWarning). The unsteered condition is written ``"unsteered"``
(:data:`clas_lens.vocab.UNSTEERED`); results that call it ``"baseline"`` are still read. See
docs/methods.md, "Evaluation".

>>> from clas_lens.data.tasks import load_task
>>> from clas_lens.testing import tiny_model
>>> scores = score_task(tiny_model("llama"), load_task("cloze", langs=["en"]), limit=2, n_boot=100)
>>> scores[["lang", "metric", "n"]].to_dict("records")
[{'lang': 'en', 'metric': 'accuracy', 'n': 2}]
"""
from __future__ import annotations

import warnings
from typing import Any

from clas_lens.evaluation.prediction import CHOICE_COLUMNS, GENERATE_COLUMNS, SCORE_COLUMNS, predict, score_task
from clas_lens.evaluation.steered import describe, evaluate, steering_conditions
from clas_lens.evaluation.summary import COLUMNS, metric_row, paired_row, summarise
from clas_lens.vocab import UNSTEERED

__all__ = [
    "COLUMNS",
    "CHOICE_COLUMNS",
    "GENERATE_COLUMNS",
    "SCORE_COLUMNS",
    "predict",
    "score_task",
    "evaluate",
    "describe",
    "steering_conditions",
    "metric_row",
    "paired_row",
    "summarise",
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
