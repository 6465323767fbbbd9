"""Turning texts into padded token batches the same way everywhere.

:func:`encode` tokenizes with the model's own tokenizer (which prepends BOS where the model
expects one), pads to the longest text on the requested side and returns, besides
``input_ids`` and ``attention_mask``, a ``real_mask`` of the positions that statistics and
pooled representations use: real tokens, without padding and (unless ``keep_bos``) without the
BOS token. ``last_index`` is the position of each row's last real token under either padding.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Iterator, Literal, Sequence

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from clas_lens.errors import ContextLengthError, DataValidationError


@dataclasses.dataclass
class Encoded:
    """A padded batch. ``real_mask`` excludes padding and (by default) BOS."""

    input_ids: Int[Tensor, "batch pos"]
    attention_mask: Int[Tensor, "batch pos"]
    real_mask: Bool[Tensor, "batch pos"]
    n_truncated: int = 0

    @property
    def last_index(self) -> Int[Tensor, " batch"]:
        """Index of each row's last attended token (works for left and right padding)."""
        pos = torch.arange(self.attention_mask.shape[1], device=self.attention_mask.device)
        return (self.attention_mask.bool() * (pos + 1)).argmax(dim=1)

    def to(self, device) -> "Encoded":
        return dataclasses.replace(
            self,
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            real_mask=self.real_mask.to(device),
        )


def context_length(model) -> int:
    """The longest sequence the model accepts (``cfg.n_ctx``)."""
    return int(getattr(model.cfg, "n_ctx", None) or 2048)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def encode(
    model,
    texts: Sequence[str],
    *,
    padding_side: Literal["left", "right"] = "right",
    max_length: int | None = None,
    truncation: Literal["warn", "error"] = "warn",
    keep_bos: bool = False,
    add_special_tokens: bool = True,
) -> Encoded:
    """Tokenize ``texts`` into one padded batch on the model's device.

    Texts longer than ``max_length`` (default: the model context) are cut to it with a
    warning that counts them (``truncation="warn"``) or refused (``truncation="error"``).

    >>> from clas_lens.testing import tiny_model
    >>> enc = encode(tiny_model("llama"), ["a cat", "the cat sat"], padding_side="left")
    >>> enc.input_ids.shape[0], bool(enc.real_mask[:, -1].all())
    (2, True)
    """
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise DataValidationError("encode() got no texts: pass at least one string.")
    tok = model.tokenizer
    limit = min(max_length or context_length(model), context_length(model))
    raw = tok(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    too_long = [i for i, ids in enumerate(raw) if len(ids) > limit]
    if too_long:
        if truncation == "error":
            raise ContextLengthError(
                f"{len(too_long)} text(s) are longer than {limit} tokens (first: item {too_long[0]}, "
                f"{len(raw[too_long[0]])} tokens). Shorten them, raise max_length up to the "
                f"model context ({context_length(model)}), or pass truncation='warn' to cut them."
            )
        warnings.warn(
            f"Truncated {len(too_long)} of {len(raw)} text(s) to {limit} tokens "
            "(pass truncation='error' to refuse instead).",
            stacklevel=2,
        )
        raw = [ids[:limit] for ids in raw]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    width = max(len(ids) for ids in raw)
    ids_t = torch.full((len(raw), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(raw), width), dtype=torch.long)
    real = torch.zeros((len(raw), width), dtype=torch.bool)
    bos = tok.bos_token_id
    for i, ids in enumerate(raw):
        n = len(ids)
        sl = slice(width - n, width) if padding_side == "left" else slice(0, n)
        ids_t[i, sl] = torch.tensor(ids, dtype=torch.long)
        attn[i, sl] = 1
        real[i, sl] = True
        if not keep_bos and add_special_tokens and n > 0 and bos is not None and ids[0] == bos:
            real[i, sl.start] = False
    dev = model_device(model)
    return Encoded(ids_t.to(dev), attn.to(dev), real.to(dev), n_truncated=len(too_long))


def batched(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    """Consecutive chunks of ``items`` of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]
