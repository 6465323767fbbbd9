"""Scoring answer options by log-probability (multiple-choice tasks, attribution metrics).

``option_logprobs(model, prompt, options)`` is the summed log-probability of each option's
tokens following the prompt. Prompt and option are tokenized *together* (as the model would
read them), and only the option's tokens are scored: the boundary is the token count of the
prompt alone. Prompts must not end with a space (SentencePiece glues a space to the next word,
so ``"Monday, " + "Tuesday"`` tokenises unlike the option alone): put the space at the start
of the option (``" Tuesday"``), and none for languages written without spaces (zh, ja, th).
If a tokenizer merges the prompt's last token with the option anyway, the boundary moves back
to the first differing token and a warning says so.

The prompt is computed once per item: a first pass runs the prompts (left padded) and keeps
their KV cache and last-position logits; a second pass runs every option on top of its prompt's
cache (right padded). Only the positions that predict an option token are unembedded, which
matters for models with large vocabularies (Gemma: 262k); when every option is a single token
the second pass is not needed and does not run. The result equals scoring each ``prompt +
option`` sequence on its own (tested). Steering hooks see the prompt pass and the option pass as
two forwards, as in cached generation: ``positions="last"`` steers the prompt's last token (the
one that predicts the option) and each option's last token. Gradients flow when grad is enabled
(attribution). Inside :func:`clas_lens.prefix.reuse_prefix` (a sweep) the blocks before the
first edited layer run once per batch for every steering condition (:mod:`clas_lens.prefix`).

``length_norm`` ("none", "tokens", "chars") divides an option's summed log-probability by its
scored token count or its character count (:func:`length_normalise`); the default, "none",
keeps the sum. Contextual calibration (subtracting the score after a content-free prompt) is
done by :func:`clas_lens.evaluation.predict` from two such scorings.

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

from clas_lens import unembed
from clas_lens.data.tasks.options import LENGTH_NORMS
from clas_lens.checks import positive_int, require_finite
from clas_lens.errors import DataValidationError
from clas_lens.prefix import reuse_steps


@dataclasses.dataclass(frozen=True)
class _Item:
    """One prompt with its options, as tokens: a shared prefix and one continuation per option.

    ``n_scored[j]`` is how many tokens at the end of continuation ``j`` belong to option ``j``
    (all of them, unless tokenization merged across the prompt/option boundary).
    """

    prefix: list[int]
    conts: list[list[int]]
    n_scored: list[int]


def _item(tokenizer, prompt: str, options: Sequence[str]) -> _Item:
    if isinstance(options, str) or len(options) == 0:
        raise DataValidationError("option_logprobs needs a non-empty list of option strings.")
    prompt_ids = tokenizer(prompt)["input_ids"]
    if len(prompt_ids) == 0:
        raise DataValidationError(
            "The prompt has no tokens and the tokenizer adds no BOS: the first option token "
            "would have nothing to be predicted from. Pass a non-empty prompt."
        )
    joints, boundaries = [], []
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
        if len(joint) - boundary <= 0:
            raise DataValidationError(f"Option {opt!r} adds no tokens after prompt {prompt[-30:]!r}.")
        joints.append(joint)
        boundaries.append(boundary)
    shared = min(boundaries)  # every option's scored tokens start at or after this position
    return _Item(
        prefix=prompt_ids[:shared],
        conts=[j[shared:] for j in joints],
        n_scored=[len(j) - b for j, b in zip(joints, boundaries)],
    )


def _score_items(model, items: Sequence[_Item]) -> Float[Tensor, " row"]:
    """Summed log-prob of every option of ``items`` (rows in item order), prefix computed once.

    Pass 1 runs each item's shared prefix (left padded) and keeps the logits of its last
    position, which score every option's first token; pass 2 runs the options of more than one
    token (right padded) on top of their item's KV cache from pass 1, unembedding only the
    positions that predict a next option token (no pass 2, and no cache, when every option is
    one token long). Equal to scoring ``prompt + option`` sequences one by one (tested), with
    each prompt computed once instead of once per option. Inside
    :func:`clas_lens.prefix.reuse_prefix` both passes form one
    :func:`~clas_lens.prefix.reuse_steps` unit: the blocks before the scope's first edited
    layer run once per batch of items, whatever the steering.
    """
    dev = next(model.parameters()).device
    pad = model.tokenizer.pad_token_id or 0
    n_items = len(items)
    p_width = max(len(it.prefix) for it in items)
    p_ids = torch.full((n_items, p_width), pad, dtype=torch.long, device=dev)
    p_mask = torch.zeros((n_items, p_width), dtype=torch.long, device=dev)
    for i, it in enumerate(items):
        p_ids[i, p_width - len(it.prefix):] = torch.tensor(it.prefix, device=dev)
        p_mask[i, p_width - len(it.prefix):] = 1
    p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
    owner = torch.tensor([i for i, it in enumerate(items) for _ in it.conts], device=dev)
    conts = [c for it in items for c in it.conts]
    n_scored = torch.tensor([n for it in items for n in it.n_scored], device=dev)
    lengths = torch.tensor([len(c) for c in conts], device=dev)
    multi = [r for r, c in enumerate(conts) if len(c) > 1]  # the rows that need pass 2
    c_width = max((len(conts[r]) for r in multi), default=1)
    c_ids = torch.full((len(multi), c_width), pad, dtype=torch.long, device=dev)
    c_mask = torch.zeros((len(multi), c_width), dtype=torch.long, device=dev)
    for j, r in enumerate(multi):
        c_ids[j, : len(conts[r])] = torch.tensor(conts[r], device=dev)
        c_mask[j, : len(conts[r])] = 1
    multi_t = torch.tensor(multi, dtype=torch.long, device=dev)
    m_owner = owner[multi_t]
    with reuse_steps(model, p_ids, p_mask, c_ids, c_mask, m_owner) as step, unembed.final_residual(model) as out:
        with step():
            if multi:
                first_logits, cache = model(
                    p_ids, attention_mask=p_mask, position_ids=p_pos, use_cache=True,
                    return_type="logits_and_cache", logits_to_keep=1,
                )
            else:
                first_logits = model(p_ids, attention_mask=p_mask, position_ids=p_pos, logits_to_keep=1)
        # token 0 of an option is predicted by its prompt's last position, token k > 0 by
        # option position k - 1; token k is scored when k >= length - n_scored.
        first_tok = torch.tensor([c[0] for c in conts], device=dev)
        wanted = [(first_logits, first_tok, owner)]  # both passes' log-probs in one go, below
        if multi:
            cache.batch_select_indices(m_owner)
            mask = torch.cat([p_mask[m_owner], c_mask], dim=1)
            c_pos = p_mask.sum(-1)[m_owner].unsqueeze(1) + torch.arange(c_width, device=dev).unsqueeze(0)
            # option position j predicts token j + 1: unembed only where that token is scored
            k = torch.arange(1, c_width + 1, device=dev).unsqueeze(0)
            m_len = lengths[multi_t].unsqueeze(1)
            keep = (k < m_len) & (k >= m_len - n_scored[multi_t].unsqueeze(1))  # [multi row, c_width]
            with step():
                logits = model(c_ids, attention_mask=mask, position_ids=c_pos, past_key_values=cache, use_cache=True,
                               logits_to_keep=keep)  # [n kept, vocab], row-major
            nxt = c_ids.roll(-1, dims=1)[keep]  # the token each kept position predicts
            wanted.append((logits, nxt, None))
        lps = out.logprobs_many(wanted)
        total = lps[0] * (n_scored >= lengths)
        if multi:
            total = total.index_add(0, multi_t[keep.nonzero()[:, 0]], lps[1])
    return total


def _batches(items: Sequence[_Item], batch_size: int) -> list[list[int]]:
    """Consecutive items packed so that each forward pass of :func:`_score_items` holds at most
    ``batch_size`` sequences: prompts (pass 1) and options of more than one token (pass 2). An
    item's options are never split (an item with more long options gets a batch of its own)."""
    batches: list[list[int]] = []
    current: list[int] = []
    n_long = 0
    for k, item in enumerate(items):
        long = sum(len(c) > 1 for c in item.conts)
        if current and (len(current) + 1 > batch_size or n_long + long > batch_size):
            batches.append(current)
            current, n_long = [], 0
        current.append(k)
        n_long += long
    if current:
        batches.append(current)
    return batches


