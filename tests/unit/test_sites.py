"""Neuron sites equal hand-written hooks on the plain HF modules, whatever the padding."""
from __future__ import annotations

import torch

from clas_lens.batching import encode
from clas_lens.sites import neuron_sites
from clas_lens.testing import hf_reference

TEXTS = ["the cat sat on the mat", "Привет мир", "1 2 3 4 5 6 7"]


def _hf_values(ref, enc, layer):
    """post = input of the down projection; act = act_fn(gate) (gated) or post (GPT-2)."""
    store = {}
    if hasattr(ref, "transformer"):  # GPT-2
        mlp = ref.transformer.h[layer].mlp
        h = mlp.c_proj.register_forward_pre_hook(lambda m, a: store.__setitem__("post", a[0].detach()))
        with torch.no_grad():
            ref(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
        h.remove()
        store["act"] = store["post"]
        return store
    mlp = ref.model.layers[layer].mlp
    hs = [
        mlp.down_proj.register_forward_pre_hook(lambda m, a: store.__setitem__("post", a[0].detach())),
        mlp.gate_proj.register_forward_hook(lambda m, a, o: store.__setitem__("act", mlp.act_fn(o).detach())),
    ]
    with torch.no_grad():
        ref(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    for h in hs:
        h.remove()
    return store


def _bridge_values(model, enc, site, layer):
    sites = neuron_sites(model)
    got = {}
    hooks = sites.read_hooks(site, layer, lambda v: got.__setitem__("v", v.detach().clone()))
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        model(enc.input_ids, attention_mask=enc.attention_mask)
    return got["v"]


def test_sites_equal_hand_written_hooks(tiny):
    ref = hf_reference(tiny)
    enc = encode(tiny, TEXTS, padding_side="right")
    sites = neuron_sites(tiny)
    for layer in range(sites.n_layers):
        expected = _hf_values(ref, enc, layer)
        for site in ("post", "act"):
            got = _bridge_values(tiny, enc, site, layer)
            m = enc.real_mask
            assert got.shape[-1] == sites.d_mlp
            assert (got[m] - expected[site][m]).abs().max() < 1e-5, (site, layer)


def test_padding_side_does_not_change_values(tiny):
    sites = neuron_sites(tiny)
    for site in ("post", "act"):
        singles = [_bridge_values(tiny, encode(tiny, [t]), site, 1)[0][encode(tiny, [t]).real_mask[0]] for t in TEXTS]
        for side in ("left", "right"):
            enc = encode(tiny, TEXTS, padding_side=side)
            batch = _bridge_values(tiny, enc, site, 1)
            for i, single in enumerate(singles):
                assert (batch[i][enc.real_mask[i]] - single).abs().max() < 1e-5, (site, side, i)
    assert sites.check_layers("last:1") == [sites.n_layers - 1]


def test_identity_edit_is_bit_identical(tiny):
    enc = encode(tiny, TEXTS, padding_side="left")
    sites = neuron_sites(tiny)
    with torch.no_grad():
        base = tiny(enc.input_ids, attention_mask=enc.attention_mask)
        for site in ("post", "act"):
            hooks = [h for l in range(sites.n_layers) for h in sites.edit_hooks(site, l, lambda v: v.clone())]
            with tiny.hooks(fwd_hooks=hooks):
                out = tiny(enc.input_ids, attention_mask=enc.attention_mask)
            assert torch.equal(out, base), site


def test_zeroing_is_the_same_at_both_sites(tiny):
    enc = encode(tiny, TEXTS)
    sites = neuron_sites(tiny)

    def zero_first(v):
        v = v.clone()
        v[..., :5] = 0
        return v

    outs = {}
    with torch.no_grad():
        for site in ("post", "act"):
            with tiny.hooks(fwd_hooks=sites.edit_hooks(site, 0, zero_first)):
                outs[site] = tiny(enc.input_ids, attention_mask=enc.attention_mask)
    assert (outs["post"] - outs["act"]).abs().max() < 1e-5


def test_layer_specs(tiny_llama):
    s = neuron_sites(tiny_llama)
    assert s.check_layers(None) == [0, 1]
    assert s.check_layers(-1) == [1]
    assert s.check_layers("all") == [0, 1]
    import pytest

    with pytest.raises(ValueError, match="out of range"):
        s.check_layers([5])
    # one parser (clas_lens.specs): first:k and ranges are specs, last:k clamps to the layer count
    assert s.check_layers("first:1") == [0] and s.check_layers("0-1") == [0, 1]
    assert s.check_layers("last:9") == [0, 1]
    with pytest.raises(ValueError, match="not a layer spec"):
        s.check_layers("middle")
