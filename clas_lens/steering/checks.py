"""Argument checks shared by every intervention, and the deprecated names of their arguments.

Strengths must be finite, languages must be known to the masks/values/means that an
intervention holds, and layer specs resolve against the model with
:func:`clas_lens.specs.resolve_layers` (``"last:k"`` larger than the model means every layer).
:func:`renamed_argument` keeps an argument's old name working for one release with a
:class:`DeprecationWarning` (``alpha``/``scale`` -> ``strength``, see docs/glossary.md).

>>> check_strength("strength", 2)
2.0
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Mapping, Sequence

import torch

from clas_lens.errors import DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.specs import resolve_layers


def check_strength(name: str, value: float) -> float:
    """``value`` as a float; a DataValidationError naming ``name`` unless it is finite.

    >>> check_strength("beta", float("inf"))
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: beta=inf must be a finite number.
    """
    value = float(value)
    if not math.isfinite(value):
        raise DataValidationError(f"{name}={value} must be a finite number.")
    return value


def check_lang(lang: str, known: Sequence[str] | None, what: str) -> None:
    """Raise unless ``lang`` is in ``known`` (None: anything goes); ``what`` names the holder.

    >>> check_lang("de", ["en", "de"], "the masks"); check_lang("xx", None, "a tensor")
    """
    if known is not None and lang not in known:
        raise DataValidationError(f"Unknown language {lang!r} for {what}: it knows {sorted(known)}.")


def model_layers(model, layers: Any) -> list[int]:
    """Block indices of a layer spec for ``model`` (None: every layer; ``"last:k"`` clamps).

    >>> from clas_lens.testing import tiny_model
    >>> model_layers(tiny_model("llama"), "last:4")   # a 2-block model
    [0, 1]
    """
    return resolve_layers(layers, neuron_sites(model).n_layers)


def model_device(model) -> torch.device:
    """The device of the model's first parameter (where the hooks' constants are put)."""
    return next(model.parameters()).device


def _warn_renamed(owner: str, old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"{owner}: {old!r} is deprecated and will be removed in the next release; use {new!r} "
        "(see docs/glossary.md).",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def take_renamed(kwargs: dict, old: str, new: str, owner: str, *, stacklevel: int = 3) -> dict:
    """Move ``kwargs[old]`` to ``kwargs[new]`` with a DeprecationWarning (both given: an error).

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     take_renamed({"alpha": 0.5}, "alpha", "strength", "Deactivate")
    {'strength': 0.5}
    """
    if old in kwargs:
        if new in kwargs:
            raise DataValidationError(f"{owner}: pass {new}= only ({old}= is its deprecated name).")
        _warn_renamed(owner, old, new, stacklevel)
        kwargs[new] = kwargs.pop(old)
    return kwargs


def renamed_argument(old: str, new: str):
    """Class decorator: accept the deprecated constructor keyword and attribute ``old`` for ``new``.

    The class's ``RENAMED`` maps old names to new ones, so ``from_dict`` reads old saved keys
    (:func:`upgrade_keys`).
    """

    def decorate(cls: type) -> type:
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            take_renamed(kwargs, old, new, f"{cls.__name__}({old}=...)", stacklevel=3)
            init(self, *args, **kwargs)

        def getter(self):
            _warn_renamed(f"{cls.__name__}.{old}", old, new, 2)
            return getattr(self, new)

        def setter(self, value):
            _warn_renamed(f"{cls.__name__}.{old}", old, new, 2)
            setattr(self, new, value)

        cls.__init__ = __init__
        setattr(cls, old, property(getter, setter, doc=f"Deprecated name of ``{new}``."))
        cls.RENAMED = {**getattr(cls, "RENAMED", {}), old: new}
        return cls

    return decorate


def upgrade_keys(cls: type, d: Mapping) -> dict:
    """A copy of a saved dict with the old argument names of ``cls`` (``cls.RENAMED``) renamed.

    >>> class Old:
    ...     RENAMED = {"scale": "strength"}
    >>> upgrade_keys(Old, {"type": "Old", "scale": 2.0})
    {'type': 'Old', 'strength': 2.0}
    """
    d = dict(d)
    for old, new in getattr(cls, "RENAMED", {}).items():
        if old in d and new not in d:
            d[new] = d.pop(old)
    return d
