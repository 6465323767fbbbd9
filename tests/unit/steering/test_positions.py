"""Padding, steered positions and the BOS position (clas_lens/steering/positions.py); the
``edit_bos`` option of every neuron edit is tested here, where the BOS rule lives."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import ClasLensError, DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.generation import generate_tokens
from clas_lens.steering import (
    AddNeurons,
    ClasSteering,
    Deactivate,
    DiffMeanSteering,
    SetNeurons,
    UniformGain,
    residual_means,
    steer,
)
from clas_lens.steering.positions import PadTracker, check_positions, masked_edit, pad_tracker
from clas_lens.vocab import POSITIONS

from ._reference import (
    PROMPTS,
    TEXTS,
    FakeNeurons,
    RefHooks,
    add_ref,
    assert_close_on_real,
    check_against_reference,
    clas_ref,
    engine_logits,
    hf_greedy,
    ref_blocks,
    ref_logits,
    ref_of,
    ref_select,
    set_ref,
)


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


# ----------------------------------------------------------------------------- BOS (issue 13)
def _ivs(shape, edit_bos):
    """One intervention of each neuron-edit kind with its reference edit function per layer."""
    ns = FakeNeurons(shape, p_spec=0.25)
    L = shape[0] - 1
    m, sh = ns.mask("specific", "de"), ns.mask("partial_shared")
    g = torch.Generator().manual_seed(11)
    v = torch.randn(shape, generator=g, dtype=torch.float64)
    return {
        "clas": (ClasSteering(ns, "de", layers=[L], beta=2.0, gamma=0.8, edit_bos=edit_bos),
                 [(L, clas_ref(sh[L], m[L], 1.0, 2.0, 0.8))]),
        "set": (SetNeurons(m, value=v, strength=0.7, edit_bos=edit_bos), [(l, set_ref(m[l], v[l], 0.7)) for l in range(shape[0])]),
        "deactivate": (Deactivate(m, layers=[0], edit_bos=edit_bos), [(0, set_ref(m[0], torch.zeros(shape[1]), 1.0))]),
        "add": (AddNeurons(sh, 1.5, layers=[L], edit_bos=edit_bos), [(L, add_ref(sh[L], 1.5, 1.0))]),
        "uniform": (UniformGain(1.7, layers=[0], edit_bos=edit_bos), [(0, lambda h: h * 1.7)]),
    }


@pytest.mark.parametrize("edit_bos", [False, True])
@pytest.mark.parametrize("kind", ["clas", "set", "deactivate", "add", "uniform"])
def test_edit_bos_matches_reference(tiny, kind, edit_bos):
    """Every neuron edit, with and without BOS, against the HF-hook reference (left padding puts
    BOS at other positions than 0; check_against_reference runs left, right and no padding)."""
    iv, fns = _ivs(neuron_sites(tiny).shape, edit_bos)[kind]
    assert iv.edit_bos is edit_bos
    # Gemma 3 normalises the MLP output (post_feedforward_layernorm): a uniform gain cancels
    changes = not (kind == "uniform" and hasattr(ref_blocks(ref_of(tiny))[0], "post_feedforward_layernorm"))
    check_against_reference(tiny, [iv], [("post", l, fn, "all", edit_bos) for l, fn in fns], changes=changes)
    last = dataclasses.replace(iv, positions="last")
    check_against_reference(tiny, [last], [("post", l, fn, "last", edit_bos) for l, fn in fns], changes=changes)


@pytest.mark.parametrize("side", ["left", "right"])
def test_bos_activations_untouched_by_default(tiny, side):
    shape = neuron_sites(tiny).shape
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[0] = True
    enc = encode(tiny, TEXTS, padding_side=side)
    bos_id = tiny.tokenizer.bos_token_id
    am = enc.attention_mask.bool()
    first = am.int().argmax(1)
    rows = torch.arange(len(TEXTS))
    assert (enc.input_ids[rows, first] == bos_id).all()
    if side == "left":
        assert (first > 0).any()  # BOS not at position 0
    bos = torch.zeros_like(am)
    bos[rows, first] = True

    def layer0(iv):
        seen = {}
        read = [("blocks.0.mlp.hook_post", lambda t, hook: seen.__setitem__("v", t.detach().clone()))]
        with torch.no_grad(), steer(tiny, *([iv] if iv else [])), tiny.hooks(fwd_hooks=read):
            tiny(enc.input_ids, attention_mask=enc.attention_mask)
        return seen["v"]

    base, off, on = layer0(None), layer0(Deactivate(mask)), layer0(Deactivate(mask, edit_bos=True))
    assert torch.equal(off[bos], base[bos]) and off[am & ~bos].eq(0).all()
    assert on[am].eq(0).all() and not torch.equal(on[bos], base[bos])


def test_inputs_without_bos_steer_their_first_token(tiny_llama):
    """Without BOS (add_special_tokens=False) the first token is a real word: it is steered."""
    shape = neuron_sites(tiny_llama).shape
    iv, fns = _ivs(shape, False)["clas"]
    ref = ref_of(tiny_llama)
    edits = [("post", l, fn, "all") for l, fn in fns]
    for side in ("left", "right"):
        enc = encode(tiny_llama, TEXTS, padding_side=side, add_special_tokens=False)
        assert not (enc.input_ids == tiny_llama.tokenizer.bos_token_id).any()
        assert_close_on_real(engine_logits(tiny_llama, enc, iv), ref_logits(ref, enc, edits), enc.attention_mask, side)
    # a tensor without a mask (to_tokens prepends BOS): BOS found at position 0
    tokens = tiny_llama.to_tokens("the cat sat on the mat")
    assert tokens[0, 0] == tiny_llama.tokenizer.bos_token_id
    with torch.no_grad(), steer(tiny_llama, iv):
        got = tiny_llama(tokens)
    with RefHooks(ref, edits), torch.no_grad():
        exp = ref(input_ids=tokens).logits
    assert (got - exp).abs().max() < 1e-5


@pytest.mark.parametrize("use_cache", [True, False])
def test_generation_with_edit_bos_matches_hf_greedy(tiny_llama, use_cache):
    """edit_bos=True in cached / uncached generation (the default False is in test_engine)."""
    shape = neuron_sites(tiny_llama).shape
    iv, fns = _ivs(shape, True)["clas"]
    ref = ref_of(tiny_llama)
    with steer(tiny_llama, iv):
        got = generate_tokens(tiny_llama, PROMPTS, 6, use_cache=use_cache)
    with RefHooks(ref, [("post", l, fn, "all", True) for l, fn in fns]):
        exp = [hf_greedy(ref, tiny_llama.tokenizer, p, 6, use_cache) for p in PROMPTS]
    assert got == exp
    with steer(tiny_llama, dataclasses.replace(iv, edit_bos=False)):
        other = generate_tokens(tiny_llama, PROMPTS, 6, use_cache=use_cache)
    with RefHooks(ref, [("post", l, fn, "all", False) for l, fn in fns]):
        assert other == [hf_greedy(ref, tiny_llama.tokenizer, p, 6, use_cache) for p in PROMPTS]


def test_old_dicts_without_edit_bos_load_with_it():
    """Dicts saved before the option edited BOS: they load with edit_bos=True."""
    for iv, _ in _ivs((2, 64), False).values():
        d = iv.to_dict()
        assert d["edit_bos"] is False and type(iv).from_dict(d).edit_bos is False
        d.pop("edit_bos")
        assert type(iv).from_dict(d).edit_bos is (type(iv).__name__ != "UniformGain")
