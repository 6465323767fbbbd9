"""Method ``"ap"``: average precision of per-sentence activations (Kojima et al. 2024).

Per language, each neuron's per-sentence mean activation is scored by its average precision
(:func:`average_precision`, sklearn's definition) at ranking that language's sentences above
the others'; the ``top_k`` highest and ``bottom_k`` lowest are filed under ``"specific"`` (and
``"top"`` / ``"bottom"``). Needs ``collect_stats(per_sentence=True)``. See docs/methods.md,
"Peer methods".
"""
from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.neurons.registry import method_langs, register_method, to_full

__all__ = ["average_precision", "ap_neurons"]


def average_precision(
    scores: Float[Tensor, "sample m"], labels: Bool[Tensor, " sample"], *, chunk: int = 4096
) -> Float[Tensor, " m"]:
    """Average precision of each column of ``scores`` at ranking the ``labels`` first.

    Same definition as ``sklearn.metrics.average_precision_score`` (tied scores share one
    threshold): ``AP = sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds.

    >>> import torch
    >>> float(average_precision(torch.tensor([[0.1], [0.4], [0.35], [0.8]]),
    ...                         torch.tensor([False, False, True, True]))[0])
    0.8333333333333333
    """
    labels = torch.as_tensor(labels, dtype=torch.bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise DataValidationError("average_precision needs at least one positive sample.")
    n = scores.shape[0]
    out = []
    rank = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1)
    for start in range(0, scores.shape[1], chunk):
        s = scores[:, start : start + chunk].to(torch.float64)
        s_sorted, idx = torch.sort(s, dim=0, descending=True, stable=True)
        y = labels[idx].to(torch.float64)
        tp = y.cumsum(0)
        is_end = torch.ones_like(s_sorted, dtype=torch.bool)
        is_end[:-1] = s_sorted[:-1] != s_sorted[1:]
        tp_end = torch.where(is_end, tp, torch.zeros_like(tp))
        prev = torch.cat([torch.zeros_like(tp_end[:1]), tp_end[:-1]]).cummax(0).values
        delta = torch.where(is_end, tp - prev, torch.zeros_like(tp))
        out.append((delta * (tp / rank)).sum(0) / n_pos)
    return torch.cat(out)


@register_method("ap", ("top_k", "bottom_k", "langs"))
def ap_neurons(stats, top_k: int = 1000, bottom_k: int = 1000, langs=None):
    """AP language neurons: ``(masks, scores, params, langs)``; scores ``"ap"``.

    Called by ``identify_neurons(stats, "ap", ...)`` (parameters documented there).
    """
    langs = method_langs(stats, langs, 2, "ap")
    if not stats.has_sentences:
        raise DataValidationError(
            "Method 'ap' (Kojima et al.) needs per-sentence activations: collect the statistics "
            "with collect_stats(..., per_sentence=True)."
        )
    if top_k < 0 or bottom_k < 0:
        raise ValueError(f"top_k and bottom_k must be >= 0; got {top_k}, {bottom_k}.")
    blocks = [stats.sentence_means(l)[:, stats.layers].flatten(1).float() for l in langs]  # sentence x M
    X = torch.cat(blocks)
    M = X.shape[1]
    if top_k + bottom_k > M:
        raise ValueError(f"top_k + bottom_k = {top_k + bottom_k} exceeds the {M} measured neurons.")
    sizes = [b.shape[0] for b in blocks]
    owner = torch.repeat_interleave(torch.arange(len(langs)), torch.tensor(sizes))
    shape = (len(stats.layers), stats.shape[1])
    masks: dict[str, dict[str | None, Tensor]] = {"specific": {}, "top": {}, "bottom": {}}
    scores: dict[str, dict[str | None, Tensor]] = {"ap": {}}
    for i, l in enumerate(langs):
        ap = average_precision(X, owner == i)
        order = torch.argsort(ap, descending=True, stable=True)
        top = torch.zeros(M, dtype=torch.bool)
        top[order[:top_k]] = True
        bottom = torch.zeros(M, dtype=torch.bool)
        if bottom_k:
            bottom[order[-bottom_k:]] = True
        masks["top"][l] = to_full(stats, top.reshape(shape), False)
        masks["bottom"][l] = to_full(stats, bottom.reshape(shape), False)
        masks["specific"][l] = masks["top"][l] | masks["bottom"][l]
        scores["ap"][l] = to_full(stats, ap.reshape(shape).float(), math.nan)
    params = {"top_k": top_k, "bottom_k": bottom_k, "langs": langs}
    return masks, scores, params, langs
