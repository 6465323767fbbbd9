"""Method ``"mean"``: the top fraction of neurons by mean activation per language (Mondal et al. 2025).

``contrast=True`` ranks by the language's mean minus the other languages' mean. Picked neurons
are filed under ``"specific"``; scores under ``"score"``. See docs/methods.md, "Peer methods".

>>> from clas_lens.neurons import identify_neurons
>>> from clas_lens.stats import collect_stats
>>> from clas_lens.testing import tiny_model
>>> stats = collect_stats(tiny_model("gpt2"), {"en": ["one two"]})
>>> int(identify_neurons(stats, "mean", top_fraction=0.25).mask("specific", "en").sum())  # of 2 x 128
64
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from clas_lens.neurons.registry import measured, method_langs, register_method, to_full

__all__ = ["mean_neurons"]


@register_method("mean", ("top_fraction", "contrast", "langs"))
def mean_neurons(stats, top_fraction: float = 0.01, contrast: bool = False, langs=None):
    """Top neurons by mean activation: ``(masks, scores, params, langs)``; scores ``"score"``.

    Called by ``identify_neurons(stats, "mean", ...)`` (parameters documented there).
    """
    langs = method_langs(stats, langs, 2 if contrast else 1, "mean")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1]; got {top_fraction}.")
    means = torch.stack([measured(stats, stats.mean(l)) for l in langs]).flatten(1)  # lang x M
    M = means.shape[1]
    k = max(1, round(M * top_fraction))
    shape = (len(stats.layers), stats.shape[1])
    masks: dict[str, dict[str | None, Tensor]] = {"specific": {}}
    scores: dict[str, dict[str | None, Tensor]] = {"score": {}}
    for i, l in enumerate(langs):
        score = means[i]
        if contrast:
            others = torch.cat([means[:i], means[i + 1 :]])
            score = score - others.mean(0)
        order = torch.argsort(score, descending=True, stable=True)[:k]
        sel = torch.zeros(M, dtype=torch.bool)
        sel[order] = True
        masks["specific"][l] = to_full(stats, sel.reshape(shape), False)
        scores["score"][l] = to_full(stats, score.reshape(shape).float(), math.nan)
    params = {"top_fraction": top_fraction, "contrast": contrast, "langs": langs}
    return masks, scores, params, langs
