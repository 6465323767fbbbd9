"""Power of a correlation test: the smallest correlation a study of ``n`` units detects
(:func:`detectable_r`).

Used by ``clas_lens.clusters.divergence_test`` to say what its ``n`` target languages can
show at all. See docs/methods.md, "Statistical tests". Pure.

>>> round(detectable_r(11), 3)
0.758
"""
from __future__ import annotations

import math

from scipy import stats as sps

__all__ = ["detectable_r"]


def detectable_r(n: int, level: float = 0.05, power: float = 0.8) -> float:
    """Smallest true ``|r|`` a two-sided correlation test at significance ``level`` finds with ``power``,
    for ``n`` pairs, by the Fisher-z approximation:

    ``r_mde = tanh((z_{1-level/2} + z_{power}) / sqrt(n - 3))``.

    (For Spearman's rho the approximation is slightly optimistic: its variance is about 6 %
    larger.) NaN when ``n <= 3`` (Fisher's z needs ``n > 3``).

    >>> [round(detectable_r(n), 2) for n in (4, 11, 30, 100)]
    [0.99, 0.76, 0.49, 0.28]
    >>> detectable_r(3)
    nan
    """
    if isinstance(n, bool) or int(n) != n:
        raise ValueError(f"n must be an integer, got {n!r}.")
    if not (0 < level < 1 and 0 < power < 1):
        raise ValueError(f"level and power must be in (0, 1), got {level} and {power}.")
    if n <= 3:
        return float("nan")
    z = sps.norm.ppf(1 - level / 2) + sps.norm.ppf(power)
    return float(math.tanh(z / math.sqrt(int(n) - 3)))
