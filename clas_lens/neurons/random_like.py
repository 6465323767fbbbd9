"""Random neuron sets matched to a real one: the control that says whether the neurons matter.

:func:`random_like` keeps every count of a :class:`~clas_lens.neurons.NeuronSet` -- per layer,
category and language -- and draws the neurons at random. Steering the random set (e.g.
``ClasSteering(random_like(ns))``) separates the effect of *which* neurons CLAS picks from the
effect of editing that many neurons in those layers. See docs/methods.md, "Neuron categories".

How the neurons are drawn: in each layer one random permutation of the neurons is applied to
every mask of the set at once. Every count is kept exactly, and so is every relation between
the masks: categories stay disjoint, each language's ``specific`` neurons stay inside its
``active`` ones, the partial-shared neurons active in a language keep their number. Taken
alone, each random mask is a uniform draw without replacement from the eligible neurons of its
layer.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.neurons.neuron_set import NeuronSet

__all__ = ["random_like", "RANDOM_METHOD"]

#: The ``method`` of a NeuronSet made by :func:`random_like` (the original's is in ``params``).
RANDOM_METHOD = "random_like"
#: The category whose neurons fill the rest of a layer: it is not held to ``eligible``.
_REST = "non_activated"


def random_like(neurons: NeuronSet, seed: int = 0, eligible: Bool[Tensor, "layer neuron"] | None = None) -> NeuronSet:
    """A NeuronSet with the same counts as ``neurons`` per layer, category and language, drawn
    uniformly at random (without replacement) from the eligible neurons of each layer.

    Args:
        neurons: the NeuronSet to imitate (any method: clas, lape, ap, mean).
        seed: seeds the draw; the same seed gives the same set.
        eligible: ``Bool[layer, neuron]``, the neurons that may be drawn. Default: every neuron
            of the layer. Not "every neuron outside the original category": a category can hold
            most of a layer (two thirds of Gemma-3-270M's last four layers are partial-shared),
            and then no set of its size avoids it; a random set overlaps the real one by
            chance, which is what a control should do. Pass ``eligible=~neurons.mask(c)`` to
            exclude a (small) set. Every neuron of every mask must land on an eligible neuron
            (``non_activated`` -- the rest of the layer -- excepted: it takes whatever is left,
            ineligible neurons included); too few eligible neurons in a layer raise
            :class:`~clas_lens.errors.DataValidationError`.

    Returns:
        A NeuronSet with the same ``langs``, ``site``, ``model_info``, ``stats_ref``,
        ``layers`` and shape (so ``ClasSteering`` and the model-identity checks accept it), the
        categories of ``neurons`` (per-language ones per language), no scores (they describe
        the original neurons), ``method="random_like"`` and ``params={"of": {"method", "params"},
        "seed", "eligible"}``.

    How: in each layer one uniformly random permutation is applied to all masks at once (see
    the module docstring), so relations between masks survive and counts are exact.

    >>> import torch
    >>> from clas_lens.neurons import NeuronSet
    >>> m = {"partial_shared": {None: torch.tensor([[1, 1, 0, 0, 0, 0]], dtype=torch.bool)},
    ...      "specific": {"en": torch.tensor([[0, 0, 1, 0, 0, 0]], dtype=torch.bool)}}
    >>> ns = NeuronSet(masks=m, langs=["en"], site="act", model_info={}, method="clas", params={},
    ...                stats_ref=None, layers=[0], shape=(1, 6))
    >>> r = random_like(ns, seed=1)
    >>> int(r.mask("partial_shared").sum()), int(r.mask("specific", "en").sum()), r.method
    (2, 1, 'random_like')
    >>> bool((r.mask("partial_shared") & r.mask("specific", "en")).any())   # still disjoint
    False
    >>> torch.equal(random_like(ns, seed=1).mask("partial_shared"), r.mask("partial_shared"))
    True
    """
    shape = tuple(neurons.shape)
    entries = _entries(neurons)
    masks = {key: torch.as_tensor(neurons.mask(key[0], key[1])).to("cpu", torch.bool) for key in entries}
    elig = _eligible(eligible, shape)
    drawn = torch.zeros(shape, dtype=torch.bool)  # neurons that must land on eligible ones
    for (cat, _), m in masks.items():
        if cat != _REST:
            drawn |= m
    gen = torch.Generator().manual_seed(int(seed))
    perms = [_layer_permutation(drawn[l], elig[l], gen, l) for l in range(shape[0])]
    out: dict[str, dict[str | None, Tensor]] = {}
    for (cat, lang), m in masks.items():
        new = torch.zeros(shape, dtype=torch.bool)
        for l, perm in enumerate(perms):
            new[l, perm] = m[l]
        out.setdefault(cat, {})[lang] = new
    params = {
        "of": {"method": neurons.method, "params": dict(neurons.params)},
        "seed": int(seed),
        "eligible": None if eligible is None else [int(x) for x in elig.sum(1)],
    }
    return NeuronSet(
        masks=out, langs=neurons.langs, site=neurons.site, model_info=neurons.model_info,
        method=RANDOM_METHOD, params=params, stats_ref=neurons.stats_ref, layers=neurons.layers,
        shape=shape,
    )


def _entries(neurons: NeuronSet) -> list[tuple[str, str | None]]:
    """The stored ``(category, lang)`` masks (lang None for language-agnostic categories)."""
    counts = neurons.counts()
    if len(counts) == 0:
        return [(c, None) for c in neurons.categories]
    keys = counts[["category", "lang"]].drop_duplicates()
    return [(str(c), None if _missing(l) else str(l)) for c, l in keys.itertuples(index=False)]


def _missing(lang: Any) -> bool:
    return lang is None or (isinstance(lang, float) and math.isnan(lang))


def _eligible(eligible: Any, shape: tuple[int, int]) -> Tensor:
    if eligible is None:
        return torch.ones(shape, dtype=torch.bool)
    elig = torch.as_tensor(eligible)
    if elig.dtype != torch.bool or tuple(elig.shape) != shape:
        raise DataValidationError(
            f"random_like: eligible must be a Bool[layer, neuron] mask of shape {shape}; got "
            f"{elig.dtype} {tuple(elig.shape)}."
        )
    return elig.cpu()


def _layer_permutation(drawn: Tensor, eligible: Tensor, gen: torch.Generator, layer: int) -> Tensor:
    """``perm[i]``: where neuron ``i`` goes; ``drawn`` neurons go to random eligible ones."""
    d_mlp = drawn.shape[0]
    src_drawn = drawn.nonzero().flatten()
    src_rest = (~drawn).nonzero().flatten()
    targets = eligible.nonzero().flatten()
    if len(src_drawn) > len(targets):
        raise DataValidationError(
            f"random_like: layer {layer} has {len(src_drawn)} neurons in the set's masks but only "
            f"{len(targets)} eligible neurons to draw them from; widen eligible."
        )
    targets = targets[torch.randperm(len(targets), generator=gen)][: len(src_drawn)]
    free = torch.ones(d_mlp, dtype=torch.bool)
    free[targets] = False
    rest = free.nonzero().flatten()
    rest = rest[torch.randperm(len(rest), generator=gen)]
    perm = torch.empty(d_mlp, dtype=torch.long)
    perm[src_drawn] = targets
    perm[src_rest] = rest
    return perm