def _score_items_full(model, items: Sequence[_Item]) -> Float[Tensor, " row"]:
    """Like :func:`_score_items` but one forward over whole ``prompt + option`` sequences
    (left padded), so every hook sees each position exactly once (attribution needs that)."""
    dev = next(model.parameters()).device
    pad = model.tokenizer.pad_token_id or 0
    seqs = [it.prefix + c for it in items for c in it.conts]
    n_sc = torch.tensor([n for it in items for n in it.n_scored], device=dev)
    width = max(len(q) for q in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long, device=dev)
    mask = torch.zeros_like(ids)
    for r, q in enumerate(seqs):
        ids[r, width - len(q):] = torch.tensor(q, device=dev)
        mask[r, width - len(q):] = 1
    keep = min(int(n_sc.max()) + 1, width)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)[:, -keep:, :]
    lp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    tok_lp = lp.gather(-1, ids[:, width - keep + 1:].unsqueeze(-1)).squeeze(-1)
    idx = torch.arange(keep - 1, device=dev).unsqueeze(0)
    return (tok_lp * (idx >= (keep - 1 - n_sc).unsqueeze(1))).sum(dim=-1)


def option_logprobs(
    model, prompt: str, options: Sequence[str], *, share_prefix: bool = True
) -> Float[Tensor, " option"]:
    """Summed log-probability of each option's tokens after ``prompt``.

    Differentiable when grad is enabled. ``share_prefix=False`` runs whole ``prompt + option``
    sequences in one forward instead of prompt and options in two (same numbers; use it when
    hooks must see every position in a single forward, as attribution does).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> with torch.no_grad():
    ...     lp = option_logprobs(model, "The cat sat on the", [" mat", " dog", " hat"])
    >>> int(lp.argmax()) in (0, 1, 2)
    True
    """
    score = _score_items if share_prefix else _score_items_full
    out = score(model, [_item(model.tokenizer, prompt, options)])
    return require_finite(out, "option_logprobs: the option log-probabilities")  # NaN would be argmax-ed silently


