"""Prefix reuse: run the blocks before the first edited layer once, and only the rest per condition.

A sweep evaluates many steering conditions on the same token batches. When every installed hook
sits in block ``k`` or later, blocks ``0..k-1`` compute the same residual stream for every
condition. :func:`reuse_prefix` opens a scope in which :func:`forward_at` (the forward used by
option scoring and the language-modelling task) stores the residual entering block ``k`` the
first time it sees a batch, and on later calls with the same tokens *replays* it: blocks
``0..k-2`` return their input unchanged and block ``k-1`` returns the stored residual, so only
blocks ``k..n-1`` run, with the architecture's own masks, positions and rotary embeddings
(GPT-2, Llama, Gemma-3 sliding/global layers alike: the Hugging Face forward builds them as
usual). The unembedding runs only at the positions asked for (``logits_to_keep``).

The replay is exact (the stored tensor *is* block ``k-1``'s output on these tokens), and it is
used only when it is safe: no TransformerLens hook is active on any block before ``k`` or on the embedding
(checked on every call, so a user's own hook on an early layer falls back to the full path), the
forward is not using a KV cache, and the tokens and mask equal the stored ones.

>>> import torch
>>> from clas_lens.testing import tiny_model
>>> from clas_lens.batching import encode
>>> model = tiny_model("llama")
>>> enc = encode(model, ["one two three", "four"], padding_side="left")
>>> pos = torch.tensor([[2, 3], [2, 3]])
>>> full = forward_at(model, enc.input_ids, enc.attention_mask, pos)
>>> with reuse_prefix(model, start=1) as memo:
...     a = forward_at(model, enc.input_ids, enc.attention_mask, pos)   # stores the prefix
...     b = forward_at(model, enc.input_ids, enc.attention_mask, pos)   # replays it
>>> memo.hits, bool(torch.allclose(full, b, atol=1e-6)), tuple(b.shape[:2])
(1, True, (2, 2))
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any, Iterator

import torch
from jaxtyping import Float, Int
from torch import Tensor

from clas_lens.errors import DataValidationError

#: Hook names before the first block (any active hook here disables reuse).
_EMBED_PREFIXES = ("hook_embed", "hook_pos_embed", "hook_tokens", "embed", "pos_embed")
#: Hook names after the last block.
_OUTPUT_PREFIXES = ("ln_final", "unembed", "hook_unembed", "final_norm")


def decoder_layers(model) -> Any:
    """The Hugging Face decoder-layer list the bridge runs (``model.layers`` / ``transformer.h``)."""
    hf = model.original_model
    inner = getattr(hf, "model", None) or getattr(hf, "transformer", None)
    layers = getattr(inner, "layers", None) if inner is not None else None
    if layers is None and inner is not None:
        layers = getattr(inner, "h", None)
    if layers is None or len(layers) != model.cfg.n_layers:
        raise DataValidationError(
            f"Prefix reuse needs a decoder-only model with a standard layer stack; "
            f"{type(hf).__name__} has none. Run without reuse_prefix()."
        )
    return layers


def _hook_layer(name: str, n_layers: int) -> int:
    if name.startswith("blocks."):
        try:
            return int(name.split(".")[1])
        except (IndexError, ValueError):
            return 0
    if name.startswith(_OUTPUT_PREFIXES):
        return n_layers
    return 0  # the embedding stage, or a hook point we do not know: be safe


def first_hooked_layer(model) -> int:
    """The first block any active TransformerLens hook touches; ``n_layers`` when nothing
    before the output stage is hooked. (Raw torch hooks on submodules are not TransformerLens
    hooks and are not seen: steer through ``model.hooks`` / :func:`clas_lens.steer`.)

    >>> from clas_lens.testing import tiny_model
    >>> m = tiny_model("gpt2")
    >>> with m.hooks(fwd_hooks=[("blocks.1.mlp.hook_post", lambda t, hook: t)]):
    ...     first_hooked_layer(m)
    1
    >>> first_hooked_layer(m)
    2
    """
    n = model.cfg.n_layers
    first = n
    for name, hp in model.hook_dict.items():
        if hp.fwd_hooks or hp._forward_hooks or hp._forward_pre_hooks:
            first = min(first, _hook_layer(name, n))
    return first


def _key(input_ids: Tensor, attention_mask: Tensor | None) -> str:
    h = hashlib.sha256()
    for t in (input_ids, attention_mask):
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(repr((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class PrefixMemo:
    """Residuals entering block ``start``, keyed by (tokens, mask); least recently used dropped
    past ``max_bytes``. ``hits`` / ``misses`` / ``fallbacks`` count what :func:`forward_at` did."""

    model: Any = dataclasses.field(repr=False)
    start: int
    max_bytes: int = 1 << 30
    hits: int = 0
    misses: int = 0
    fallbacks: int = 0
    _store: "OrderedDict[str, Tensor]" = dataclasses.field(default_factory=OrderedDict, repr=False)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._store.values())

    def get(self, key: str) -> Tensor | None:
        t = self._store.get(key)
        if t is not None:
            self._store.move_to_end(key)
        return t

    def put(self, key: str, resid: Tensor) -> None:
        self._store[key] = resid
        while len(self._store) > 1 and self.nbytes > self.max_bytes:
            self._store.popitem(last=False)


@contextlib.contextmanager
def reuse_prefix(model, start: int, *, max_bytes: int = 1 << 30) -> Iterator[PrefixMemo]:
    """A scope in which :func:`forward_at` reuses blocks ``0..start-1`` across calls.

    ``start`` is the first block any condition in the scope edits (``0`` disables reuse).
    Inside the scope, a call whose active hooks touch an earlier block runs the full model.
    """
    n = model.cfg.n_layers
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= n:
        raise DataValidationError(f"reuse_prefix(start={start!r}): use an int in 0..{n} (the first edited block).")
    if start > 0:
        decoder_layers(model)  # fail early on an unsupported architecture
    memo = PrefixMemo(model=model, start=min(start, n - 1) if start else 0, max_bytes=max_bytes)
    previous = getattr(model, "_clas_lens_prefix", None)
    object.__setattr__(model, "_clas_lens_prefix", memo)
    try:
        yield memo
    finally:
        object.__setattr__(model, "_clas_lens_prefix", previous)


def active_prefix(model) -> PrefixMemo | None:
    """The :class:`PrefixMemo` of the innermost :func:`reuse_prefix` scope, or None."""
    return getattr(model, "_clas_lens_prefix", None)


class _Stop(Exception):
    pass


def _capture(model, layers, input_ids, attention_mask, start: int) -> Tensor:
    """Run blocks 0..start-1 only and return block start-1's output."""
    box: dict[str, Tensor] = {}

    def keep(mod, args, out):
        box["out"] = out

    def stop(mod, args, kwargs):
        raise _Stop

    handles = [layers[start - 1].register_forward_hook(keep), layers[start].register_forward_pre_hook(stop, with_kwargs=True)]
    try:
        model(input_ids, attention_mask=attention_mask)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    out = box["out"]
    if not isinstance(out, Tensor):
        raise DataValidationError(
            f"Prefix reuse expected decoder layers that return a tensor; {type(layers[0]).__name__} returned "
            f"{type(out).__name__}. Run without reuse_prefix()."
        )
    return out


