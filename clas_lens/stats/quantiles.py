"""Exact token-level quantiles of chosen neurons: :func:`collect_quantiles`, :func:`sorted_quantiles`.

Used for "median" / percentile steering values (Kojima et al., Int-mu's p75/p90/p95; see
docs/methods.md, "Peer methods"). Quantile names are parsed by :func:`clas_lens.specs.parse_level`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from clas_lens.data.corpus import as_corpus
from clas_lens.errors import DataValidationError
from clas_lens.sites import check_site, neuron_sites
from clas_lens.specs import parse_level
from clas_lens.stats.collect import corpus_langs_texts
from clas_lens.stats.reader import layer_read_hooks, progress_bar, read_forward, sentence_batches, warn_truncated
from clas_lens.vocab import DEFAULT_SITE

__all__ = ["collect_quantiles", "sorted_quantiles", "parse_quantiles"]


def parse_quantiles(quantiles) -> list[float]:
    """Levels of one quantile or a list of them (floats in [0, 1], ``"median"``, ``"pNN"``).

    >>> parse_quantiles(["median", "p90", 0.25])
    [0.5, 0.9, 0.25]
    """
    if isinstance(quantiles, (int, float, str)):
        quantiles = [quantiles]
    out = [parse_level(q) for q in quantiles]
    if not out:
        raise DataValidationError("quantiles is empty: pass at least one quantile.")
    return out


def sorted_quantiles(values: Float[Tensor, "n m"], qs: Sequence[float]) -> Float[Tensor, "q m"]:
    """Exact quantiles along dim 0 with linear interpolation (numpy's default method).

    >>> import torch
    >>> sorted_quantiles(torch.tensor([[3.0], [1.0], [2.0], [4.0]]), [0.5, 1.0]).tolist()
    [[2.5], [4.0]]
    """
    n = values.shape[0]
    if n == 0:
        return torch.full((len(qs), values.shape[1]), math.nan, dtype=torch.float64)
    s, _ = torch.sort(values.to(torch.float64), dim=0)
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        out.append(s[lo] + (s[hi] - s[lo]) * frac if frac else s[lo].clone())
    return torch.stack(out)


def collect_quantiles(
    model,
    corpus,
    mask: Bool[Tensor, "layer neuron"],
    quantiles,
    *,
    site: str = DEFAULT_SITE,
    langs: Sequence[str] | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    truncation: str = "warn",
    keep_bos: bool = False,
    padding_side: str = "right",
    progress: bool | None = None,
) -> dict[str, Float[Tensor, "q layer neuron"]]:
    """Exact token-level quantiles of the masked neurons, per language (NaN elsewhere).

    Every real token's activation of the ``mask``-ed neurons is kept (memory: tokens x
    masked neurons x 4 bytes per language), then sorted; quantiles interpolate linearly as
    ``numpy.quantile`` does. Used for "median" / percentile steering values (Kojima et al.,
    Int-mu's p75/p90/p95).

    Args:
        mask: bool ``[layer, neuron]`` of the model's shape, e.g. ``NeuronSet.mask("specific", "en")``.
        quantiles: floats in [0, 1], ``"median"`` or ``"pNN"`` strings (one or a list).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> m = torch.zeros(2, 64, dtype=torch.bool); m[1, :3] = True
    >>> q = collect_quantiles(model, {"en": ["a cat sat", "a dog"]}, m, ["median", 0.9])
    >>> q["en"].shape, bool(q["en"][:, 1, :3].isfinite().all()), bool(q["en"][:, 0].isnan().all())
    (torch.Size([2, 2, 64]), True, True)
    """
    check_site(site)
    qs = parse_quantiles(quantiles)
    corpus = as_corpus(corpus, what="collect_quantiles")
    langs, ids, texts = corpus_langs_texts(corpus, langs)
    sites = neuron_sites(model)
    mask = torch.as_tensor(mask).to("cpu", torch.bool)
    if tuple(mask.shape) != sites.shape:
        raise DataValidationError(
            f"mask has shape {tuple(mask.shape)}, expected the model's [layer, neuron] = {sites.shape}."
        )
    layers = [l for l in range(sites.n_layers) if bool(mask[l].any())]
    out: dict[str, Tensor] = {}
    if not layers:
        for lang in langs:
            out[lang] = torch.full((len(qs),) + sites.shape, math.nan, dtype=torch.float64)
        return out
    cols = {l: mask[l].nonzero().squeeze(1) for l in layers}
    ctx: dict[str, Any] = {}

    def on_values(layer: int, values: Tensor) -> None:
        m = ctx["mask"]
        c = cols[layer].to(values.device)
        sel = values.detach()[m.to(values.device)][:, c]
        ctx["chunks"][layer].append(sel.to("cpu", torch.float32))

    hooks = layer_read_hooks(sites, site, layers, on_values)
    n_batches = sum(math.ceil(len(ids) / batch_size) for _ in langs)
    n_trunc = 0
    with progress_bar(n_batches, progress, "neuron quantiles") as bar:
        for lang in langs:
            ctx["chunks"] = {l: [] for l in layers}
            for _, enc in sentence_batches(
                model, texts[lang], batch_size=batch_size, padding_side=padding_side,
                max_length=max_length, truncation=truncation, keep_bos=keep_bos,
            ):
                n_trunc += enc.n_truncated
                ctx["mask"] = enc.real_mask
                read_forward(model, enc, hooks, stop_after_layer=layers[-1])
                bar.update(1)
            res = torch.full((len(qs),) + sites.shape, math.nan, dtype=torch.float64)
            for l in layers:
                vals = torch.cat(ctx["chunks"][l], dim=0)
                res[:, l, cols[l]] = sorted_quantiles(vals, qs)
            out[lang] = res
            ctx["chunks"] = {}
    warn_truncated(n_trunc, len(ids) * len(langs), max_length, model)
    return out
