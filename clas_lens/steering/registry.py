"""The intervention base class and the registry of intervention types by name.

Every intervention class is registered under its class name with :func:`register_intervention`
(a second class under a taken name is refused), so a saved ``to_dict()`` -- which carries that
name in ``"type"`` -- can be rebuilt by :func:`intervention_from_dict`. The config and the sweep
read the known names from :func:`registered_interventions`. :func:`as_interventions` turns
anything the API accepts (None, one intervention, its dict, nested lists) into a flat list.

>>> "ClasSteering" in registered_interventions()
True
"""
from __future__ import annotations

from typing import ClassVar, Iterable, Mapping

from clas_lens.errors import DataValidationError
from clas_lens.sites import HookPair

_REGISTRY: dict[str, type] = {}


def register_intervention(cls: type) -> type:
    """Class decorator: make ``intervention_from_dict`` know ``cls`` by its class name.

    A name can be registered once; registering the same class again is harmless (a module
    reload), a different class under a taken name raises :class:`DataValidationError`.

    >>> @register_intervention
    ... class ClasSteering(Intervention):
    ...     pass
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: An intervention named 'ClasSteering' is already registered (clas_lens.steering.clas.ClasSteering); give the new class another name.
    """
    name = cls.__name__
    old = _REGISTRY.get(name)
    if old is not None and old is not cls and _qualname(old) != _qualname(cls):
        raise DataValidationError(
            f"An intervention named {name!r} is already registered ({_qualname(old)}); give the new "
            "class another name."
        )
    _REGISTRY[name] = cls
    return cls


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_interventions() -> list[str]:
    """Names of the registered intervention types, in registration order.

    >>> registered_interventions()[:5]
    ['ClasSteering', 'SetNeurons', 'Deactivate', 'AddNeurons', 'DiffMeanSteering']
    """
    return list(_REGISTRY)


class Intervention:
    """Base class. Subclasses are dataclasses that implement ``hooks`` and the dict round trip."""

    kind: ClassVar[str] = "intervention"

    def hooks(self, model) -> list[HookPair]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def needs_lang(self) -> bool:
        """True when this is a per-language template that ``for_lang`` must bind first."""
        return False

    @property
    def is_noop(self) -> bool:
        """True when the strength is zero (its hooks return their input unchanged)."""
        return False

    def for_lang(self, lang: str) -> "Intervention":
        """A copy bound to ``lang`` (interventions that do not depend on it return themselves)."""
        return self

    def to_dict(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Mapping) -> "Intervention":  # pragma: no cover - abstract
        raise NotImplementedError


def intervention_from_dict(d: Mapping) -> Intervention:
    """Rebuild any registered intervention from its ``to_dict()`` output.

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> iv = Deactivate(torch.eye(2, 64, dtype=torch.bool))
    >>> type(intervention_from_dict(iv.to_dict())).__name__
    'Deactivate'
    """
    name = d.get("type")
    if name not in _REGISTRY:
        raise DataValidationError(
            f"Unknown intervention type {name!r}; known: {sorted(_REGISTRY)}. Was it saved by a "
            "newer clas_lens or a plugin that is not imported?"
        )
    return _REGISTRY[name].from_dict(d)


def as_interventions(x) -> list[Intervention]:
    """Flatten None / one intervention / dicts / nested lists into a list of interventions.

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> iv = Deactivate(torch.eye(2, 64, dtype=torch.bool))
    >>> len(as_interventions([iv, None, [iv.to_dict()]]))
    2
    """
    if x is None:
        return []
    if isinstance(x, Mapping):
        return [intervention_from_dict(x)]
    if isinstance(x, (list, tuple)):
        return [iv for item in x for iv in as_interventions(item)]
    if not callable(getattr(x, "hooks", None)):
        raise DataValidationError(
            f"Not an intervention: {type(x).__name__}. Pass {', '.join(registered_interventions())} "
            "objects (or their to_dict() dicts), lists of them or None."
        )
    return [x]


def interventions_to_dicts(interventions) -> list[dict]:
    """``to_dict()`` of each intervention in a (possibly nested) list.

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> [d["type"] for d in interventions_to_dicts([Deactivate(torch.eye(2, 64, dtype=torch.bool)), None])]
    ['Deactivate']
    """
    return [iv.to_dict() for iv in as_interventions(interventions)]


def interventions_from_dicts(dicts: Iterable[Mapping]) -> list[Intervention]:
    """Inverse of :func:`interventions_to_dicts`.

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> d = interventions_to_dicts(Deactivate(torch.eye(2, 64, dtype=torch.bool)))
    >>> interventions_to_dicts(interventions_from_dicts(d)) == d
    True
    """
    return [intervention_from_dict(d) for d in dicts]
