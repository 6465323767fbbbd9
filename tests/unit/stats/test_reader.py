"""clas_lens.stats.reader: the forward reader stops after the last needed layer; batching order."""
from __future__ import annotations

import torch

from clas_lens.batching import encode
from clas_lens.sites import neuron_sites
from clas_lens.stats import layer_read_hooks, read_forward, sentence_batches


def _counting(model):
    calls = []
    handle = model.unembed.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def test_stops_before_unembedding_even_after_the_last_block(tiny_llama):
    enc = encode(tiny_llama, ["the cat sat", "a dog"])
    seen = []
    hooks = [(f"blocks.{l}.hook_resid_post", lambda t, hook, l=l: seen.append(l) or t) for l in (0, 1)]
    calls, handle = _counting(tiny_llama)
    try:
        assert read_forward(tiny_llama, enc, hooks, stop_after_layer=1) is None
        assert seen == [0, 1]
        seen.clear()
        assert read_forward(tiny_llama, enc, hooks, stop_after_layer=0) is None
        assert seen == [0]
        assert calls == []
        out = read_forward(tiny_llama, enc, [])
        assert calls == [1] and out.shape[:2] == enc.input_ids.shape
    finally:
        handle.remove()


def test_stop_hook_runs_after_the_callers_hook_on_the_same_point(tiny):
    sites = neuron_sites(tiny)
    enc = encode(tiny, ["one two three"])
    got = {}
    hooks = layer_read_hooks(sites, "act", [0, sites.n_layers - 1], lambda l, v: got.__setitem__(l, v.shape))
    read_forward(tiny, enc, hooks, stop_after_layer=sites.n_layers - 1)
    assert sorted(got) == [0, sites.n_layers - 1]
    assert all(s[-1] == sites.d_mlp for s in got.values())
    assert torch.is_grad_enabled()  # no_grad only inside the reader


def test_sentence_batches_longest_first_ties_by_index(tiny_gpt2):
    texts = ["bb", "a", "cc", "dddd", "e"]
    got = [idx for idx, _ in sentence_batches(tiny_gpt2, texts, batch_size=2)]
    assert got == [[3, 0], [2, 1], [4]]
    for idx, enc in sentence_batches(tiny_gpt2, texts, batch_size=2, keep_bos=True, padding_side="left"):
        assert enc.input_ids.shape[0] == len(idx)
