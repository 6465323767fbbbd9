"""Task metrics and the statistics used to compare conditions (numbers in, numbers out).

* :mod:`clas_lens.metrics.squad`: SQuAD v1.1 F1 / exact match (characters for zh, ja, th, as
  MLQA does) and accuracy.
* :mod:`clas_lens.metrics.intervals`: seeded bootstrap CIs (:func:`bootstrap_ci`,
  :func:`paired_bootstrap`) and the exact McNemar test; the one ``confidence`` handling.
* :mod:`clas_lens.metrics.paired`: calibrated paired tests (sign-flip, exact McNemar with
  mid-p), Wilson and Newcombe intervals, Holm, minimum detectable effect, TOST equivalence.
* :mod:`clas_lens.metrics.calibration`: null-rejection and coverage simulations of those tests.
* :mod:`clas_lens.metrics.correlation`: :func:`correlation_test` (Spearman / Pearson with a
  bootstrap CI and a permutation p-value).

Every interval takes ``confidence=0.95``; the old ``alpha=0.05`` still works for one release
with a ``DeprecationWarning``. See docs/methods.md, "Evaluation" and "Statistical tests".

>>> squad_f1("the cat sat", ["a cat sat down"])
0.8
>>> exact_match("The Eiffel Tower!", ["eiffel tower"])
1.0
"""
from __future__ import annotations

from clas_lens.metrics.correlation import correlation_test, rowwise_pearson
from clas_lens.metrics.intervals import (
    as_values,
    bootstrap_ci,
    bootstrap_means,
    interval_quantiles,
    mcnemar,
    paired_bootstrap,
    resolve_confidence,
)
from clas_lens.metrics.paired import (
    equivalence_test,
    holm,
    mcnemar_exact,
    min_detectable_effect,
    newcombe_paired_ci,
    sign_flip_test,
    t_interval,
    wilson_ci,
)
from clas_lens.metrics.squad import (
    CHARACTER_LEVEL_LANGS,
    accuracy,
    answer_tokens,
    exact_match,
    normalize_answer,
    squad_f1,
)

__all__ = [
    "CHARACTER_LEVEL_LANGS",
    "normalize_answer",
    "answer_tokens",
    "squad_f1",
    "exact_match",
    "accuracy",
    "bootstrap_ci",
    "paired_bootstrap",
    "mcnemar",
    "resolve_confidence",
    "interval_quantiles",
    "as_values",
    "bootstrap_means",
    "correlation_test",
    "sign_flip_test",
    "mcnemar_exact",
    "wilson_ci",
    "newcombe_paired_ci",
    "t_interval",
    "holm",
    "min_detectable_effect",
    "equivalence_test",
    "rowwise_pearson",
]
