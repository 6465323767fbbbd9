"""Scoring answer options by log-probability (multiple-choice tasks, attribution metrics).

``option_logprobs(model, prompt, options)`` is the summed log-probability of each option's
tokens following the prompt. Prompt and option are tokenized *together* (as the model would
read them), and only the option's tokens are scored: the boundary is the token count of the
prompt alone. Prompts must not end with a space (SentencePiece glues a space to the next word,
so ``"Monday, " + "Tuesday"`` tokenises unlike the option alone): put the space at the start
of the option (``" Tuesday"``), and none for languages written without spaces (zh, ja, th).
If a tokenizer merges the prompt's last token with the option anyway, the boundary moves back
to the first differing token and a warning says so.

All options of a prompt run in one left-padded batch. Only the logits of the last positions
(the option tokens) are unembedded (``logits_to_keep``), which matters for models with large
vocabularies (Gemma: 262k). Gradients flow when grad is enabled (attribution uses that).

>>> from clas_lens.testing import tiny_model
>>> lp = option_logprobs(tiny_model("llama"), "Monday, Tuesday,", [" Wednesday", " Friday"])
>>> lp.shape, bool((lp < 0).all())
(torch.Size([2]), True)
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError


@dataclasses.dataclass(frozen=True)
class _Row:
    text: str
    n_option_tokens: int  # tokens at the end of the joint tokenization that are scored


def _prompt_len(tokenizer, prompt: str) -> int:
    return len(tokenizer(prompt)["input_ids"])


def _rows(tokenizer, prompt: str, options: Sequence[str]) -> list[_Row]:
    if isinstance(options, str) or len(options) == 0:
        raise DataValidationError("option_logprobs needs a non-empty list of option strings.")
    prompt_ids = tokenizer(prompt)["input_ids"]
    if len(prompt_ids) == 0:
        raise DataValidationError(
            "The prompt has no tokens and the tokenizer adds no BOS: the first option token "
            "would have nothing to be predicted from. Pass a non-empty prompt."
        )
    rows = []
    for opt in options:
        if not isinstance(opt, str) or opt == "":
            raise DataValidationError(f"Options must be non-empty strings; got {opt!r}.")
        joint = tokenizer(prompt + opt)["input_ids"]
        boundary = len(prompt_ids)
        if joint[:boundary] != prompt_ids:
            k = 0
            while k < min(len(joint), len(prompt_ids)) and joint[k] == prompt_ids[k]:
                k += 1
            warnings.warn(
                f"Tokenizing prompt + option {opt!r} merged tokens across the boundary; scoring "
                f"from the first differing token ({len(prompt_ids) - k} prompt token(s) included). "
                "End prompts without a trailing space and start options with their space.",
                stacklevel=3,
            )
            boundary = max(k, 1)
        n_opt = len(joint) - boundary
        if n_opt <= 0:
            raise DataValidationError(f"Option {opt!r} adds no tokens after prompt {prompt[-30:]!r}.")
        rows.append(_Row(prompt + opt, n_opt))
    return rows


def _score_rows(model, rows: Sequence[_Row]) -> Float[Tensor, " row"]:
    """Summed log-prob of each row's last ``n_option_tokens`` tokens (one batch, left padded)."""
    enc = encode(model, [r.text for r in rows], padding_side="left", truncation="error")
    ids, mask = enc.input_ids, enc.attention_mask
    width = ids.shape[1]
    n_opt = torch.tensor([r.n_option_tokens for r in rows], device=ids.device)
    keep = min(int(n_opt.max()) + 1, width)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)
    logits = logits[:, -keep:, :]
    # Predictions for the tokens at positions width-keep+1 .. width-1.
    logp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    targets = ids[:, width - keep + 1 :]
    tok_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [row, keep-1]
    # Only the last n_opt target positions of each row belong to the option.
    idx = torch.arange(keep - 1, device=ids.device)
    scored = idx.unsqueeze(0) >= (keep - 1 - n_opt).unsqueeze(1)
    return (tok_lp * scored).sum(dim=-1)


def option_logprobs(model, prompt: str, options: Sequence[str]) -> Float[Tensor, " option"]:
    """Summed log-probability of each option's tokens after ``prompt``, in one padded batch.

    Differentiable when grad is enabled.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> with torch.no_grad():
    ...     lp = option_logprobs(model, "The cat sat on the", [" mat", " dog", " hat"])
    >>> int(lp.argmax()) in (0, 1, 2)
    True
    """
    return _score_rows(model, _rows(model.tokenizer, prompt, options))


@torch.no_grad()
def score_choices(
    model,
    items: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 32,
    progress: bool | None = None,
) -> list[Float[Tensor, " option"]]:
    """``option_logprobs`` for many ``(prompt, options)`` items, without grad.

    Rows (one per option) of consecutive items are packed into batches of at most
    ``batch_size`` rows (an item's options are never split). Returns one CPU float tensor per
    item.

    >>> from clas_lens.testing import tiny_model
    >>> out = score_choices(tiny_model("llama"), [("Hello", [" world", " there"]), ("One, two,", [" three"])])
    >>> [tuple(t.shape) for t in out]
    [(2,), (1,)]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    tok = model.tokenizer
    per_item = [_rows(tok, prompt, options) for prompt, options in items]
    batches: list[list[int]] = []
    current: list[int] = []
    n_rows = 0
    for k, rows in enumerate(per_item):
        if current and n_rows + len(rows) > batch_size:
            batches.append(current)
            current, n_rows = [], 0
        current.append(k)
        n_rows += len(rows)
    if current:
        batches.append(current)
    from tqdm.auto import tqdm

    show = progress if progress is not None else len(batches) >= 8
    results: list[Tensor] = [torch.empty(0)] * len(per_item)
    for batch in tqdm(batches, desc="score", disable=not show, leave=False):
        flat = [row for k in batch for row in per_item[k]]
        scores = _score_rows(model, flat).float().cpu()
        start = 0
        for k in batch:
            n = len(per_item[k])
            results[k] = scores[start : start + n]
            start += n
    return results
