"""Prefix reuse (clas_lens/prefix.py): logits equal the full forward for every intervention type
on the three tiny architectures, left and right padding; early hooks fall back to the full path."""
from __future__ import annotations

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError
from clas_lens.prefix import first_hooked_layer, forward_at, reuse_prefix
from clas_lens.sites import neuron_sites
from clas_lens.steering import AddNeurons, ClasSteering, Deactivate, DiffMeanSteering, SetNeurons, residual_means, steer

from steering._reference import FakeNeurons  # tests/unit/steering (a test package)

TEXTS = ["the cat sat on the mat", "one two", "Der Hund schläft im Garten heute", "x"]


def _interventions(model, layer):
    shape = neuron_sites(model).shape
    ns = FakeNeurons(shape, p_spec=0.3)
    only = torch.zeros(shape, dtype=torch.bool)
    only[layer] = ns.mask("specific", "en")[layer]
    values = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rm = residual_means(model, {"en": ["the cat sat"], "de": ["Der Hund schläft"]}, layers=None)
    return {
        "clas": ClasSteering(ns, target_lang="en", layers=[layer], beta=0.5, gamma=0.5),
        "set": SetNeurons(only, value=values, strength=0.7, layers=[layer]),
        "deactivate": Deactivate(only, layers=[layer]),
        "add": AddNeurons(only, values.float(), strength=0.5, positions="last", layers=[layer]),
        "diffmean": DiffMeanSteering("en", "de", layers=[layer], strength=4.0, means=rm),
    }


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["clas", "set", "deactivate", "add", "diffmean"])
def test_reuse_equals_full_path(tiny, kind, side):
    n = tiny.cfg.n_layers
    layer = n - 1
    iv = _interventions(tiny, layer)[kind]
    enc = encode(tiny, TEXTS, padding_side=side)
    real = enc.attention_mask.bool()
    with torch.no_grad(), steer(tiny, iv):
        full = forward_at(tiny, enc.input_ids, enc.attention_mask)
    with torch.no_grad(), reuse_prefix(tiny, start=layer) as memo:
        with steer(tiny):  # an unsteered call first stores the prefix
            forward_at(tiny, enc.input_ids, enc.attention_mask)
        with steer(tiny, iv):
            fast = forward_at(tiny, enc.input_ids, enc.attention_mask)
    assert memo.misses == 1 and memo.hits == 1 and memo.fallbacks == 0
    assert (full - fast).abs()[real].max().item() <= 1e-5


def test_logits_only_at_scored_positions(tiny):
    enc = encode(tiny, TEXTS, padding_side="left")
    pos = torch.tensor([[1, 5], [4, 5], [2, 3], [5, 5]])
    with torch.no_grad():
        full = forward_at(tiny, enc.input_ids, enc.attention_mask)
        with reuse_prefix(tiny, start=1):
            forward_at(tiny, enc.input_ids, enc.attention_mask, pos)
            some = forward_at(tiny, enc.input_ids, enc.attention_mask, pos)
    ref = full.gather(1, pos[..., None].expand(-1, -1, full.shape[-1]))
    assert some.shape == ref.shape
    assert (some - ref).abs().max().item() <= 1e-5


def test_early_hook_falls_back(tiny_llama):
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    iv = _interventions(tiny_llama, 0)["deactivate"]
    with torch.no_grad(), steer(tiny_llama, iv):
        full = forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
    with torch.no_grad(), reuse_prefix(tiny_llama, start=1) as memo:
        forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
        with steer(tiny_llama, iv):
            assert first_hooked_layer(tiny_llama) == 0
            fast = forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
    assert memo.fallbacks == 1
    assert torch.equal(full, fast)


def test_different_tokens_are_not_confused(tiny_gpt2):
    a = encode(tiny_gpt2, ["one two three"], padding_side="right")
    b = encode(tiny_gpt2, ["four five six"], padding_side="right")
    with torch.no_grad():
        ref_b = forward_at(tiny_gpt2, b.input_ids, b.attention_mask)
        with reuse_prefix(tiny_gpt2, start=1) as memo:
            forward_at(tiny_gpt2, a.input_ids, a.attention_mask)
            got_b = forward_at(tiny_gpt2, b.input_ids, b.attention_mask)
    assert memo.misses == 2 and torch.allclose(ref_b, got_b, atol=1e-6)


def test_scope_restores_blocks_and_validates(tiny_gpt2):
    with pytest.raises(DataValidationError, match="start"):
        with reuse_prefix(tiny_gpt2, start=99):
            pass
    enc = encode(tiny_gpt2, TEXTS, padding_side="right")
    with torch.no_grad():
        before = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
        with reuse_prefix(tiny_gpt2, start=1):
            forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
            forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
        after = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
    assert torch.equal(before, after)  # no replay left behind
