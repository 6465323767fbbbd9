"""Method ``"lape"``: language activation probability entropy (Tang et al. 2024).

Activation probabilities are normalised over languages and each neuron's entropy computed;
among neurons where some language's probability exceeds the ``filter_rate`` quantile of all
probabilities, the ``top_rate`` fraction of measured neurons with the lowest entropy are
language neurons, filed under ``"specific"`` for every language above that quantile. See
docs/methods.md, "Peer methods".

>>> from clas_lens.neurons import identify_neurons
>>> from clas_lens.stats import collect_stats
>>> from clas_lens.testing import tiny_model
>>> stats = collect_stats(tiny_model("llama"), {"en": ["The cat sat."], "de": ["Die Katze sass."]}, site="act")
>>> identify_neurons(stats, "lape", top_rate=0.05).categories
['specific']
"""
from __future__ import annotations

import math

import torch

from clas_lens.neurons.registry import measured, method_langs, register_method, to_full, warn_chance_probabilities

__all__ = ["lape_neurons"]


@register_method("lape", ("top_rate", "filter_rate", "langs"))
def lape_neurons(stats, top_rate: float = 0.01, filter_rate: float = 0.95, langs=None):
    """LAPE language neurons: ``(masks, scores, params, langs)``; scores ``"entropy"``.

    Called by ``identify_neurons(stats, "lape", ...)`` (parameters documented there).
    """
    langs = method_langs(stats, langs, 2, "lape")
    if not 0.0 < top_rate <= 1.0 or not 0.0 < filter_rate <= 1.0:
        raise ValueError(f"top_rate and filter_rate must be in (0, 1]; got {top_rate}, {filter_rate}.")
    warn_chance_probabilities(stats)
    P3 = torch.stack([measured(stats, stats.active_prob(l)) for l in langs])  # lang mlayer neuron
    P = P3.flatten(1)  # lang x M
    M = P.shape[1]
    flat = P.flatten()
    k_bar = min(max(round(flat.numel() * filter_rate), 1), flat.numel())
    bar = flat.kthvalue(k_bar).values
    total = P.sum(0, keepdim=True)
    normed = torch.where(total > 0, P / total.clamp(min=1e-300), torch.zeros_like(P))
    logp = torch.where(normed > 0, normed.log(), torch.zeros_like(normed))
    entropy = -(normed * logp).sum(0)  # M
    candidate = (P > bar).any(0)
    n_sel = round(M * top_rate)
    ranked = torch.where(candidate, entropy, torch.full_like(entropy, math.inf))
    order = torch.argsort(ranked, stable=True)[:n_sel]
    selected = torch.zeros(M, dtype=torch.bool)
    selected[order] = True
    selected &= candidate
    masks = {"specific": {}}
    for i, l in enumerate(langs):
        m = (selected & (P[i] > bar)).reshape(P3.shape[1:])
        masks["specific"][l] = to_full(stats, m, False)
    scores = {"entropy": {None: to_full(stats, entropy.reshape(P3.shape[1:]).float(), math.nan)}}
    params = {"top_rate": top_rate, "filter_rate": filter_rate, "langs": langs, "activation_bar": float(bar)}
    return masks, scores, params, langs
