"""Log-probabilities of given tokens without the full logit matrix: the unembedding in vocabulary chunks.

Scoring needs ``log p(token | position)`` for a few tokens per position, but the output layer of a
multilingual model is huge (Gemma-3: 262,144 rows; at each scored position its matmul costs about
30 decoder blocks of the 270M model). :func:`final_residual` opens a scope in which a plain output
layer (:func:`plain_head`) records its input, the final normed residual at the kept positions,
and runs on no rows; :meth:`Unembedded.logprobs` then computes the wanted log-probabilities from
that residual with :func:`token_logprobs`: the output layer's own matmul, one vocabulary chunk at a
time (:data:`VOCAB_CHUNK_CPU` rows on a CPU, :data:`VOCAB_CHUNK` elsewhere), with a running
log-sum-exp; :meth:`Unembedded.logprobs_many` reads several forwards in one pass over the layer. The ``positions x vocab`` logits are never held at once, and on
a CPU this is faster too (a chunk of the weight and its logits stay in cache). Where the fast path
does not apply (another model type, logit soft-capping, a hook on the unembedding's output that must
see the logits, gradients on), the model computes its logits as usual and ``logprobs`` takes the
log-softmax of them: the same numbers up to float32 rounding (tested to 1e-5).

>>> import torch
>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> ids = torch.tensor([[1, 5, 6, 7]])
>>> with torch.no_grad(), final_residual(model) as out:
...     logits = model(ids, logits_to_keep=1)          # the last position, no logits computed
...     lp = out.logprobs(logits, torch.tensor([9, 12]), rows=torch.tensor([0, 0]))
>>> full = torch.log_softmax(model(ids)[0, -1], dim=-1)[[9, 12]]
>>> tuple(logits.shape), bool(torch.allclose(lp, full, atol=1e-5))
((0, 1, 400), True)
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from clas_lens.prefix import hooked_names

__all__ = ["PLAIN_HEADS", "VOCAB_CHUNK", "VOCAB_CHUNK_CPU", "plain_head", "token_logprobs", "final_residual", "Unembedded"]

#: Hugging Face model types whose causal-LM logits are the output layer applied to the final
#: normed residual with nothing after it (no scaling, no soft-capping).
PLAIN_HEADS: frozenset[str] = frozenset({"gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma3_text"})

#: Vocabulary rows per chunk of :func:`token_logprobs` on an accelerator (a chunk's logits:
#: positions x 16384 floats) and on a CPU, where smaller chunks stay in cache (measured on
#: Gemma-3's 262,144 x 640 output layer, 2 threads: 6.0 against 8.8 ms per position for 24
#: positions, equal for 320).
VOCAB_CHUNK = 16384
VOCAB_CHUNK_CPU = 2048

#: Unembedding hook points whose hooks must see real logits.
_OUTPUT_HOOKS = ("unembed.hook_out", "hook_unembed")


def token_logprobs(
    hidden: Float[Tensor, "n d_model"],
    weight: Float[Tensor, "vocab d_model"],
    bias: Float[Tensor, " vocab"] | None,
    targets: Int[Tensor, " m"],
    rows: Int[Tensor, " m"] | None = None,
    chunk: int = VOCAB_CHUNK,
) -> Float[Tensor, " m"]:
    """``log_softmax(hidden @ weight.T + bias)[rows, targets]`` in float32, the log-sum-exp of each
    row accumulated over vocabulary chunks (a running maximum and a rescaled running sum) and each
    target's logit read from its chunk. ``rows`` (default: ``0..n-1``, one target per row) lets
    several targets share a row.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> h, w = torch.randn(2, 8, generator=g), torch.randn(50, 8, generator=g)
    >>> full = torch.log_softmax(h @ w.T, dim=-1)
    >>> got = token_logprobs(h, w, None, torch.tensor([3, 49, 0]), rows=torch.tensor([0, 0, 1]), chunk=16)
    >>> bool(torch.allclose(got, full[[0, 0, 1], [3, 49, 0]], atol=1e-5))
    True
    """
    n, dev = hidden.shape[0], hidden.device
    rows = torch.arange(n, device=dev) if rows is None else rows.to(dev)
    targets = targets.to(dev)
    run_max = torch.full((n,), -torch.inf, device=dev)
    run_sum = torch.zeros(n, device=dev)
    target_logit = torch.zeros(targets.shape[0], device=dev)
    for lo in range(0, weight.shape[0], chunk):
        logits = F.linear(hidden, weight[lo:lo + chunk], None if bias is None else bias[lo:lo + chunk]).float()
        here = (targets >= lo) & (targets < lo + logits.shape[1])
        target_logit[here] = logits[rows[here], targets[here] - lo]
        new_max = torch.maximum(run_max, logits.amax(dim=-1))
        # in place: the chunk's logits are a fresh tensor, and a temporary per step costs ~20 %
        run_sum = run_sum * torch.exp(run_max - new_max) + logits.sub_(new_max.unsqueeze(-1)).exp_().sum(dim=-1)
        run_max = new_max
    return target_logit - (run_max + torch.log(run_sum))[rows]


def plain_head(model) -> torch.nn.Linear | None:
    """The model's output layer when log-probabilities may come from the final residual
    (:func:`token_logprobs`): a plain ``nn.Linear`` of a model type in :data:`PLAIN_HEADS`,
    gradients off, and no hook on the unembedding's output. None otherwise.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> with torch.no_grad():
    ...     type(plain_head(model)).__name__
    ...     with model.hooks(fwd_hooks=[("unembed.hook_out", lambda t, hook: t)]):
    ...         plain_head(model) is None
    'Linear'
    True
    """
    if torch.is_grad_enabled():
        return None
    hf = model.original_model
    if getattr(hf.config, "model_type", None) not in PLAIN_HEADS:
        return None
    if getattr(hf.config, "final_logit_softcapping", None) is not None:
        return None
    head = hf.get_output_embeddings()
    linear = getattr(head, "original_component", head)
    if type(linear) is not torch.nn.Linear:
        return None
    if set(_OUTPUT_HOOKS) & set(hooked_names(model)):
        return None
    return linear


@dataclasses.dataclass
class Unembedded:
    """What :func:`final_residual` yields: the output layer it bypasses (None: the model computes
    its logits as usual) and the inputs that layer received, one per forward, in order."""

    head: torch.nn.Linear | None
    inputs: list = dataclasses.field(default_factory=list)

    def logprobs(self, logits: Tensor, targets: Int[Tensor, " m"], rows: Int[Tensor, " m"] | None = None) -> Float[Tensor, " m"]:
        """Log-probabilities of ``targets`` at the kept positions of the next unread forward
        (``rows`` index those positions, flattened row-major; default one target per position).
        ``logits``: that forward's output (empty on the fast path, used otherwise)."""
        return self.logprobs_many([(logits, targets, rows)])[0]

    def logprobs_many(self, requests: list[tuple[Tensor, Tensor, Tensor | None]]) -> list[Float[Tensor, " m"]]:
        """:meth:`logprobs` for the next ``len(requests)`` forwards, each ``(logits, targets,
        rows)``. On the fast path their residuals share one pass over the output layer: with few
        positions per forward, reading the weight is most of the cost."""
        if self.head is None:
            out = []
            for logits, targets, rows in requests:
                lp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]).float(), dim=-1)
                rows = torch.arange(lp.shape[0], device=lp.device) if rows is None else rows.to(lp.device)
                out.append(lp[rows, targets.to(lp.device)])
            return out
        hiddens, all_rows, offset = [], [], 0
        for _, targets, rows in requests:
            hidden = self.inputs.pop(0)
            hidden = hidden.reshape(-1, hidden.shape[-1])
            rows = torch.arange(hidden.shape[0], device=hidden.device) if rows is None else rows.to(hidden.device)
            hiddens.append(hidden)
            all_rows.append(rows + offset)
            offset += hidden.shape[0]
        hidden = torch.cat(hiddens)
        chunk = VOCAB_CHUNK_CPU if hidden.device.type == "cpu" else VOCAB_CHUNK
        lp = token_logprobs(hidden, self.head.weight, self.head.bias, torch.cat([t for _, t, _ in requests]),
                            torch.cat(all_rows), chunk=chunk)
        return list(lp.split([t.shape[0] for _, t, _ in requests]))


@contextlib.contextmanager
def final_residual(model) -> Iterator[Unembedded]:
    """A scope in which a plain output layer (:func:`plain_head`) records its input and runs on
    no rows (the model returns empty logits); read log-probabilities with
    :meth:`Unembedded.logprobs`. Outside the fast path's conditions nothing changes."""
    out = Unembedded(plain_head(model))
    if out.head is None:
        yield out
        return

    def take(module, args):
        out.inputs.append(args[0])
        return (args[0][:0],)

    handle = out.head.register_forward_pre_hook(take)
    try:
        yield out
    finally:
        handle.remove()
