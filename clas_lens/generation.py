"""Greedy generation through the bridge, so that hooks (steering) act at every step.

Prompts are left-padded into one batch. Two paths give the same tokens as Hugging Face greedy
decoding (``do_sample=False``), checked token for token in the tests:

* ``use_cache=False`` recomputes the whole sequence at every step and only unembeds the last
  position (``logits_to_keep=1``), so the 262k-token unembedding of Gemma is paid once per step.
* ``use_cache=True`` feeds the Hugging Face KV cache back through ``bridge.forward`` with
  explicit positions and the full attention mask; only the new token runs through the blocks.

The bridge's own ``generate`` with its KV cache diverges from HF greedy in TransformerLens
4.3.0 (the cache is never filled, see :mod:`clas_lens._compat` and docs/architecture.md,
"Upstream workarounds"), which is why clas_lens has its own loop.
"""
from __future__ import annotations

from typing import Sequence

import torch
from einops import rearrange

from clas_lens._compat import patch_bridge_kv_cache
from clas_lens.batching import encode

patch_bridge_kv_cache()


def _positions(mask: torch.Tensor) -> torch.Tensor:
    pos = mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


@torch.no_grad()
def generate_tokens(
    model,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    use_cache: bool = True,
    stop_ids: Sequence[int] | None = None,
) -> list[list[int]]:
    """Greedy new token ids for each prompt (EOS and ``stop_ids`` end a row, not included)."""
    enc = encode(model, list(prompts), padding_side="left")
    ids, mask = enc.input_ids, enc.attention_mask
    eos = model.tokenizer.eos_token_id
    enders = set(stop_ids or []) | ({eos} if eos is not None else set())
    out: list[list[int]] = [[] for _ in prompts]
    done = torch.zeros(len(prompts), dtype=torch.bool, device=ids.device)
    cache = None
    step_ids = ids
    for step in range(max_new_tokens):
        if use_cache:
            pos = _positions(mask)[:, -step_ids.shape[1]:]
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
            logits = model(
                ids, attention_mask=mask, position_ids=_positions(mask), logits_to_keep=1
            )
        nxt = logits[:, -1, :].argmax(dim=-1)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                if t in enders:
                    done[i] = True
                else:
                    out[i].append(t)
        if bool(done.all()):
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
) -> list[str]:
    """Greedy continuations of ``prompts`` (the new text only), batched with left padding.

    Hooks active on the model (``with clas_lens.steer(model, ...)`` or ``model.hooks(...)``)
    apply at every step. ``stop`` strings cut the continuation at their first occurrence
    (e.g. ``stop="\\n"`` for extractive QA); EOS always ends a row.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> outs = generate(model, ["the cat", "Привет"], max_new_tokens=4)
    >>> len(outs), all(isinstance(o, str) for o in outs)
    (2, True)
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    results: list[str] = []
    from tqdm.auto import tqdm

    chunks = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]
    for chunk in tqdm(chunks, desc="generate", disable=len(chunks) < 4, leave=False):
        toks = generate_tokens(model, chunk, max_new_tokens, use_cache=use_cache)
        for row in toks:
            text = model.tokenizer.decode(row, skip_special_tokens=True)
            for s in stops:
                k = text.find(s)
                if k >= 0:
                    text = text[:k]
            results.append(text)
    return results
