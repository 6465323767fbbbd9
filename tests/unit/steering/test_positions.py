"""Padding and steered positions (clas_lens/steering/positions.py)."""
from __future__ import annotations

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import ClasLensError, DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.steering import AddNeurons, ClasSteering, Deactivate, DiffMeanSteering, SetNeurons, residual_means, steer
from clas_lens.steering.positions import PadTracker, check_positions, masked_edit, pad_tracker
from clas_lens.vocab import POSITIONS

from ._reference import TEXTS, FakeNeurons, assert_close_on_real, engine_logits, ref_select


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_positions_are_never_touched(tiny_llama, side):
    shape = neuron_sites(tiny_llama).shape
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[0] = True  # layer 0 only, so layer-0 values at padding see no upstream change
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"]})
    enc = encode(tiny_llama, TEXTS, padding_side=side)
    pad = ~enc.attention_mask.bool()
    assert pad.any()
    for iv, hook in [
        (SetNeurons(mask, value=7.0), "blocks.0.mlp.hook_post"),
        (AddNeurons(mask, 2.0, site="act"), "blocks.0.mlp.hook_post"),
        (DiffMeanSteering("en", "de", layers=[0], strength=5.0, means=rm), "blocks.0.hook_resid_post"),
    ]:
        seen = {}
        read = [(hook, lambda t, hook: seen.__setitem__("v", t.detach().clone()))]
        with torch.no_grad():
            with tiny_llama.hooks(fwd_hooks=read):
                tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
            base = seen["v"]
            with steer(tiny_llama, iv), tiny_llama.hooks(fwd_hooks=read):
                tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        assert torch.equal(seen["v"][pad], base[pad]), type(iv).__name__
        assert not torch.equal(seen["v"][~pad], base[~pad])


def test_string_input_without_mask_uses_bridge_padding(tiny_llama):
    """model(list_of_strings) pads right without a mask; 'last' must still find real tokens."""
    shape = neuron_sites(tiny_llama).shape
    iv = ClasSteering(FakeNeurons(shape), "en", beta=3.0, gamma=0.9, positions="last")
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    with torch.no_grad(), steer(tiny_llama, iv):
        a = tiny_llama(TEXTS)
    b = engine_logits(tiny_llama, enc, iv)
    assert_close_on_real(a, b, enc.attention_mask)


def test_check_positions_uses_the_vocabulary():
    assert POSITIONS == ("all", "last")
    for p in POSITIONS:
        assert check_positions(p) == p
    with pytest.raises(DataValidationError, match="positions"):
        check_positions("first")
    with pytest.raises(DataValidationError, match="positions"):
        Deactivate(torch.ones(2, 64, dtype=torch.bool), positions="first")


def test_tracker_select_matches_python_loops(tiny_llama):
    tr = pad_tracker(tiny_llama)
    assert isinstance(tr, PadTracker) and pad_tracker(tiny_llama) is tr
    assert tr.mask is None and tr.select(2, 3, "all", "cpu") is None
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    tr.mask = mask
    try:
        for positions in POSITIONS:
            for pos in (4, 2, 1):
                tr._memo = {}
                got = tr.select(3, pos, positions, "cpu")
                exp = ref_select(mask, pos, positions)
                assert torch.equal(exp if got is None else got, exp), (positions, pos)
        tr._memo = {}
        with pytest.raises(ClasLensError, match="attention mask"):
            tr.select(2, 4, "all", "cpu")
    finally:
        tr.mask, tr._memo = None, {}


def test_masked_edit_touches_only_selected_neurons_and_positions(tiny_llama):
    tr = pad_tracker(tiny_llama)
    fn = masked_edit(tr, "last", torch.tensor([1, 3]), lambda h: h + 10)
    out = fn(torch.zeros(2, 3, 4))
    assert out[:, -1, [1, 3]].eq(10).all() and out.sum() == 2 * 2 * 10
