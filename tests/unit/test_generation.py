"""Greedy generation equals Hugging Face greedy decoding token for token."""
from __future__ import annotations

import pytest
import torch

from clas_lens.generation import cut_at_stop, eos_token_ids, generate, generate_tokens
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


# -- stop strings per row and every EOS id of the generation config -----------------------------
def _until(ids, enders):
    for k, t in enumerate(ids):
        if t in enders:
            return ids[:k]
    return ids


def _hf_rows(ref, tok, prompts, n, **kwargs):
    enders = set(eos_token_ids_of(ref))
    rows = []
    for prompt in prompts:
        enc = tok([prompt], return_tensors="pt")
        out = ref.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id, **kwargs)
        rows.append(_until(out[0, enc.input_ids.shape[1]:].tolist(), enders))
    return rows


def eos_token_ids_of(ref):
    eos = ref.generation_config.eos_token_id
    return eos if isinstance(eos, list) else [eos]


def _stop_string_for(model, rows):
    """An ASCII string one greedy token decodes to that some rows' continuations contain, not all."""
    texts = [model.tokenizer.decode(r, skip_special_tokens=True) for r in rows]
    for row in rows:
        for t in row[1:]:
            s = model.tokenizer.decode([t], skip_special_tokens=True)
            if s.strip() and s.isascii() and s.isprintable() and 0 < sum(s in x for x in texts) < len(texts):
                return s
    pytest.skip("no usable stop string in these greedy continuations")


@pytest.mark.parametrize("use_cache", [True, False])
def test_stop_strings_end_each_row_on_its_own_like_hf(tiny, use_cache):
    n = 12
    full = generate_tokens(tiny, PROMPTS, n, use_cache=use_cache)
    stop = _stop_string_for(tiny, full)
    got = generate_tokens(tiny, PROMPTS, n, use_cache=use_cache, stop_strings=[stop])
    decode = lambda r: tiny.tokenizer.decode(r, skip_special_tokens=True)  # noqa: E731
    stopped = 0
    for g, f in zip(got, full):
        if stop in decode(f):
            stopped += 1
            assert f[: len(g)] == g and len(g) <= len(f)        # a prefix of the unstopped row ...
            assert stop in decode(g) and stop not in decode(g[:-1])  # ... ending with the token that completed the stop
        else:
            assert g == f                                       # the other rows continue unchanged
    assert 0 < stopped < len(PROMPTS)
    ref = hf_reference(tiny)
    assert got == _hf_rows(ref, tiny.tokenizer, PROMPTS, n, stop_strings=[stop], tokenizer=tiny.tokenizer)
    # generate() cuts each text at the stop string and keeps the rest
    texts = generate(tiny, PROMPTS, n, stop=stop, use_cache=use_cache)
    assert texts == [decode(g).split(stop)[0] for g in got]


def test_every_eos_id_of_the_generation_config_ends_a_row(tiny, monkeypatch):
    n = 10
    full = generate_tokens(tiny, PROMPTS, n)
    row = next(r for r in full if len(r) >= 4 and r[3] not in r[:3])
    extra = row[3]
    ref = hf_reference(tiny)
    monkeypatch.setattr(tiny.original_model.generation_config, "eos_token_id", [ref.generation_config.eos_token_id, extra])
    monkeypatch.setattr(ref.generation_config, "eos_token_id", [ref.generation_config.eos_token_id, extra])
    assert eos_token_ids(tiny) == sorted({2, extra})
    for use_cache in (True, False):
        got = generate_tokens(tiny, PROMPTS, n, use_cache=use_cache)
        assert got == [_until(f, {extra}) for f in full]
        assert row[:3] in got
    assert got == _hf_rows(ref, tiny.tokenizer, PROMPTS, n)


def test_cut_at_stop_takes_the_earliest_stop():
    assert cut_at_stop("a.b\nc", ["\n", "."]) == "a" and cut_at_stop("abc", ["x"]) == "abc"
    assert cut_at_stop("abc", []) == "abc" and cut_at_stop("abc", [""]) == "abc"
