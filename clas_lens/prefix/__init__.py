"""Prefix reuse: run the blocks before the first edited layer once, and only the rest per condition.

A sweep evaluates many steering conditions on the same token batches. When every installed hook
sits in block ``k`` or later, blocks ``0..k-1`` compute the same residual stream for every
condition. :func:`reuse_prefix` opens a scope in which the forwards of option scoring and the
language-modelling task store the residual entering block ``k`` the first time they see a batch
(one ordinary forward, the output of block ``k-1`` recorded on the way), and on later calls with
the same tokens *replay* it: blocks ``0..k-2`` return their input unchanged and block ``k-1``
returns the stored residual, so only blocks ``k..n-1`` run, with the architecture's own masks,
positions and rotary embeddings (GPT-2, Llama, Gemma-3 sliding/global layers alike: the Hugging
Face forward builds them as usual).

Two entry points:

* :func:`forward_at`: one forward, logits only at the positions asked for (``logits_to_keep``).
* :func:`reuse_steps`: a unit of consecutive forwards stored and replayed together, e.g. the
  prompts, then the options on the prompts' KV cache (:mod:`clas_lens.scoring`). A replayed
  block writes a placeholder of the right length into the KV cache it is handed, so that the
  cache lengths, masks and positions of the next forward stay right; the placeholder is never
  attended to (the blocks that would read it are replayed too). With ``keep_cache=True`` the
  replayed blocks instead write the keys and values they wrote when the prefix was stored
  (recorded from their cache updates), so the cache ends exactly as after the full forward:
  greedy generation (:mod:`clas_lens.generation`) replays its prompt pass this way, and its
  decode steps, whose tokens differ by condition, run every block on that cache.

The replay is exact (the stored tensor *is* block ``k-1``'s output on these tokens), and it is
used only when it is safe: no TransformerLens hook is active on any block before ``k`` or on the
embedding (checked on every call, so a user's own hook on an early layer falls back to the full
path), gradients are off (a replayed prefix has none), and the tokens, mask and positions equal
the stored ones. Stored prefixes live on the model's device; once ``max_bytes`` are held, new
ones are not stored (a sweep visits the same batches in a cycle: keeping the first ones still
gives hits, where evicting the oldest would make every access miss).

>>> import torch
>>> from clas_lens.testing import tiny_model
>>> from clas_lens.batching import encode
>>> model = tiny_model("llama")
>>> enc = encode(model, ["one two three", "four"], padding_side="left")
>>> pos = torch.tensor([[2, 3], [2, 3]])
>>> with torch.no_grad():
...     full = forward_at(model, enc.input_ids, enc.attention_mask, pos)
...     with reuse_prefix(model, start=1) as memo:
...         a = forward_at(model, enc.input_ids, enc.attention_mask, pos)   # stores the prefix
...         b = forward_at(model, enc.input_ids, enc.attention_mask, pos)   # replays it
>>> memo.hits, bool(torch.allclose(full, b, atol=1e-6)), tuple(b.shape[:2])
(1, True, (2, 2))
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Any, Callable, ContextManager, Iterable, Iterator

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.prefix.hooks import record_prefix, replay_prefix

__all__ = [
    "PrefixMemo", "reuse_prefix", "active_prefix", "forward_at", "reuse_steps",
    "first_hooked_layer", "hooked_names", "first_layer_of", "best_start", "decoder_layers",
]

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


def _hook_layer(name: Any, n_layers: int) -> int:
    if not isinstance(name, str):
        return 0  # a name filter: it may match anything
    if name.startswith("blocks."):
        try:
            return int(name.split(".")[1])
        except (IndexError, ValueError):
            return 0
    if name.startswith(_OUTPUT_PREFIXES):
        return n_layers
    return 0  # the embedding stage, or a hook point we do not know: be safe


def first_layer_of(hook_names: Iterable[str], n_layers: int) -> int:
    """The first block a list of TransformerLens hook names touches (``n_layers`` for none;
    ``0`` for the embedding or a name it does not know).

    >>> first_layer_of(["blocks.3.mlp.hook_post", "blocks.5.hook_resid_post"], 6), first_layer_of([], 6)
    (3, 6)
    >>> first_layer_of(["hook_embed", "ln_final.hook_normalized"], 6)
    0
    """
    return min((_hook_layer(n, n_layers) for n in hook_names), default=n_layers)


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
    return first_layer_of(hooked_names(model), model.cfg.n_layers)


def hooked_names(model) -> list[str]:
    """The names of the TransformerLens hook points that have an active hook.

    >>> from clas_lens.testing import tiny_model
    >>> m = tiny_model("gpt2")
    >>> with m.hooks(fwd_hooks=[("blocks.1.mlp.hook_post", lambda t, hook: t)]):
    ...     names = hooked_names(m)
    >>> "blocks.1.mlp.hook_post" in names, "hook_embed" in names, hooked_names(m)
    (True, False, [])
    """
    return [name for name, hp in model.hook_dict.items() if hp.fwd_hooks or hp._forward_hooks or hp._forward_pre_hooks]


def best_start(first_layers: Iterable[int], n_layers: int) -> int:
    """The ``start`` of :func:`reuse_prefix` that runs the fewest blocks for a group of
    conditions, given the first block each one edits (``n_layers`` for the unsteered one).

    A condition that edits block ``f >= start`` runs ``n_layers - start`` blocks (after the
    prefix is computed once); one with ``f < start`` falls back to all ``n_layers``. With
    conditions that all edit the same layers this is their first edited block; ``0`` (no
    reuse) when nothing can be saved.

    >>> best_start([18, 14, 14], 18)          # unsteered + two last:4 conditions
    14
    >>> best_start([18, 14, 14, 0], 18)       # one "all" condition falls back
    14
    >>> best_start([18, 0, 0], 18), best_start([18], 18)
    (0, 0)
    """
    firsts = [min(max(int(f), 0), n_layers) for f in first_layers]
    if len(firsts) < 2:
        return 0
    best, best_cost = 0, n_layers * len(firsts)
    for k in sorted({min(f, n_layers - 1) for f in firsts if f > 0}):
        cost = k + sum(n_layers - k if f >= k else n_layers for f in firsts)
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def _key(tag: str, *parts: Tensor | None) -> str:
    h = hashlib.sha256(tag.encode())
    for t in parts:
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(repr((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _tensors(x: Any) -> Iterator[Tensor]:
    """Every tensor in a nest of tuples / lists / dicts."""
    if isinstance(x, Tensor):
        yield x
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


@dataclasses.dataclass
class PrefixMemo:
    """Residuals entering block ``start``, keyed by the tokens (and mask, positions) they were
    computed on. ``hits`` / ``misses`` / ``fallbacks`` count what the forwards did (a unit of
    :func:`reuse_steps` counts once); ``dropped``: prefixes not stored for want of room."""

    model: Any = dataclasses.field(repr=False)
    start: int
    max_bytes: int = 1 << 30
    hits: int = 0
    misses: int = 0
    fallbacks: int = 0
    dropped: int = 0
    nbytes: int = 0
    _store: dict = dataclasses.field(default_factory=dict, repr=False)

    def get(self, key: str) -> tuple | None:
        return self._store.get(key)

    def put(self, key: str, steps: tuple) -> None:
        """Store one unit's steps, each ``(residual, kv_updates or None)``."""
        size = sum(t.numel() * t.element_size() for t in _tensors(steps))
        if self.nbytes + size > self.max_bytes:
            self.dropped += 1
            return
        self._store[key] = steps
        self.nbytes += size


