"""Greedy generation equals Hugging Face greedy decoding token for token."""
from __future__ import annotations

import pytest
import torch

from clas_lens.generation import generate, generate_tokens
from clas_lens.sites import neuron_sites
from clas_lens.testing import hf_reference

PROMPTS = ["the cat", "Привет мир, как", "1 2 3 4 5", "Monday Tuesday", "你好"]


def _hf_greedy(ref, tok, prompt, n):
    enc = tok([prompt], return_tensors="pt")
    out = ref.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id)
    new = out[0, enc.input_ids.shape[1]:].tolist()
    return new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new


@pytest.mark.parametrize("use_cache", [False, True])
def test_generation_equals_hf_greedy(tiny, use_cache):
    ref = hf_reference(tiny)
    got = generate_tokens(tiny, PROMPTS, 10, use_cache=use_cache)
    for prompt, g in zip(PROMPTS, got):
        assert g == _hf_greedy(ref, tiny.tokenizer, prompt, 10), prompt


def test_generate_returns_continuations_and_applies_stop(tiny_llama):
    outs = generate(tiny_llama, PROMPTS, 8)
    assert len(outs) == len(PROMPTS)
    toks = generate_tokens(tiny_llama, PROMPTS[:1], 8)[0]
    full = tiny_llama.tokenizer.decode(toks, skip_special_tokens=True)
    assert outs[0] == full
    if full:
        cut = full[len(full) // 2]
        assert cut not in generate(tiny_llama, PROMPTS[:1], 8, stop=cut)[0]


def test_hooks_apply_at_every_step(tiny_llama):
    sites = neuron_sites(tiny_llama)
    calls = []
    hooks = sites.read_hooks("post", 0, lambda v: calls.append(v.shape[1]))
    with tiny_llama.hooks(fwd_hooks=hooks):
        generate_tokens(tiny_llama, ["the cat"], 5, use_cache=True)
    # one call for the prompt, then one per new token (1 position each) unless EOS came first
    assert len(calls) >= 2 and all(c == 1 for c in calls[1:])


def test_steering_hook_changes_generation(tiny_llama):
    sites = neuron_sites(tiny_llama)
    base = generate_tokens(tiny_llama, PROMPTS, 6)
    hooks = [h for l in range(2) for h in sites.edit_hooks("post", l, lambda v: v * 0)]
    with tiny_llama.hooks(fwd_hooks=hooks):
        cached = generate_tokens(tiny_llama, PROMPTS, 6, use_cache=True)
        uncached = generate_tokens(tiny_llama, PROMPTS, 6, use_cache=False)
    assert cached == uncached
    assert cached != base
