"""ClasSteering (clas_lens/steering/clas.py) against the reference, with fake and real NeuronSets."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.steering import (
    ClasSteering,
    SetNeurons,
    bind_lang,
    interventions_from_dicts,
    interventions_to_dicts,
    steer,
)
from clas_lens.steering.clas import SHARED_CATEGORIES, SHARED_OPTIONS, SPECIFIC_OPTIONS, SUPPRESS_OPTIONS
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


@pytest.mark.parametrize("shared,suppress", [("all", "target"), ("both", "all"), ("partial", "others"), ("all", "others")])
def test_clas_mask_options_match_reference(tiny_llama, shared, suppress):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    iv = ClasSteering(ns, "ru", layers=[0, 1], beta=2.0, gamma=0.8, shared=shared, suppress=suppress)
    sh = {"all": ns.mask("all_shared"), "both": ns.mask("all_shared") | ns.mask("partial_shared"),
          "partial": ns.mask("partial_shared")}[shared]
    others = [l for l in ns.langs if l != "ru"]
    sp = {"target": ns.mask("specific", "ru"), "all": ns.mask("specific", None),
          "others": ns.mask("specific", others[0]) | ns.mask("specific", others[1])}[suppress]
    edits = [("post", l, clas_ref(sh[l], sp[l], 1.0, 2.0, 0.8), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [iv], edits)
    assert iv.needs_lang is False and ClasSteering(ns, suppress=suppress).needs_lang is (suppress != "all")


def test_defaults_and_options():
    """Defaults as before, but for edit_bos (new default False: deliberate, issue 13); the new
    options (shared="partial_active", suppress="others") extend the old lists."""
    ns = FakeNeurons((2, 64))
    iv = ClasSteering(ns)
    assert (iv.layers, iv.alpha, iv.beta, iv.gamma) == (DEFAULT_STEER_LAYERS, 1.0, 0.2, 0.2)
    assert (iv.shared, iv.suppress, iv.positions, iv.site) == ("partial", "target", "all", "post")
    assert (iv.edit_bos, iv.steer_anchor, iv.anchor, iv.active) == (False, True, "en", None)
    assert set(SHARED_CATEGORIES) == set(SHARED_OPTIONS) == {"partial", "all", "both", "partial_active"}
    assert SUPPRESS_OPTIONS == ("target", "all", "others") and SPECIFIC_OPTIONS is SUPPRESS_OPTIONS
    with pytest.raises(DataValidationError, match="suppress"):
        ClasSteering(ns, suppress="some")
    with pytest.raises(DataValidationError, match="suppress"):
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


# ----------------------------------------------------------------------------- issue 13: options
def test_partial_active_matches_reference(tiny_llama, real):
    """shared="partial_active": partial-shared neurons active in the target language, from the
    real NeuronSet's "active" masks or from active=; the reference builds the mask itself."""
    _, ns = real
    iv = ClasSteering(ns, layers=[0, 1], beta=2.0, gamma=0.7, shared="partial_active")
    assert iv.needs_lang and iv.for_lang("ru").target_lang == "ru"
    partial, active = ns.mask("partial_shared"), ns.mask("active", "ru")
    sh = torch.zeros_like(partial)
    for l, n in partial.nonzero().tolist():  # python loop: partial-shared and active in ru
        sh[l, n] = bool(active[l, n])
    assert 0 < int(sh.sum()) < int(partial.sum())
    sp = ns.mask("specific", "ru")
    edits = [("post", l, clas_ref(sh[l], sp[l], 1.0, 2.0, 0.7), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [iv.for_lang("ru")], edits)
    # the round trip keeps the activity masks (a MaskSet with "active")
    back = ClasSteering.from_dict(json.loads(json.dumps(iv.to_dict()))).for_lang("ru")
    assert torch.equal(back.masks()[0], sh)
    # a NeuronSet without activity: active= supplies it, per language
    fake = FakeNeurons(neuron_sites(tiny_llama).shape)
    with pytest.raises(DataValidationError, match="per-language activity"):
        ClasSteering(fake, "de", shared="partial_active").masks()
    g = torch.Generator().manual_seed(2)
    act = {l: torch.rand(fake._partial.shape, generator=g) < 0.5 for l in fake.langs}
    iv2 = ClasSteering(fake, "de", layers=[1], beta=1.5, gamma=0.0, shared="partial_active", active=act)
    sh2 = fake.mask("partial_shared") & act["de"]
    check_against_reference(tiny_llama, [iv2], [("post", 1, clas_ref(sh2[1], sh2[1] & False, 1.0, 1.5, 0.0), "all")])
    back2 = ClasSteering.from_dict(json.loads(json.dumps(iv2.to_dict())))
    assert torch.equal(back2.masks()[0], sh2)


def test_steer_anchor(tiny_llama):
    """steer_anchor=False: binding the anchor gives a no-op (bit-identical logits); other
    languages are steered as usual; language-free CLAS becomes a template."""
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    tpl = ClasSteering(ns, layers=[1], beta=2.0, gamma=0.9, steer_anchor=False, anchor="en")
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    base = engine_logits(tiny_llama, enc)
    en, de = bind_lang([tpl], "en")[0], bind_lang([tpl], "de")[0]
    assert en.is_noop and en.skips_anchor and not de.is_noop
    assert torch.equal(engine_logits(tiny_llama, enc, en), base)
    edits = [("post", 1, clas_ref(ns.mask("partial_shared")[1], ns.mask("specific", "de")[1], 1.0, 2.0, 0.9), "all")]
    check_against_reference(tiny_llama, [de], edits)
    # default: the anchor is steered with its own neurons
    steered = ClasSteering(ns, layers=[1], beta=2.0, gamma=0.9).for_lang("en")
    assert not steered.is_noop and not torch.equal(engine_logits(tiny_llama, enc, steered), base)
    # suppress="all" does not depend on the language, but skipping the anchor does
    free = ClasSteering(ns, layers=[1], suppress="all", steer_anchor=False)
    assert free.needs_lang and free.for_lang("en").is_noop and not free.for_lang("de").is_noop
    assert not ClasSteering(ns, layers=[1], suppress="all").needs_lang
    # an anchor the neurons do not know is still a no-op, not an error
    assert ClasSteering(ns, steer_anchor=False, anchor="fr").for_lang("fr").is_noop
    with pytest.raises(DataValidationError, match="Unknown language 'fr'"):
        ClasSteering(ns).for_lang("fr")
    d = json.loads(json.dumps(en.to_dict()))
    assert d["steer_anchor"] is False and ClasSteering.from_dict(d).is_noop


@pytest.mark.parametrize("which", ["boost_only", "suppress_only"])
def test_one_term_controls_match_reference(tiny, which):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    L = shape[0] - 1
    if which == "boost_only":
        iv = ClasSteering.boost_only(ns, "de", beta=1.5, layers=[L])
        beta, gamma = 1.5, 0.0
    else:
        iv = ClasSteering.suppress_only(ns, "de", gamma=0.9, layers=[L])
        beta, gamma = 0.0, 0.9
    assert (iv.beta, iv.gamma) == (beta, gamma)
    same = ClasSteering(ns, "de", beta=beta, gamma=gamma, layers=[L])
    assert iv.to_dict() == same.to_dict()
    edits = [("post", L, clas_ref(ns.mask("partial_shared")[L], ns.mask("specific", "de")[L], 1.0, beta, gamma), "all")]
    check_against_reference(tiny, [iv], edits)


def test_random_like_neurons_are_steered_as_given(tiny_llama, real):
    """ClasSteering accepts a random_like set (same metadata) and steers exactly its masks."""
    from clas_lens.neurons.random_like import random_like

    _, ns = real
    r = random_like(ns, seed=7)
    assert not torch.equal(r.mask("partial_shared"), ns.mask("partial_shared"))
    iv = ClasSteering(r, "de", layers=[0, 1], beta=2.0, gamma=1.0)
    edits = [("post", l, clas_ref(r.mask("partial_shared")[l], r.mask("specific", "de")[l], 1.0, 2.0, 1.0), "all") for l in (0, 1)]
    check_against_reference(tiny_llama, [iv], edits)


def test_deprecated_specific_and_old_dicts(tiny_llama):
    """specific= still works (DeprecationWarning); a dict saved before suppress/edit_bos loads with
    suppress=<its specific> and edit_bos=True, the behaviour it was saved with."""
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    with pytest.warns(DeprecationWarning, match="suppress"):
        old = ClasSteering(ns, "de", specific="all")
    assert old.suppress == "all"
    with pytest.warns(DeprecationWarning):
        assert old.specific == "all"
    saved = json.loads(json.dumps(ClasSteering(ns, "de", layers=[1], beta=2.0, gamma=0.5, suppress="all").to_dict()))
    saved["specific"] = saved.pop("suppress")
    for k in ("edit_bos", "steer_anchor", "anchor", "active"):
        saved.pop(k)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        back = ClasSteering.from_dict(saved)
    assert back.suppress == "all" and back.edit_bos is True and back.steer_anchor is True
    edits = [("post", 1, clas_ref(ns.mask("partial_shared")[1], ns.mask("specific")[1], 1.0, 2.0, 0.5), "all", True)]
    check_against_reference(tiny_llama, [back], edits)
