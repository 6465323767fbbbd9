"""The project's vocabulary: every shared word and constant, defined once (see docs/glossary.md).

Other modules import these names; none redefines them. Registries of methods and tasks live
with their implementations (``clas_lens.steering.registry``, ``clas_lens.neurons``,
``clas_lens.data.tasks``) and the config reads them from there.

>>> UNSTEERED, CATEGORIES[1], DEFAULT_SITE
('unsteered', 'partial_shared', 'post')
>>> is_unsteered("baseline"), is_unsteered("clas")
(True, False)
"""
from __future__ import annotations

#: Neuron categories from activation probabilities on parallel text, in display order.
CATEGORIES: tuple[str, ...] = ("all_shared", "partial_shared", "specific", "non_activated")
#: Categories that hold one language's neurons (the others are language-agnostic).
PER_LANGUAGE_CATEGORIES: tuple[str, ...] = ("specific",)

#: The condition without any intervention. Every table, figure and config uses this word.
UNSTEERED = "unsteered"
#: Names that older results and releases used for :data:`UNSTEERED`; read, never written.
LEGACY_UNSTEERED: tuple[str, ...] = ("baseline", "base")

#: Neuron sites (see ``clas_lens.sites``) and the one default used by every function.
SITES: tuple[str, ...] = ("post", "act")
DEFAULT_SITE = "post"

#: Bridge layers steered when none are given.
DEFAULT_STEER_LAYERS = "last:4"
#: Token positions an edit may act on.
POSITIONS: tuple[str, ...] = ("all", "last")
#: Default confidence level of every interval.
DEFAULT_CONFIDENCE = 0.95


def is_unsteered(name: object) -> bool:
    """True for :data:`UNSTEERED` and its legacy spellings."""
    return isinstance(name, str) and (name == UNSTEERED or name in LEGACY_UNSTEERED)


def canonical_condition(name: str) -> str:
    """Map a legacy name of the unsteered condition to :data:`UNSTEERED`; others unchanged.

    >>> canonical_condition("baseline"), canonical_condition("clas")
    ('unsteered', 'clas')
    """
    return UNSTEERED if is_unsteered(name) else name
