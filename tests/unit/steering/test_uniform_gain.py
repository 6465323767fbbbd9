"""UniformGain (clas_lens/steering/uniform_gain.py): the gain that matches CLAS's mean per-neuron
gain (computed here with python loops), against the HF-hook reference, templates, round trips."""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.steering import ClasSteering, UniformGain, bind_lang, intervention_from_dict, steer

from ._reference import TEXTS, FakeNeurons, check_against_reference, engine_logits, ref_blocks, ref_of


def mean_gain_loops(shared, spec, layers, alpha, beta, gamma):
    """CLAS's mean per-neuron gain over every neuron of ``layers`` (python loops)."""
    total, n = 0.0, 0
    for l in layers:
        for i in range(shared.shape[1]):
            s, p = float(shared[l, i]), float(spec[l, i])
            total += (1 - alpha) + alpha * (1 + beta * s) * (1 - gamma * p)
            n += 1
    return total / n


def test_matching_equals_the_mean_gain(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    clas = ClasSteering(ns, "de", layers="last:1", alpha=0.6, beta=0.5, gamma=0.4)
    ug = UniformGain.matching(clas, tiny_llama)
    exp = mean_gain_loops(ns.mask("partial_shared"), ns.mask("specific", "de"), [shape[0] - 1], 0.6, 0.5, 0.4)
    assert ug.gain == pytest.approx(exp, abs=1e-12)
    assert (ug.layers, ug.positions, ug.site, ug.edit_bos) == ("last:1", "all", "post", False)
    assert UniformGain.matching(clas).gain == pytest.approx(exp, abs=1e-12)  # without the model
    # a template gives one gain per language; bind_lang picks it
    tpl = UniformGain.matching(ClasSteering(ns, layers=[0, 1], beta=0.5, gamma=0.4, suppress="others"))
    assert tpl.needs_lang and set(tpl.gain) == set(ns.langs)
    for lang in ns.langs:
        others = torch.zeros(shape, dtype=torch.bool)
        for o in ns.langs:
            if o != lang:
                others |= ns.mask("specific", o)
        exp = mean_gain_loops(ns.mask("partial_shared"), others, [0, 1], 1.0, 0.5, 0.4)
        assert bind_lang([tpl], lang)[0].gain[lang] == pytest.approx(exp, abs=1e-12)
        assert bind_lang([tpl], lang)[0].target_lang == lang
    # the unsteered anchor of CLAS: gain 1, an exact no-op
    skip = UniformGain.matching(ClasSteering(ns, steer_anchor=False, beta=0.5))
    assert skip.gain["en"] == 1.0 and skip.for_lang("en").is_noop and not skip.for_lang("de").is_noop
    assert UniformGain.matching(ClasSteering(ns, steer_anchor=False, anchor="fr")).gain["fr"] == 1.0
    # one-term controls
    boost = UniformGain.matching(ClasSteering.boost_only(ns, "ru", beta=1.0, layers=[0]))
    assert boost.gain == pytest.approx(1.0 + float(ns.mask("partial_shared")[0].float().mean()), abs=1e-12)


@pytest.mark.parametrize("site", ["post", "act"])
def test_uniform_gain_matches_reference(tiny_llama, site):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    ug = UniformGain.matching(ClasSteering(ns, layers=[1], beta=1.0, gamma=0.5, site=site)).for_lang("ru")
    g = ug.gain["ru"]
    assert g != 1.0
    check_against_reference(tiny_llama, [ug], [(site, 1, lambda h: h * g, "all")])
    check_against_reference(tiny_llama, [UniformGain(0.3, layers=[0, 1], site=site)], [(site, l, lambda h: h * 0.3, "all") for l in (0, 1)])


def test_gemma_post_ffn_norm_cancels_a_uniform_gain(tiny):
    """Gemma 3 normalises each MLP output (post_feedforward_layernorm): a uniform gain changes
    (almost) nothing there -- only the non-uniform part of CLAS's gain can act."""
    enc = encode(tiny, TEXTS, padding_side="left")
    base = engine_logits(tiny, enc)
    diff = (engine_logits(tiny, enc, UniformGain(3.0, layers="all")) - base)[enc.attention_mask.bool()].abs().max()
    normed = hasattr(ref_blocks(ref_of(tiny))[0], "post_feedforward_layernorm")
    assert (diff < 1e-2) if normed else (diff > 1e-2), (normed, float(diff))


def test_noop_round_trip_and_errors(tiny_llama, tiny_gpt2):
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    base = engine_logits(tiny_llama, enc)
    one = UniformGain(1.0, layers="all")
    assert one.is_noop and torch.equal(engine_logits(tiny_llama, enc, one), base)
    ug = UniformGain({"en": 1.2, "de": 0.9}, layers=[1], positions="last", site="act", edit_bos=True)
    back = intervention_from_dict(json.loads(json.dumps(ug.to_dict())))
    assert isinstance(back, UniformGain) and back.to_dict() == ug.to_dict()
    assert torch.equal(engine_logits(tiny_llama, enc, back.for_lang("de")), engine_logits(tiny_llama, enc, ug.for_lang("de")))
    with pytest.raises(DataValidationError, match="for_lang"):
        with steer(tiny_llama, ug):
            pass
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        ug.for_lang("xx")
    with pytest.raises(DataValidationError, match="empty"):
        UniformGain({})
    with pytest.raises(DataValidationError, match="gain=inf"):
        UniformGain(float("inf"))
    with pytest.raises(DataValidationError, match="positions"):
        UniformGain(2.0, positions="first")
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    with pytest.raises(MismatchError, match="shape"):
        UniformGain.matching(ClasSteering(ns, "de"), tiny_gpt2)