@contextlib.contextmanager
def reuse_prefix(model, start: int, *, max_bytes: int = 1 << 30) -> Iterator[PrefixMemo]:
    """A scope in which :func:`forward_at` and :func:`reuse_steps` reuse blocks ``0..start-1``
    across calls.

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


def _usable(model) -> PrefixMemo | None:
    """The active memo when a replay is safe now (else None; an unsafe call counts a fallback)."""
    memo = active_prefix(model)
    if memo is None or memo.start == 0:
        return None
    if torch.is_grad_enabled() or first_hooked_layer(model) < memo.start:
        memo.fallbacks += 1
        return None
    return memo


def forward_at(
    model,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"] | None,
    positions: Int[Tensor, "batch k"] | Bool[Tensor, "batch pos"] | None = None,
    *,
    position_ids: Int[Tensor, "batch pos"] | None = None,
) -> Float[Tensor, "batch k vocab"] | Float[Tensor, "kept vocab"]:
    """Logits at ``positions`` of one forward pass: all positions when None (``[batch, pos,
    vocab]``), ``k`` integer indices per row (``[batch, k, vocab]``), or a boolean mask shaped
    like ``input_ids`` (``[n_true, vocab]``, the kept positions in row-major order: no logits for
    padding when rows keep different numbers of positions).

    ``position_ids`` default to what the bridge derives from the mask. Inside
    :func:`reuse_prefix` the blocks before the scope's ``start`` are computed once per token
    batch and replayed on later calls; the result equals the full forward's logits at those
    positions. The unembedding runs only at ``positions``.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> ids, att = torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    >>> with torch.no_grad():
    ...     full, kept = forward_at(model, ids, att), forward_at(model, ids, att, att.bool())
    >>> kept.shape[0], bool(torch.allclose(full[att.bool()], kept, atol=1e-6))
    (6, True)
    """
    kwargs: dict[str, Any] = {"attention_mask": attention_mask}
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if positions is not None:
        positions = positions.to(input_ids.device)
        if positions.dtype == torch.bool:
            if positions.shape != input_ids.shape:
                raise DataValidationError(
                    f"a boolean positions mask must have the shape of input_ids {tuple(input_ids.shape)}; "
                    f"got {tuple(positions.shape)}."
                )
        elif positions.ndim != 2 or positions.shape[0] != input_ids.shape[0]:
            raise DataValidationError(
                f"positions must be [batch, k] integer indices or a [batch, pos] boolean mask; got shape "
                f"{tuple(positions.shape)}."
            )
        kwargs["logits_to_keep"] = positions
    with reuse_steps(model, input_ids, attention_mask, position_ids) as step:
        with step():
            return model(input_ids, **kwargs)


@contextlib.contextmanager
def reuse_steps(model, *key_parts: Tensor | None, keep_cache: bool = False) -> Iterator[Callable[[], ContextManager[None]]]:
    """A unit of consecutive forwards whose prefixes are stored and replayed together.

    ``key_parts``: every tensor the forwards' prefixes depend on (tokens, masks, positions of
    all of them). Yields ``step``; run each forward of the unit as ``with step(): model(...)``,
    in the same order every time. Outside a :func:`reuse_prefix` scope (or when a replay is not
    safe) ``step()`` does nothing and the forwards run in full.

    ``keep_cache=True``: the replayed blocks also write into the KV cache exactly what they
    wrote when the prefix was stored (their keys and values are kept with it), so forwards after
    the unit may attend to every layer of the cache -- generation's decode steps, which run all
    blocks on tokens that differ by condition. Without it the replayed layers' cache holds
    placeholders, which is right only when no later forward reads them.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> ids = torch.tensor([[1, 5, 6, 7]])
    >>> with torch.no_grad(), reuse_prefix(model, start=1) as memo:
    ...     for _ in range(3):
    ...         with reuse_steps(model, ids) as step:
    ...             with step():
    ...                 logits, cache = model(ids, use_cache=True, return_type="logits_and_cache")
    ...             with step():
    ...                 nxt = model(ids[:, :1], past_key_values=cache, use_cache=True)
    >>> memo.misses, memo.hits
    (1, 2)
    """
    memo = _usable(model)
    if memo is None:
        yield contextlib.nullcontext
        return
    layers = decoder_layers(model)
    key = _key(f"steps@{memo.start}{'+kv' if keep_cache else ''}", *key_parts)
    stored = memo.get(key)
    if stored is not None:
        memo.hits += 1
        it = iter(stored)

        def replay_step() -> ContextManager[None]:
            step = next(it, None)
            if step is None:
                raise DataValidationError("reuse_steps: more forwards than when the prefix was stored.")
            resid, updates = step
            return replay_prefix(layers, memo.start, resid, updates)

        yield replay_step
        return
    memo.misses += 1
    box: list[Tensor] = []
    kv_box: list | None = [] if keep_cache else None
    yield lambda: record_prefix(layers, memo.start, box, kv_box)
    if box:
        memo.put(key, tuple(zip(box, kv_box if kv_box is not None else [None] * len(box))))
