"""The registry of neuron-identification methods and what every method shares.

A method is a function ``fn(stats, **params) -> (masks, scores, params_used, langs)`` over
:class:`~clas_lens.stats.NeuronStats`, registered under a name with the parameters it accepts:

>>> @register_method("demo_top", ("langs",))
... def _demo(stats, langs=None):
...     return {}, {}, {}, list(stats.langs)
>>> "demo_top" in method_names(), get_method("demo_top").params
(True, ('langs',))
>>> unregister_method("demo_top")

``masks[category][lang]`` are bool ``[layer, neuron]`` tensors of the model's shape (``lang``
None for categories of no single language), ``scores[name][lang]`` float per-neuron scores.
:func:`~clas_lens.neurons.identify_neurons` looks methods up here and validates their
parameters (:func:`check_params`). The helpers below (:func:`method_langs`,
:func:`measured`, :func:`to_full`, :func:`warn_chance_probabilities`) are shared by the
methods. See docs/methods.md, "Neuron categories" and "Peer methods".
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from clas_lens.errors import DataValidationError

__all__ = [
    "Method", "register_method", "unregister_method", "get_method", "method_names", "check_params",
    "method_langs", "measured", "to_full", "warn_chance_probabilities",
]


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method: its name, implementation and accepted parameter names."""

    name: str
    fn: Callable[..., tuple]
    params: tuple[str, ...]


_REGISTRY: dict[str, Method] = {}


def register_method(name: str, params: Sequence[str]) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as method ``name`` accepting ``params``; refuses a taken name."""

    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"A neuron-identification method named {name!r} is already registered.")
        _REGISTRY[name] = Method(name, fn, tuple(params))
        return fn

    return deco


def unregister_method(name: str) -> None:
    """Remove method ``name`` (for tests and plug-ins that re-register)."""
    _REGISTRY.pop(name, None)


def method_names() -> tuple[str, ...]:
    """Names of the registered methods, in registration order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> Method:
    """The :class:`Method` registered as ``name``; raises ValueError naming the choices."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown method {name!r}; choose one of {list(_REGISTRY)}.") from None


def check_params(method: str, params: Mapping[str, Any]) -> Method:
    """The method, after checking that ``params`` are all ones it accepts (TypeError otherwise).

    >>> check_params("clas", {"top_rate": 0.1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: identify_neurons(method='clas') got unknown parameter(s) ['top_rate']; allowed: [...].
    """
    m = get_method(method)
    extra = sorted(set(params) - set(m.params))
    if extra:
        raise TypeError(f"identify_neurons(method={method!r}) got unknown parameter(s) {extra}; allowed: {list(m.params)}.")
    return m


# ---------------------------------------------------------------------------------------------
# helpers shared by the methods
# ---------------------------------------------------------------------------------------------


def method_langs(stats, langs, minimum: int, method: str) -> list[str]:
    """The languages a method uses (default: all of ``stats``), validated, at least ``minimum``."""
    if langs is None:
        langs = stats.langs
    elif isinstance(langs, str):
        langs = [langs]
    unknown = [l for l in langs if l not in stats.langs]
    if unknown:
        raise DataValidationError(f"Languages {unknown} have no statistics (they have {stats.langs}).")
    if len(langs) < minimum:
        raise DataValidationError(
            f"Method {method!r} needs statistics for at least {minimum} languages; got {list(langs)}."
        )
    return list(langs)


def measured(stats, t: Tensor) -> Tensor:
    """The rows of the measured layers of a full ``[layer, neuron]`` tensor, on the CPU."""
    return t[stats.layers].to("cpu")


def to_full(stats, t: Tensor, fill) -> Tensor:
    """A ``[layer, neuron]`` tensor of the model's shape: ``t`` on measured rows, ``fill`` elsewhere."""
    out = torch.full(stats.shape, fill, dtype=t.dtype)
    out[stats.layers] = t
    return out


def warn_chance_probabilities(stats) -> None:
    """Warn when activation probabilities come from site 'post' of a gated MLP at threshold 0."""
    if stats.site == "post" and stats.extra.get("gated") and stats.threshold == 0.0:
        warnings.warn(
            "Activation probabilities were measured at site 'post' of a gated MLP with threshold "
            "0: the sign of act(gate)*up is close to a coin flip, so most probabilities sit near "
            "0.5 and 'active' says little. Collect the statistics at site='act' (LAPE's "
            "convention; zeroing/scaling steering is identical at both sites) or use a positive "
            "threshold.",
            stacklevel=3,
        )
