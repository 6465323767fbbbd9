"""Method ``"clas"``: the categories of "Sharing Matters" (Wang et al. 2024) that CLAS steers.

A neuron is *active* for a language when its activation probability passes a criterion;
``all_shared`` = active in every language, ``partial_shared`` = in two or more but not all,
``specific`` = in exactly one (filed under that language), ``non_activated`` = in none; the
per-language ``"active"`` masks are kept too. See docs/methods.md, "Neuron categories".

``margin=m`` (criterion ``"prob"``) adds a band of doubt around the threshold ``t``: a neuron
is active for a language when ``p > t + m``, inactive when ``p <= t - m``, and undecided in
between. A neuron undecided for any language is left out of all four categories and filed
under ``"uncertain"`` for each language whose probability lies in the band (the category is
only present when ``m > 0``); ``"active"`` keeps the clearly active ones (``p > t + m``).
``margin=0`` is today's rule bit for bit (``p > t`` active, ``p <= t`` not).

>>> from clas_lens.neurons import identify_neurons
>>> from clas_lens.stats import collect_stats
>>> from clas_lens.testing import tiny_model
>>> stats = collect_stats(tiny_model("llama"), {"en": ["The cat sat."], "de": ["Die Katze sass."]}, site="act")
>>> ns = identify_neurons(stats, "clas", criterion="quantile", top_quantile=0.2)
>>> ns.categories
['all_shared', 'partial_shared', 'specific', 'non_activated', 'active']
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from clas_lens.neurons.registry import measured, method_langs, register_method, to_full, warn_chance_probabilities

__all__ = ["clas_categories"]


@register_method("clas", ("criterion", "prob_threshold", "top_quantile", "margin", "langs"))
def clas_categories(
    stats, criterion: str = "prob", prob_threshold: float = 0.5, top_quantile: float = 0.1, margin: float = 0.0,
    langs=None,
):
    """CLAS categories from activation probabilities: ``(masks, scores, params, langs)``.

    Called by ``identify_neurons(stats, "clas", ...)`` (parameters documented there).
    """
    langs = method_langs(stats, langs, 2, "clas")
    warn_chance_probabilities(stats)
    P = torch.stack([measured(stats, stats.active_prob(l)) for l in langs])  # lang mlayer neuron
    margin = float(margin)
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1); got {margin}.")
    undecided = torch.zeros_like(P, dtype=torch.bool)
    if criterion == "prob":
        if not 0.0 <= prob_threshold < 1.0:
            raise ValueError(f"prob_threshold must be in [0, 1); got {prob_threshold}.")
        active = P > prob_threshold + margin
        if margin > 0:
            undecided = ~active & (P > prob_threshold - margin)
    elif margin != 0:
        raise ValueError("margin applies to criterion='prob' only; leave it at 0 with 'quantile'.")
    elif criterion == "quantile":
        if not 0.0 < top_quantile <= 1.0:
            raise ValueError(f"top_quantile must be in (0, 1]; got {top_quantile}.")
        flat = P.flatten(1)
        n = flat.shape[1]
        k = n - math.ceil(n * top_quantile) + 1
        cut = flat.kthvalue(k, dim=1).values  # per language
        active = (P >= cut[:, None, None]) & (P > 0)
    else:
        raise ValueError(f"criterion={criterion!r}: use 'prob' or 'quantile'.")
    n_active = active.sum(0)
    n = len(langs)
    decided = ~undecided.any(0)  # all True when margin == 0
    full = lambda m: to_full(stats, m, False)  # noqa: E731
    masks: dict[str, dict[str | None, Tensor]] = {
        "all_shared": {None: full((n_active == n) & decided)},
        "partial_shared": {None: full((n_active >= 2) & (n_active < n) & decided)},
        "specific": {l: full(active[i] & (n_active == 1) & decided) for i, l in enumerate(langs)},
        "non_activated": {None: full((n_active == 0) & decided)},
        "active": {l: full(active[i]) for i, l in enumerate(langs)},
    }
    if margin > 0:
        masks["uncertain"] = {l: full(undecided[i]) for i, l in enumerate(langs)}
    params = {"criterion": criterion, "langs": langs}
    params.update({"prob_threshold": prob_threshold} if criterion == "prob" else {"top_quantile": top_quantile})
    if margin > 0:
        params["margin"] = margin  # recorded only when used: margin=0 results are unchanged
    return masks, {}, params, langs