@contextlib.contextmanager
def _replay(layers, start: int, resid: Tensor) -> Iterator[None]:
    def passthrough(hidden_states, *args, **kwargs):
        return hidden_states

    def stored(*args, **kwargs):
        return resid

    for i in range(start):
        layers[i].__dict__["forward"] = stored if i == start - 1 else passthrough
    try:
        yield
    finally:
        for i in range(start):
            layers[i].__dict__.pop("forward", None)


def forward_at(
    model,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"] | None,
    positions: Int[Tensor, "batch k"] | None = None,
) -> Float[Tensor, "batch k vocab"]:
    """Logits at ``positions`` (per row; all positions when None) of one forward pass.

    Inside :func:`reuse_prefix` the blocks before the scope's ``start`` are computed once per
    token batch and replayed on later calls; the result equals the full forward's logits at
    those positions. The unembedding runs only at ``positions``.
    """
    kwargs: dict[str, Any] = {"attention_mask": attention_mask}
    if positions is not None:
        positions = positions.to(input_ids.device)
        if positions.ndim != 2 or positions.shape[0] != input_ids.shape[0]:
            raise DataValidationError(f"positions must be [batch, k] integer indices; got shape {tuple(positions.shape)}.")
        kwargs["logits_to_keep"] = positions
    memo = active_prefix(model)
    if memo is None or memo.start == 0:
        return model(input_ids, **kwargs)
    if first_hooked_layer(model) < memo.start:
        memo.fallbacks += 1
        return model(input_ids, **kwargs)
    layers = decoder_layers(model)
    key = _key(input_ids, attention_mask)
    resid = memo.get(key)
    if resid is None:
        memo.misses += 1
        resid = _capture(model, layers, input_ids, attention_mask, memo.start)
        memo.put(key, resid)
    else:
        memo.hits += 1
    with _replay(layers, memo.start, resid):
        return model(input_ids, **kwargs)
