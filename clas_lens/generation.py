"""Greedy generation through the bridge, so that hooks (steering) act at every step.

Prompts are left-padded into one batch. Two paths give the same tokens as Hugging Face greedy
decoding (``do_sample=False``), checked token for token in the tests:

* ``use_cache=False`` recomputes the whole sequence at every step and only unembeds the last
  position (``logits_to_keep=1``), so the 262k-token unembedding of Gemma is paid once per step.
* ``use_cache=True`` feeds the Hugging Face KV cache back through ``bridge.forward`` with
  explicit positions and the full attention mask; only the new token runs through the blocks.
  Inside :func:`clas_lens.prefix.reuse_prefix` (a sweep) the prompt pass replays the blocks
  before the first edited layer, with the KV cache they wrote, from an earlier condition's
  prompt pass on the same prompts; the tokens are the same as without it.

Each row ends on its own: at any end-of-sequence id of the model (:func:`eos_token_ids`: every
id of its generation config, which may be a list, as HF ``generate`` does), at a ``stop_ids``
token, or once its continuation contains one of the ``stop_strings``. A finished row stops
growing while the others continue; the loop ends when every row has finished.

The bridge's own ``generate`` with its KV cache diverges from HF greedy in TransformerLens
4.3.0 (the cache is never filled, see :mod:`clas_lens._compat` and docs/architecture.md,
"Upstream workarounds"), which is why clas_lens has its own loop.
"""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
from einops import rearrange

from clas_lens._compat import patch_bridge_kv_cache
from clas_lens.batching import encode
from clas_lens.checks import positive_int, require_finite
from clas_lens.prefix import reuse_steps

patch_bridge_kv_cache()

__all__ = ["eos_token_ids", "generate_tokens", "generate", "cut_at_stop"]


def _positions(mask: torch.Tensor) -> torch.Tensor:
    pos = mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [int(v) for v in value if v is not None]
    return [int(value)]


def eos_token_ids(model) -> list[int]:
    """Every end-of-sequence id of ``model``, sorted: those of its HF generation config (an int
    or a list, e.g. Llama-3 instruct models end on three ids), else of its HF config, else the
    tokenizer's -- the ids HF ``generate`` stops at.

    >>> from clas_lens.testing import tiny_model
    >>> eos_token_ids(tiny_model("llama"))
    [2]
    """
    hf = getattr(model, "original_model", None)
    for source in (getattr(hf, "generation_config", None), getattr(hf, "config", None)):
        ids = _ids(getattr(source, "eos_token_id", None))
        if ids:
            return sorted(set(ids))
    tok = getattr(model, "tokenizer", None)
    return _ids(getattr(tok, "eos_token_id", None))


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any of ``stops`` (all of it when none occurs).

    >>> cut_at_stop("Paris.\\nQuestion: ...", ["\\n", "."])
    'Paris'
    """
    ends = [k for k in (text.find(s) for s in stops if s) if k >= 0]
    return text[: min(ends)] if ends else text


@torch.no_grad()
def generate_tokens(
    model,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    use_cache: bool = True,
    stop_ids: Sequence[int] | None = None,
    stop_strings: Sequence[str] | str | None = None,
) -> list[list[int]]:
    """Greedy new token ids for each prompt.

    A row ends at an end-of-sequence id (:func:`eos_token_ids`) or a ``stop_ids`` token (neither
    is included), or with the token that makes its decoded continuation contain one of
    ``stop_strings`` (that token is included: cut the text with :func:`cut_at_stop`). Finished
    rows stop growing; the others continue.

    >>> from clas_lens.testing import tiny_model
    >>> rows = generate_tokens(tiny_model("llama"), ["the cat", "1 2 3"], 3)
    >>> len(rows), all(len(r) <= 3 for r in rows)
    (2, True)
    """
    positive_int(max_new_tokens, "max_new_tokens")
    enc = encode(model, list(prompts), padding_side="left")
    ids, mask = enc.input_ids, enc.attention_mask
    enders = set(_ids(list(stop_ids or []))) | set(eos_token_ids(model))
    stops = [stop_strings] if isinstance(stop_strings, str) else [s for s in (stop_strings or []) if s]
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    cache = None
    step_ids = ids
    # Inside clas_lens.prefix.reuse_prefix the prompt pass replays the unsteered blocks (and the
    # KV cache they wrote) stored by an earlier condition; the decode steps run every block.
    unit = reuse_steps(model, ids, mask, keep_cache=True) if use_cache else contextlib.nullcontext(None)
    with unit as prompt_step:
        for step in range(max_new_tokens):
            if use_cache:
                pos = _positions(mask)[:, -step_ids.shape[1]:]
                with prompt_step() if step == 0 else contextlib.nullcontext():
                    logits, cache = model(
                        step_ids,
                        attention_mask=mask,
                        position_ids=pos,
                        past_key_values=cache,
                        use_cache=True,
                        return_type="logits_and_cache",
                        logits_to_keep=1,
                    )
            else:
                logits = model(ids, attention_mask=mask, position_ids=_positions(mask), logits_to_keep=1)
            live = [i for i, d in enumerate(done) if not d]
            require_finite(logits[live, -1, :], "generate: the next-token logits")  # argmax of NaN would pick token 0
            nxt = logits[:, -1, :].argmax(dim=-1)
            for i, t in enumerate(nxt.tolist()):
                if done[i]:
                    continue
                if t in enders:
                    done[i] = True
                    continue
                out[i].append(t)
                if stops:
                    text = model.tokenizer.decode(out[i], skip_special_tokens=True)
                    done[i] = any(s in text for s in stops)
            if all(done):
                break
            step_ids = rearrange(nxt, "batch -> batch 1")
            ids = torch.cat([ids, step_ids], dim=1)
            mask = torch.cat([mask, torch.ones_like(step_ids, dtype=mask.dtype)], dim=1)
    return out


def generate(
    model,
    prompts: Sequence[str] | str,
    max_new_tokens: int = 32,
    *,
    stop: Sequence[str] | str | None = None,
    use_cache: bool = True,
    batch_size: int = 16,
    progress: bool | None = None,
) -> list[str]:
    """Greedy continuations of ``prompts`` (the new text only), batched with left padding.

    Hooks active on the model (``with clas_lens.steer(model, ...)`` or ``model.hooks(...)``)
    apply at every step. A row stops growing once its continuation contains one of the ``stop``
    strings (e.g. ``stop="\\n"`` for extractive QA) and is cut at the first one; an
    end-of-sequence id of the model (:func:`eos_token_ids`) ends a row too. ``progress``: a bar
    on stderr (default: when there are 4 batches or more).

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> outs = generate(model, ["the cat", "Привет"], max_new_tokens=4)
    >>> len(outs), all(isinstance(o, str) for o in outs)
    (2, True)
    """
    from tqdm.auto import tqdm

    positive_int(max_new_tokens, "max_new_tokens")
    positive_int(batch_size, "batch_size")
    if isinstance(prompts, str):
        prompts = [prompts]
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
    results: list[str] = []
    chunks = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    show = len(chunks) >= 4 if progress is None else progress
    for chunk in tqdm(chunks, desc="generate", disable=not show, leave=False):
        toks = generate_tokens(model, chunk, max_new_tokens, use_cache=use_cache, stop_strings=stops)
        for row in toks:
            results.append(cut_at_stop(model.tokenizer.decode(row, skip_special_tokens=True), stops))
    return results
