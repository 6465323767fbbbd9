"""The hooks of prefix reuse on a Hugging Face decoder-layer stack (:mod:`clas_lens.prefix`):
recording block ``start-1``'s output (and, for ``keep_cache``, every KV-cache update of the
blocks before it) during a full forward, and replaying them so that blocks ``0..start-1`` do
not run.

>>> import torch
>>> from clas_lens.testing import tiny_model
>>> from clas_lens.prefix import decoder_layers
>>> model = tiny_model("llama")
>>> layers, ids = decoder_layers(model), torch.tensor([[1, 5, 6, 7]])
>>> box, kv = [], []
>>> with torch.no_grad(), record_prefix(layers, 1, box, kv):
...     full = model(ids, use_cache=True)
>>> with torch.no_grad(), replay_prefix(layers, 1, box[0], kv[0]):
...     again = model(ids, use_cache=True)
>>> bool(torch.allclose(full, again, atol=1e-6)), len(kv[0]) == 1
(True, True)
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from torch import Tensor
from transformers.cache_utils import Cache, EncoderDecoderCache

from clas_lens.errors import DataValidationError

__all__ = ["record_prefix", "replay_prefix", "watch_cache", "find_cache"]


@contextlib.contextmanager
def record_prefix(layers, start: int, box: list[Tensor], kv_box: list | None = None) -> Iterator[None]:
    """Append block ``start-1``'s output (a copy) to ``box`` during the forward; with ``kv_box``
    also every KV-cache update of blocks ``0..start-1`` (their exact arguments, copied), so a
    replay can leave the cache as the full forward leaves it (generation reads it later)."""

    def keep(mod, args, out):
        if not isinstance(out, Tensor):
            raise DataValidationError(
                f"Prefix reuse expected decoder layers that return a tensor; {type(mod).__name__} returned "
                f"{type(out).__name__}. Run without reuse_prefix()."
            )
        box.append(out.detach().clone())

    handles = [layers[start - 1].register_forward_hook(keep)]
    if kv_box is not None:
        updates: list = []
        kv_box.append(updates)
        for i in range(start):
            handles += watch_cache(layers[i], updates)
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def watch_cache(layer, updates: list) -> list:
    """Hooks on one decoder layer that record the ``update`` calls its forward makes on the KV
    cache it is handed (``(key, value, layer_idx, cache_kwargs)``, tensors copied)."""

    def before(mod, args, kwargs):
        cache = find_cache(args[1:], kwargs)
        if cache is None:
            return
        real = cache.update

        def update(key_states, value_states, layer_idx, cache_kwargs=None, *rest, **kw):
            updates.append((key_states.detach().clone(), value_states.detach().clone(), layer_idx, cache_kwargs))
            return real(key_states, value_states, layer_idx, cache_kwargs, *rest, **kw)

        cache.__dict__["update"] = update
        mod.__dict__["_clas_lens_watched"] = cache

    def after(mod, args, kwargs, out):
        cache = mod.__dict__.pop("_clas_lens_watched", None)
        if cache is not None:
            cache.__dict__.pop("update", None)

    return [layer.register_forward_pre_hook(before, with_kwargs=True),
            layer.register_forward_hook(after, with_kwargs=True)]


def find_cache(args: tuple, kwargs: dict) -> Any:
    for x in list(args) + list(kwargs.values()):
        if isinstance(x, EncoderDecoderCache):
            return x.self_attention_cache
        if isinstance(x, Cache):
            return x
    return None


@contextlib.contextmanager
def replay_prefix(layers, start: int, resid: Tensor, updates: list | None = None) -> Iterator[None]:
    """Blocks ``0..start-2`` return their input, block ``start-1`` returns ``resid``; each writes
    into the KV cache it is handed either the updates recorded when the prefix was stored
    (``updates``: the cache ends as after the full forward) or a placeholder of the right length
    (never attended to)."""
    by_layer: dict[int, list] = {}
    for u in updates or ():
        by_layer.setdefault(int(u[2]), []).append(u)

    def skipped(i: int) -> Callable:
        def forward(*args, **kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            if hidden.shape[:2] != resid.shape[:2]:
                raise DataValidationError(
                    f"Prefix replay: the stored residual has shape {tuple(resid.shape)} but block {i} got "
                    f"{tuple(hidden.shape)}; the forwards of a reuse_steps unit must repeat in the same order."
                )
            cache = find_cache(args[1:], kwargs)
            if cache is not None and updates is not None:
                for k, v, idx, cache_kwargs in by_layer.get(i, ()):
                    cache.update(k, v, idx, cache_kwargs)
            elif cache is not None:
                z = hidden.new_zeros(hidden.shape[0], 1, hidden.shape[1], 1)
                cache.update(z, z, i)
            return resid.clone() if i == start - 1 else hidden

        return forward

    for i in range(start):
        layers[i].__dict__["forward"] = skipped(i)
    try:
        yield
    finally:
        for i in range(start):
            layers[i].__dict__.pop("forward", None)
