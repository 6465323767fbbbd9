"""ClasSteering (clas_lens/steering/clas.py) against the reference, with fake and real NeuronSets."""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.steering import ClasSteering, SetNeurons, interventions_from_dicts, interventions_to_dicts, steer
from clas_lens.steering.clas import SHARED_CATEGORIES, SHARED_OPTIONS, SPECIFIC_OPTIONS
from clas_lens.vocab import DEFAULT_STEER_LAYERS

from ._reference import FakeNeurons, TEXTS, check_against_reference, clas_ref, engine_logits, set_ref


@pytest.mark.parametrize("site", ["post", "act"])
@pytest.mark.parametrize("positions", ["all", "last"])
def test_clas_matches_reference(tiny, site, positions):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    iv = ClasSteering(ns, "de", layers="last:1", alpha=0.7, beta=1.5, gamma=0.9, positions=positions, site=site)
    L = shape[0] - 1
    edits = [(site, L, clas_ref(ns.mask("partial_shared")[L], ns.mask("specific", "de")[L], 0.7, 1.5, 0.9), positions)]
    check_against_reference(tiny, [iv], edits)


@pytest.mark.parametrize("shared,specific", [("all", "target"), ("both", "all")])
def test_clas_mask_options_match_reference(tiny_llama, shared, specific):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    iv = ClasSteering(ns, "ru", layers=[0, 1], beta=2.0, gamma=0.8, shared=shared, specific=specific)
    sh = {"all": ns.mask("all_shared"), "both": ns.mask("all_shared") | ns.mask("partial_shared")}[shared]
    sp = ns.mask("specific", "ru" if specific == "target" else None)
    edits = [("post", l, clas_ref(sh[l], sp[l], 1.0, 2.0, 0.8), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [iv], edits)


def test_defaults_and_options_unchanged():
    ns = FakeNeurons((2, 64))
    iv = ClasSteering(ns)
    assert (iv.layers, iv.alpha, iv.beta, iv.gamma) == (DEFAULT_STEER_LAYERS, 1.0, 0.2, 0.2)
    assert (iv.shared, iv.specific, iv.positions, iv.site) == ("partial", "target", "all", "post")
    assert set(SHARED_CATEGORIES) == set(SHARED_OPTIONS) and SPECIFIC_OPTIONS == ("target", "all")
    with pytest.raises(DataValidationError, match="specific"):
        ClasSteering(ns, specific="some")
    with pytest.raises(DataValidationError, match="NeuronSet"):
        ClasSteering(torch.ones(2, 64, dtype=torch.bool))


def test_clas_templates_and_errors(tiny_llama, tiny_gpt2):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    clas = ClasSteering(ns)
    assert clas.needs_lang and not clas.for_lang("de").needs_lang
    assert clas.target_lang is None and clas.for_lang("de").target_lang == "de"
    assert not ClasSteering(ns, specific="all").needs_lang
    with pytest.raises(DataValidationError, match="for_lang"):
        with steer(tiny_llama, clas):
            pass
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        clas.for_lang("xx")
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        ClasSteering(ns, "xx")
    with pytest.raises(DataValidationError, match="shared"):
        ClasSteering(ns, shared="some")
    # a NeuronSet from another model: shape, then weights
    with pytest.raises(MismatchError, match=r"\(2, 64\).*\(2, 128\)"):
        with steer(tiny_gpt2, ClasSteering(ns, "de")):
            pass
    from clas_lens.models import model_info

    other = FakeNeurons(shape, model_info={"model_id": "other-model", "weights_sha256": "0" * 64})
    with pytest.raises(MismatchError, match="other-model") as e:
        ClasSteering(other, "de").hooks(tiny_llama)
    assert model_info(tiny_llama).model_id in str(e.value)


def test_real_neuron_set_and_stats(tiny_llama, real):
    """ClasSteering and Int-mu (SetNeurons) from the real NeuronSet / NeuronStats together."""
    stats, ns = real
    assert ns.mask("specific", "de").any() and ns.mask("partial_shared").any()
    clas = ClasSteering(ns, layers=[0, 1], beta=2.0, gamma=1.0)
    edits = [("post", l, clas_ref(ns.mask("partial_shared")[l], ns.mask("specific", "de")[l], 1.0, 2.0, 1.0), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [clas.for_lang("de")], edits)
    mu = SetNeurons.int_mu(ns, stats, "ru")
    assert mu.site == "act"
    m = ns.mask("specific", "ru")
    edits = [("act", l, set_ref(m[l], stats.mean("ru")[l], 1.0), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [mu], edits)
    # round trip: the NeuronSet becomes a compact MaskSet with the same masks
    back = interventions_from_dicts(json.loads(json.dumps(interventions_to_dicts([clas, mu]))))
    for lang in ns.langs:
        assert torch.equal(back[0].neurons.mask("specific", lang), ns.mask("specific", lang))
    assert torch.equal(back[0].neurons.mask("partial_shared"), ns.mask("partial_shared"))
    assert back[0].neurons.model_info == ns.model_info and back[0].neurons.site == "act"
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    assert torch.equal(engine_logits(tiny_llama, enc, back[0].for_lang("de"), back[1]), engine_logits(tiny_llama, enc, clas.for_lang("de"), mu))


def test_real_neuron_set_from_another_model(tiny_llama, tiny_gpt2, real):
    from clas_lens.testing import tiny_model

    stats, ns = real
    with pytest.raises(MismatchError, match="shape"):
        ClasSteering(ns, "de").hooks(tiny_gpt2)
    other = tiny_model("llama", seed=1)
    from clas_lens.models import model_info

    with pytest.raises(MismatchError) as e:
        with steer(other, ClasSteering(ns, "de")):
            pass
    assert model_info(tiny_llama).model_id in str(e.value) and model_info(other).model_id in str(e.value)
    with pytest.raises(MismatchError):
        SetNeurons.int_mu(ns, stats, "de").hooks(other)
