"""steer / bind_lang (clas_lens/steering/engine.py): composition, exact no-ops, generation,
hook removal, and the hooks used without steer."""
from __future__ import annotations

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError
from clas_lens.generation import generate_tokens
from clas_lens.sites import neuron_sites
from clas_lens.steering import (
    AddNeurons,
    ClasSteering,
    Deactivate,
    DiffMeanSteering,
    SetNeurons,
    bind_lang,
    residual_means,
    steer,
)

from ._reference import (
    PROMPTS,
    TEXTS,
    FakeNeurons,
    FakeStats,
    RefHooks,
    add_ref,
    check_against_reference,
    clas_ref,
    engine_logits,
    hf_greedy,
    ref_of,
    set_ref,
)


def test_composition_matches_reference(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    clas = ClasSteering(ns, "en", layers=[1], beta=1.0, gamma=0.5)
    add = AddNeurons(ns.mask("partial_shared"), 0.75, layers=[1])
    mu = SetNeurons.int_mu(ns, stats, "ru", layers=[0])
    edits = [
        ("post", 1, clas_ref(ns.mask("partial_shared")[1], ns.mask("specific", "en")[1], 1.0, 1.0, 0.5), "all"),
        ("post", 1, add_ref(ns.mask("partial_shared")[1], 0.75, 1.0), "all"),
        ("post", 0, set_ref(ns.mask("specific", "ru")[0], stats.mean("ru")[0], 1.0), "all"),
    ]
    check_against_reference(tiny_llama, [clas, [add, None], mu], edits)


def test_zero_strength_is_bit_identical(tiny):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    rm = residual_means(tiny, {"en": ["the cat"], "de": ["der Hund"]})
    zero = [
        ClasSteering(ns, "de", alpha=0.0),
        ClasSteering(ns, "de", beta=0.0, gamma=0.0, site="act"),
        SetNeurons.int_mu(ns, stats, "de", strength=0.0),
        SetNeurons(ns.mask("specific", "de"), value=5.0, strength=0.0, site="act"),
        Deactivate(ns.mask("specific", "de"), strength=0.0),
        AddNeurons(ns.mask("partial_shared"), 0.0),
        AddNeurons(ns.mask("partial_shared"), stats.mean("en"), strength=0.0),
        DiffMeanSteering("en", "de", strength=0.0, means=rm),
        DiffMeanSteering("de", "de", strength=3.0, means=rm),
    ]
    for side in ("left", "right"):
        enc = encode(tiny, TEXTS, padding_side=side)
        with torch.no_grad():
            base = tiny(enc.input_ids, attention_mask=enc.attention_mask)
        for iv in zero:
            assert iv.is_noop, iv
            assert torch.equal(engine_logits(tiny, enc, iv), base), (side, type(iv).__name__)
        assert torch.equal(engine_logits(tiny, enc, *zero), base)
    base_gen = generate_tokens(tiny, PROMPTS, 5)
    with steer(tiny, *zero):
        assert generate_tokens(tiny, PROMPTS, 5) == base_gen


@pytest.mark.parametrize("use_cache,positions", [(True, "all"), (True, "last"), (False, "all"), (False, "last")])
def test_generation_matches_hf_greedy_with_reference_hooks(tiny, use_cache, positions):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    L = shape[0] - 1
    iv = ClasSteering(ns, "de", layers=[L], beta=3.0, gamma=1.0, positions=positions)
    add = AddNeurons(ns.mask("specific", "en"), 2.0, layers=[0], positions=positions)
    edits = [
        ("post", L, clas_ref(ns.mask("partial_shared")[L], ns.mask("specific", "de")[L], 1.0, 3.0, 1.0), positions),
        ("post", 0, add_ref(ns.mask("specific", "en")[0], 2.0, 1.0), positions),
    ]
    ref = ref_of(tiny)
    base = generate_tokens(tiny, PROMPTS, 8, use_cache=use_cache)
    with steer(tiny, iv, add):
        got = generate_tokens(tiny, PROMPTS, 8, use_cache=use_cache)
    with RefHooks(ref, edits):
        exp = [hf_greedy(ref, tiny.tokenizer, p, 8, use_cache) for p in PROMPTS]
    assert got == exp
    assert got != base, "the steering must change some generation"


def test_hooks_are_removed_after_steer(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    enc = encode(tiny_llama, TEXTS)
    with torch.no_grad():
        base = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        with steer(tiny_llama, Deactivate(torch.ones(shape, dtype=torch.bool))):
            pass
        assert torch.equal(tiny_llama(enc.input_ids, attention_mask=enc.attention_mask), base)


def test_hooks_are_removed_when_the_block_raises(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    enc = encode(tiny_llama, TEXTS)
    with torch.no_grad():
        base = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        with pytest.raises(RuntimeError, match="boom"):
            with steer(tiny_llama, Deactivate(torch.ones(shape, dtype=torch.bool))):
                assert not torch.equal(tiny_llama(enc.input_ids, attention_mask=enc.attention_mask), base)
                raise RuntimeError("boom")
        assert torch.equal(tiny_llama(enc.input_ids, attention_mask=enc.attention_mask), base)
        # an intervention that fails to build its hooks installs none of the others
        with pytest.raises(DataValidationError, match="for_lang"):
            with steer(tiny_llama, Deactivate(torch.ones(shape, dtype=torch.bool)), ClasSteering(FakeNeurons(shape))):
                pass
        assert torch.equal(tiny_llama(enc.input_ids, attention_mask=enc.attention_mask), base)


def test_hooks_work_without_steer(tiny_llama):
    """``model.hooks(fwd_hooks=iv.hooks(model))`` / ``run_with_hooks`` give what ``steer`` gives."""
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    iv = ClasSteering(ns, "de", beta=2.0, positions="last")
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    expected = engine_logits(tiny_llama, enc, iv)
    with torch.no_grad():
        with tiny_llama.hooks(fwd_hooks=iv.hooks(tiny_llama)):
            a = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        b = tiny_llama.run_with_hooks(enc.input_ids, attention_mask=enc.attention_mask, fwd_hooks=iv.hooks(tiny_llama))
    assert torch.equal(a, expected) and torch.equal(b, expected)


def test_bind_lang_binds_only_templates():
    shape = (2, 64)
    ns = FakeNeurons(shape)
    bound = ClasSteering(ns, "en")
    tpl = ClasSteering(ns)
    fixed = Deactivate(torch.ones(shape, dtype=torch.bool))
    out = bind_lang([tpl, [bound, None], fixed], "de")
    assert [iv.target_lang for iv in out] == ["de", "en", None]
    assert out[1] is bound and out[2] is fixed
