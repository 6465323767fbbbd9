"""The options every task accepts, and their checks.

:data:`COMMON_OPTIONS` (every task: bootstrap settings, the item split),
:data:`CHOICE_OPTIONS` (choice tasks: how options are scored), :func:`check_options` (refuse
unknown options), :func:`check_length_norm` and :func:`confidence_from_alpha` (the deprecated
``alpha=``). :mod:`~clas_lens.data.tasks.base` re-exports them.

>>> sorted(CHOICE_OPTIONS)
['calibrate', 'length_norm']
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

from clas_lens import checks
from clas_lens.errors import DataValidationError
from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Options every task accepts: the bootstrap settings of its scores (``alpha``: deprecated
#: complement of ``confidence``) and the item split (``split``, ``split_fractions``; see
#: :mod:`clas_lens.data.splits`).
COMMON_OPTIONS: frozenset[str] = frozenset({"seed", "n_boot", "confidence", "alpha", "split", "split_fractions"})
#: Options of choice tasks: ``length_norm`` ("none" | "tokens" | "chars") and ``calibrate``
#: (contextual calibration against a content-free prompt).
CHOICE_OPTIONS: frozenset[str] = frozenset({"length_norm", "calibrate"})
#: Values of ``length_norm``: divide an option's summed log-prob by nothing, its token count or
#: its character count.
LENGTH_NORMS: tuple[str, ...] = ("none", "tokens", "chars")


def check_length_norm(length_norm: Any) -> str:
    """``length_norm`` checked (None reads as ``"none"``).

    >>> check_length_norm(None), check_length_norm("chars")
    ('none', 'chars')
    """
    value = "none" if length_norm is None else length_norm
    if value not in LENGTH_NORMS:
        raise DataValidationError(f"length_norm={length_norm!r}: choose from {list(LENGTH_NORMS)}.")
    return str(value)


def confidence_from_alpha(alpha: float, confidence: float | None = None, *, where: str, stacklevel: int = 3) -> float:
    """The confidence level for a deprecated ``alpha=`` (``1 - alpha``), with a DeprecationWarning.

    ``confidence`` (if not None or the default) must agree with it.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     confidence_from_alpha(0.1, where="load_task")
    0.9
    """
    warnings.warn(
        f"{where}(alpha=...) is deprecated; pass confidence={1.0 - float(alpha):g} (confidence = 1 - alpha).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    if not 0 < float(alpha) < 1:
        raise DataValidationError(f"{where}: alpha must be in (0, 1), got {alpha}.")
    level = 1.0 - float(alpha)
    if confidence is not None and confidence != DEFAULT_CONFIDENCE and abs(confidence - level) > 1e-12:
        raise DataValidationError(f"{where}: confidence={confidence} and alpha={alpha} disagree; pass confidence only.")
    return level


def check_options(name: str, options: Mapping[str, Any], accepted: Sequence[str] | frozenset[str]) -> None:
    """Refuse options task ``name`` does not accept, listing those it does (and the common ones).

    >>> check_options("nli", {"kinds": 1}, {"template"})
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Unknown option(s) ['kinds'] for task 'nli'; accepted: alpha, confidence, n_boot, seed, split, split_fractions, template.
    """
    allowed = set(accepted) | COMMON_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataValidationError(
            f"Unknown option(s) {unknown} for task {name!r}; accepted: {', '.join(sorted(allowed))}."
        )
    for key, check in (("max_new_tokens", checks.positive_int), ("n_boot", checks.positive_int),
                       ("seed", checks.non_negative_int)):
        if key in options:
            check(options[key], f"task {name!r} option {key!r}")
    if "confidence" in options:
        checks.probability(options["confidence"], f"task {name!r} option 'confidence'", open_low=True, open_high=True)