def option_token_counts(tokenizer, prompt: str, options: Sequence[str]) -> list[int]:
    """How many tokens of each option :func:`option_logprobs` scores after ``prompt``.

    >>> from clas_lens.testing import tiny_model
    >>> option_token_counts(tiny_model("llama").tokenizer, "One, two,", [" three", " 1 2 3"])
    [2, 3]
    """
    return list(_item(tokenizer, prompt, options).n_scored)


def length_normalise(
    scores: Tensor, options: Sequence[str], length_norm: str = "none", token_counts: Sequence[int] | None = None
) -> Tensor:
    """Summed option log-probs divided by each option's length: ``"none"`` (unchanged),
    ``"tokens"`` (its scored token count, ``token_counts``) or ``"chars"`` (``len(option)``,
    the leading space included).

    >>> length_normalise(torch.tensor([-4.0, -6.0]), [" ab", " abcde"], "chars").tolist()
    [-1.3333333730697632, -1.0]
    """
    if length_norm == "none":
        return scores
    if length_norm == "tokens":
        if token_counts is None:
            raise ValueError("length_norm='tokens' needs token_counts (see option_token_counts).")
        lengths = torch.tensor([float(n) for n in token_counts], dtype=scores.dtype)
    elif length_norm == "chars":
        lengths = torch.tensor([float(len(o)) for o in options], dtype=scores.dtype)
    else:
        raise ValueError(f"length_norm={length_norm!r}: choose from {list(LENGTH_NORMS)}.")
    return scores / lengths.to(scores.device)


@torch.no_grad()
def score_choices(
    model,
    items: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 32,
    progress: bool | None = None,
    length_norm: str = "none",
) -> list[Float[Tensor, " option"]]:
    """``option_logprobs`` for many ``(prompt, options)`` items, without grad.

    Consecutive items are packed into batches of at most ``batch_size`` prompts, whose options
    of more than one token number at most ``batch_size`` too (the sequences of the two forward
    passes; an item's options are never split). Returns one CPU float tensor per item, divided by each option's length when ``length_norm`` is ``"tokens"`` or ``"chars"``
    (:func:`length_normalise`).

    >>> from clas_lens.testing import tiny_model
    >>> out = score_choices(tiny_model("llama"), [("Hello", [" world", " there"]), ("One, two,", [" three"])])
    >>> [tuple(t.shape) for t in out]
    [(2,), (1,)]
    """
    positive_int(batch_size, "batch_size")
    per_item = [_item(model.tokenizer, prompt, options) for prompt, options in items]
    batches = _batches(per_item, batch_size)
    from tqdm.auto import tqdm

    show = progress if progress is not None else len(batches) >= 8
    results: list[Tensor] = [torch.empty(0)] * len(per_item)
    for batch in tqdm(batches, desc="score", disable=not show, leave=False):
        scores = _score_items(model, [per_item[k] for k in batch]).float().cpu()
        require_finite(scores, "score_choices: the option log-probabilities")
        start = 0
        for k in batch:
            n = len(per_item[k].conts)
            results[k] = length_normalise(scores[start : start + n], items[k][1], length_norm, per_item[k].n_scored)
            start += n
    return results
