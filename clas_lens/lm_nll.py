"""Per-sentence language-model negative log-likelihood: :func:`sentence_nll`.

The NLL of a text is ``-log p(x_t | x_<t)`` summed over its target tokens, in nats; by default
divided by their number (nats per token). Targets are every token of the text but the first
one, which is context only: with the tokenizers of the supported models that first token is the
BOS token the tokenizer prepends, so every word of the text is scored. Padding is never a
target and never context (it is masked out of attention and positions are counted over real
tokens only, so left and right padding give the same numbers). The forward goes through the
bridge, so steering installed with ``clas_lens.steer`` acts on it; only the positions that
predict a target are unembedded (:func:`clas_lens.prefix.forward_at`, which also replays the
unsteered blocks inside a sweep's :func:`~clas_lens.prefix.reuse_prefix` scope), in vocabulary
chunks where the model allows it (:mod:`clas_lens.unembed`). Used by
:mod:`clas_lens.positive_control`. See docs/methods.md, "Evaluation".

>>> import torch
>>> from clas_lens.testing import tiny_model
>>> nll = sentence_nll(tiny_model("llama"), ["the cat sat", "a dog"])
>>> nll.shape, nll.dtype, bool((nll > 0).all())
(torch.Size([2]), torch.float64, True)
"""
from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Bool, Float64
from torch import Tensor

from clas_lens import unembed
from clas_lens.batching import Encoded, batched, encode
from clas_lens.checks import positive_int, require_finite
from clas_lens.prefix import forward_at

__all__ = ["sentence_nll", "target_mask", "REDUCTIONS"]

#: What :func:`sentence_nll` returns per text: mean over target tokens or their sum.
REDUCTIONS: tuple[str, ...] = ("mean", "sum")


def target_mask(enc: Encoded) -> Bool[Tensor, "batch pos"]:
    """Positions whose token is scored: attended and preceded by an attended token.

    Position ``t`` of the mask says that token ``t`` is a target (predicted from position
    ``t - 1``); the first attended token of a row never is.

    >>> import torch
    >>> enc = Encoded(torch.zeros(2, 4, dtype=torch.long), torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]]),
    ...               torch.zeros(2, 4, dtype=torch.bool))
    >>> target_mask(enc).int().tolist()
    [[0, 1, 1, 0], [0, 0, 1, 1]]
    """
    att = enc.attention_mask.bool()
    out = torch.zeros_like(att)
    out[:, 1:] = att[:, 1:] & att[:, :-1]
    return out


def sentence_nll(
    model,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    padding_side: str = "right",
    truncation: str = "warn",
    reduction: str = "mean",
) -> Float64[Tensor, " text"]:
    """Negative log-likelihood of each text under ``model`` (nats per token by default).

    Args:
        model: a TransformerBridge (steered if called inside ``clas_lens.steer``).
        texts: the texts, scored independently (each from its own first token).
        batch_size: texts per forward pass (longest first, to limit padding). A plain-head
            model (:func:`clas_lens.unembed.plain_head`) holds one vocabulary chunk of logits
            at a time; otherwise the logits of a batch's targets (``targets x vocab``) are held
            at once: lower it for large vocabularies.
        max_length: cut texts to this many tokens (default and maximum: the model context).
        padding_side: ``"right"`` or ``"left"``; the result does not depend on it.
        truncation: ``"warn"`` (cut over-long texts) or ``"error"``.
        reduction: ``"mean"`` (nats per target token; NaN for a text with no target token,
            e.g. an empty one) or ``"sum"`` (total nats; 0 for such a text).

    Returns:
        float64 tensor, one value per text, on the CPU, in the order of ``texts``.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> a = sentence_nll(model, ["one two three", "four"], padding_side="left")
    >>> b = sentence_nll(model, ["one two three", "four"], padding_side="right", batch_size=1)
    >>> bool(torch.allclose(a, b, atol=1e-5))
    True
    >>> sentence_nll(model, [""]).isnan().tolist()  # BOS only: nothing to score
    [True]
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: use one of {list(REDUCTIONS)}.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side={padding_side!r}: use 'left' or 'right'.")
    positive_int(batch_size, "batch_size")
    positive_int(max_length, "max_length", none_ok=True)
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    total = torch.zeros(len(texts), dtype=torch.float64)
    count = torch.zeros(len(texts), dtype=torch.float64)
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    for idx in batched(order, batch_size):
        enc = encode(
            model, [texts[i] for i in idx], padding_side=padding_side, max_length=max_length,
            truncation=truncation,
        )
        att = enc.attention_mask
        pos = (att.long().cumsum(-1) - 1).clamp(min=0)
        tgt = target_mask(enc)
        if not bool(tgt.any()):
            continue
        # position t - 1 predicts target t: unembed exactly those positions, no padding
        pred = torch.zeros_like(tgt)
        pred[:, :-1] = tgt[:, 1:]
        tok = enc.input_ids[tgt]  # row-major, as the predicting positions
        with torch.no_grad(), unembed.final_residual(model) as out:
            logits = forward_at(model, enc.input_ids, att, pred, position_ids=pos)  # [n_targets, vocab] or empty
            nll = -out.logprobs(logits, tok).double().cpu()
        row_of = tgt.nonzero()[:, 0].cpu()
        bad = ~torch.isfinite(nll)
        if bool(bad.any()):
            r = int(row_of[bad][0])
            require_finite(nll[row_of == r], f"sentence_nll: the token log-likelihoods of text {idx[r]}")
        sums = torch.zeros(len(idx), dtype=torch.float64).index_add_(0, row_of, nll)
        counts = tgt.sum(-1).double().cpu()
        for row, i in enumerate(idx):
            total[i] = sums[row]
            count[i] = counts[row]
    if reduction == "sum":
        return total
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
