"""Shared validators of the values that enter clas_lens: numbers, lists, language codes, file
names and tensors.

Every check returns the value (normalised: ``int``, ``float``, ``list``) or raises
:class:`~clas_lens.errors.DataValidationError` whose message names the value (``what``: a config
key, an argument) and the allowed range, so the config, the command line and the API functions
refuse the same values with the same words. :func:`require_finite` raises
:class:`~clas_lens.errors.NonFiniteError` for NaN or infinite model outputs.

>>> positive_int(8, "batch_size")
8
>>> positive_int(8.5, "batch_size")
Traceback (most recent call last):
...
clas_lens.errors.DataValidationError: batch_size = 8.5 is not allowed: use a whole number >= 1
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from clas_lens.errors import DataValidationError, NonFiniteError

__all__ = [
    "positive_int",
    "non_negative_int",
    "finite_float",
    "probability",
    "float_list",
    "unique_langs",
    "text",
    "path_component",
    "require_finite",
]


def _refuse(what: str, value: Any, allowed: str) -> DataValidationError:
    return DataValidationError(f"{what} = {value!r} is not allowed: use {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: Any, what: str, *, none_ok: bool = False) -> int | None:
    """A whole number >= 1 (``None`` too when ``none_ok``).

    >>> positive_int(None, "max_length", none_ok=True) is None
    True
    >>> positive_int(0, "max_length", none_ok=True)
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: max_length = 0 is not allowed: use a whole number >= 1, or None for no limit
    """
    if value is None and none_ok:
        return None
    if not _is_int(value) or value < 1:
        raise _refuse(what, value, "a whole number >= 1" + (", or None for no limit" if none_ok else ""))
    return int(value)


def non_negative_int(value: Any, what: str, *, zero_means: str = "") -> int:
    """A whole number >= 0; ``zero_means`` says what 0 stands for in the message.

    >>> non_negative_int(-3, "stats_limit", zero_means="all")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: stats_limit = -3 is not allowed: use a whole number >= 0 (0: all)
    """
    if not _is_int(value) or value < 0:
        raise _refuse(what, value, "a whole number >= 0" + (f" (0: {zero_means})" if zero_means else ""))
    return int(value)


def finite_float(
    value: Any, what: str, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, high_open: bool = False,
) -> float:
    """A finite real number, optionally within ``[low, high]`` (``low_open`` / ``high_open``:
    the bound itself excluded).

    >>> finite_float(0.5, "threshold")
    0.5
    >>> finite_float(float("nan"), "threshold")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: threshold = nan is not allowed: use a finite number
    >>> finite_float(0, "confidence", low=0, high=1, low_open=True, high_open=True)
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: confidence = 0 is not allowed: use a finite number in (0, 1)
    """
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    if low is None and high is None:
        rng = ""
    elif high is None:
        rng = f" {'>' if low_open else '>='} {low:g}"
    elif low is None:
        rng = f" {'<' if high_open else '<='} {high:g}"
    else:
        rng = f" in {lo}{low:g}, {high:g}{hi}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        raise _refuse(what, value, "a finite number" + rng)
    return float(value)


def probability(value: Any, what: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (ends excluded with ``open_low`` / ``open_high``).

    >>> probability(0.95, "confidence", open_low=True, open_high=True)
    0.95
    >>> probability(1.5, "prob_threshold")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: prob_threshold = 1.5 is not allowed: use a finite number in [0, 1]
    """
    return finite_float(value, what, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def float_list(
    value: Any, what: str, *, low: float | None = None, high: float | None = None, nonempty: bool = True,
) -> list[float]:
    """A list (or tuple) of finite numbers, each within ``[low, high]``; a string is refused
    (``"12"`` is not ``[1.0, 2.0]``).

    >>> float_list([0, 0.5], "betas")
    [0.0, 0.5]
    >>> float_list("12", "betas")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: betas = '12' is not allowed: use a non-empty list of finite numbers, e.g. [0.0, 0.5]
    """
    if not isinstance(value, (list, tuple)) or (nonempty and not value):
        raise _refuse(what, value, ("a non-empty " if nonempty else "a ") + "list of finite numbers, e.g. [0.0, 0.5]")
    item = (lambda i: f"{what[:-1]}[{i}]'") if what.endswith("'") else (lambda i: f"{what}[{i}]")
    return [finite_float(v, item(i), low=low, high=high) for i, v in enumerate(value)]


def unique_langs(value: Any, what: str) -> list[str]:
    """A non-empty list of language codes (non-empty strings), each once.

    >>> unique_langs(["en", "de"], "langs")
    ['en', 'de']
    >>> unique_langs(["en", "de", "en"], "langs")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: langs = ['en', 'de', 'en'] is not allowed: use each language once ('en' is given 2 times)
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise _refuse(what, value, "a non-empty list of language codes, e.g. ['en', 'de']")
    for v in value:
        if not isinstance(v, str) or not v:
            raise _refuse(what, value, "a list of language codes (non-empty strings)")
        text(v, what)
    for v in value:
        if value.count(v) > 1:
            raise _refuse(what, value, f"each language once ({v!r} is given {value.count(v)} times)")
    return list(value)


def text(value: Any, what: str, *, nonempty: bool = False) -> str:
    """A string that can be written as UTF-8 (no lone surrogates such as ``"\\udc80"``).

    >>> text("Привет", "name")
    'Привет'
    >>> text("a\\udc80", "name")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: name = 'a\\udc80' is not allowed: use text without lone surrogates (it must be valid UTF-8; character 1 is '\\udc80')
    """
    if not isinstance(value, str) or (nonempty and not value):
        raise _refuse(what, value, "a non-empty string" if nonempty else "a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _refuse(
            what, value, f"text without lone surrogates (it must be valid UTF-8; character {e.start} is {value[e.start]!r})"
        ) from None
    return value


def path_component(value: Any, what: str) -> str:
    """One file or folder name: not empty, not ``.`` or ``..``, no ``/`` or ``\\``, no NUL, no
    control characters, valid UTF-8, at most 255 bytes. Keeps a run name from reaching outside
    its output folder.

    >>> path_component("demo-1", "run name")
    'demo-1'
    >>> path_component("../victim", "run name")
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: run name = '../victim' is not allowed: use a plain folder name (letters, digits, '-', '_', '.'), without '/' or '\\', not '.' or '..'
    """
    allowed = "a plain folder name (letters, digits, '-', '_', '.'), without '/' or '\\', not '.' or '..'"
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise _refuse(what, value, allowed)
    if any(c in value for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _refuse(what, value, allowed)
    text(value, what)
    if len(value.encode("utf-8")) > 255:
        raise _refuse(what, value, "a folder name of at most 255 bytes")
    return value


def require_finite(tensor: Any, what: str) -> Any:
    """``tensor`` unchanged if every value is finite; else :class:`NonFiniteError` saying how
    many values are NaN / infinite and the likely cause.

    >>> require_finite(torch.tensor([0.0, -1.0]), "option scores").tolist()
    [0.0, -1.0]
    >>> require_finite(torch.tensor([0.0, float("nan")]), "option scores")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.errors.NonFiniteError: option scores: 1 of 2 values are NaN or infinite ...
    """
    t = torch.as_tensor(tensor)
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t.detach())
        n_bad = int(bad.sum())
        if n_bad:
            raise NonFiniteError(
                f"{what}: {n_bad} of {t.numel()} values are NaN or infinite (the model's activations "
                "overflowed, e.g. under a steering strength too large for its dtype); nothing was scored "
                "from them. Lower the strength (beta, gamma, strength) or use float32."
            )
    return tensor
