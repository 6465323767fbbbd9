"""Shared by the tests of clas_lens.stats: the test corpus and an independent reference (plain HF
model, plain torch hooks, one sentence at a time)."""
from __future__ import annotations

import torch

from clas_lens.stats import NeuronStats
from clas_lens.testing import hf_reference

TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps in the garden today."],
    "de": ["Der Hund schläft im Garten.", "Die Katze", "Eins zwei drei vier fünf", "Hallo"],
    "ru": ["Привет, как дела?", "Мир", "Кошка сидит на коврике.", "Один два три"],
}


def _mlp_modules(hf):
    if hasattr(hf, "transformer"):  # GPT-2
        return [blk.mlp for blk in hf.transformer.h]
    return [layer.mlp for layer in hf.model.layers]


def reference_values(model, texts, site, keep_bos=False):
    """{layer: [tokens, d_mlp]} and per-sentence means, from HF hooks on single sentences."""
    hf = hf_reference(model)
    mlps = _mlp_modules(hf)
    got = {}
    handles = []
    for l, mlp in enumerate(mlps):
        if hasattr(mlp, "c_proj"):  # GPT-2: act(c_fc(x)) enters c_proj; act == post
            handles.append(mlp.c_proj.register_forward_pre_hook(lambda m, a, l=l: got.__setitem__(l, a[0])))
        elif site == "post":
            handles.append(mlp.down_proj.register_forward_pre_hook(lambda m, a, l=l: got.__setitem__(l, a[0])))
        else:
            handles.append(
                mlp.gate_proj.register_forward_hook(lambda m, a, out, l=l, f=mlp.act_fn: got.__setitem__(l, f(out)))
            )
    per_layer = {l: [] for l in range(len(mlps))}
    per_sent = {l: [] for l in range(len(mlps))}
    tok = model.tokenizer
    with torch.no_grad():
        for t in texts:
            ids = tok(t)["input_ids"]
            hf(torch.tensor([ids]))
            start = 0 if keep_bos or ids[0] != tok.bos_token_id else 1
            for l in per_layer:
                v = got[l][0, start:].double()
                per_layer[l].append(v)
                per_sent[l].append(v.mean(0))
    for h in handles:
        h.remove()
    return {l: torch.cat(v) for l, v in per_layer.items()}, {l: torch.stack(v) for l, v in per_sent.items()}


def assert_same_stats(a: NeuronStats, b: NeuronStats, rtol=1e-12):
    assert a.langs == b.langs
    for lang in a.langs:
        assert a.n_tokens(lang) == b.n_tokens(lang)
        assert torch.equal(a.active_prob(lang).nan_to_num(-1), b.active_prob(lang).nan_to_num(-1))
        torch.testing.assert_close(a.mean(lang), b.mean(lang), rtol=rtol, atol=1e-15, equal_nan=True)
        torch.testing.assert_close(a.std(lang), b.std(lang), rtol=1e-9, atol=1e-12, equal_nan=True)
