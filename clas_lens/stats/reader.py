"""The one forward reader: run a model with read hooks and stop right after the last layer needed.

Statistics (:func:`~clas_lens.stats.collect_stats`, :func:`~clas_lens.stats.collect_quantiles`),
residual means (:func:`~clas_lens.stats.residual_means`) and residual representations
(``clas_lens.clusters.residual_reps``) all read activations the same way, through
:func:`read_forward`:

* the forward runs under ``torch.no_grad()`` with the given read ``hooks``;
* with ``stop_after_layer=L`` nothing after block ``L`` is computed: the bridge gets
  ``stop_at_layer=L + 1`` (when ``L`` is not the last block), and a stop hook placed after the
  last of ``hooks`` that belongs to block ``L`` (``blocks.{L}.hook_resid_post`` if none does)
  raises a private exception that :func:`read_forward` catches. So even for the last block the
  final norm and the unembedding (most of the cost for large vocabularies) never run.

The stop hook is registered after the caller's hooks, so a hook on the same point still sees
its values. Hooks are ``(hook_name, fn(tensor, hook))`` pairs, as ``model.hooks`` takes them.

>>> import torch
>>> from clas_lens.batching import encode
>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> enc = encode(model, ["the cat sat", "a dog"])
>>> seen = {}
>>> def grab(layer):
...     def read(t, hook):
...         seen[layer] = t.shape
...         return t
...     return read
>>> hooks = [(f"blocks.{l}.hook_resid_post", grab(l)) for l in (0, 1)]
>>> read_forward(model, enc, hooks, stop_after_layer=0)  # block 1 never runs: returns None
>>> sorted(seen)
[0]

It also holds the pieces every corpus reader shares: :func:`sentence_batches` (longest
sentence first, to limit padding), :func:`layer_read_hooks` (a neuron site's read hooks over
layers), a progress bar and the one truncation warning.
"""
from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor

from clas_lens.batching import Encoded, batched, context_length, encode
from clas_lens.sites import neuron_sites

__all__ = ["read_forward", "sentence_batches", "layer_read_hooks", "progress_bar", "warn_truncated"]

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


class _StopForward(Exception):
    """Raised by the stop hook after the last needed layer; :func:`read_forward` catches it."""


def _raise_stop(t, hook):
    raise _StopForward


def _stop_point(hooks: Sequence[tuple[str, Any]], layer: int) -> str:
    """The hook point after which nothing of the forward is needed."""
    names = [name for name, _ in hooks if (m := _BLOCK.match(name)) and int(m.group(1)) == layer]
    return names[-1] if names else f"blocks.{layer}.hook_resid_post"


def read_forward(
    model,
    enc: Encoded,
    hooks: Sequence[tuple[str, Callable]],
    *,
    stop_after_layer: int | None = None,
) -> Any:
    """Forward ``enc`` through ``model`` with read ``hooks``, under ``torch.no_grad()``.

    Args:
        model: a TransformerBridge.
        enc: a batch from :func:`clas_lens.batching.encode` (its attention mask is passed).
        hooks: ``(hook_name, fn)`` read hooks (``fn(tensor, hook)`` returns the tensor).
        stop_after_layer: the deepest block whose hooks are needed; nothing after its last
            hook runs. ``None`` runs the whole model.

    Returns:
        The model's output when the whole model ran, else ``None``.

    >>> from clas_lens.batching import encode
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> read_forward(model, encode(model, ["hi"]), []).shape[-1] == model.cfg.d_vocab
    True
    """
    kwargs: dict[str, Any] = {"attention_mask": enc.attention_mask}
    hooks = list(hooks)
    if stop_after_layer is not None:
        stop = int(stop_after_layer)
        if stop + 1 < neuron_sites(model).n_layers:
            kwargs["stop_at_layer"] = stop + 1
        hooks.append((_stop_point(hooks, stop), _raise_stop))
    try:
        with torch.no_grad(), model.hooks(fwd_hooks=hooks):
            return model(enc.input_ids, **kwargs)
    except _StopForward:
        return None


def sentence_batches(
    model,
    texts: Sequence[str],
    *,
    batch_size: int,
    padding_side: str = "right",
    max_length: int | None = None,
    truncation: str = "warn",
    keep_bos: bool = False,
) -> Iterator[tuple[list[int], Encoded]]:
    """Batches of sentence indices (longest text first, ties by index) and their encodings.

    Truncation warnings are silenced here: callers count ``enc.n_truncated`` and warn once
    (:func:`warn_truncated`).

    >>> from clas_lens.testing import tiny_model
    >>> [idx for idx, _ in sentence_batches(tiny_model("gpt2"), ["a", "abc", "ab"], batch_size=2)]
    [[1, 2], [0]]
    """
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    for idx in batched(order, batch_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted and reported once by the caller
            enc = encode(
                model,
                [texts[i] for i in idx],
                padding_side=padding_side,
                max_length=max_length,
                truncation=truncation,
                keep_bos=keep_bos,
            )
        yield list(idx), enc


def layer_read_hooks(sites, site: str, layers: Sequence[int], on_values: Callable[[int, Tensor], None]) -> list:
    """Read hooks calling ``on_values(layer, values)`` at neuron ``site`` of every layer in ``layers``.

    >>> from clas_lens.sites import neuron_sites
    >>> from clas_lens.testing import tiny_model
    >>> [n for n, _ in layer_read_hooks(neuron_sites(tiny_model("llama")), "post", [1], print)]
    ['blocks.1.mlp.hook_post']
    """
    hooks = []
    for layer in layers:
        hooks += sites.read_hooks(site, layer, lambda v, layer=layer: on_values(layer, v))
    return hooks


def progress_bar(total: int, progress: bool | None, desc: str):
    """A tqdm bar; ``progress=None`` shows it only for more than 8 steps."""
    from tqdm.auto import tqdm

    disable = (total <= 8) if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, leave=False)


def warn_truncated(n: int, total: int, max_length: int | None, model, *, stacklevel: int = 3) -> None:
    """The one warning that ``n`` of ``total`` texts were cut to the context length."""
    if n:
        limit = min(max_length or context_length(model), context_length(model))
        warnings.warn(
            f"Truncated {n} of {total} text(s) to {limit} tokens; statistics use the truncated "
            "text (pass truncation='error' to refuse instead, or raise max_length).",
            stacklevel=stacklevel,
        )
