"""The intervention registry and dict round trips (clas_lens/steering/registry.py)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.steering import (
    AddNeurons,
    ClasSteering,
    Deactivate,
    DiffMeanSteering,
    Intervention,
    SetNeurons,
    UniformGain,
    as_interventions,
    bind_lang,
    intervention_from_dict,
    interventions_from_dicts,
    interventions_to_dicts,
    register_intervention,
    registered_interventions,
    residual_means,
)
from clas_lens.steering import registry

from ._reference import LANGS, TEXTS, FakeNeurons, FakeStats, engine_logits


def test_round_trip_through_json(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"], "ru": ["Привет"]}, layers=[0, 1])
    ivs = [
        ClasSteering(ns, layers=[1], beta=0.5, gamma=0.5),
        SetNeurons.int_mu(ns, stats),
        Deactivate(ns, layers="last:1"),
        AddNeurons({l: ns.mask("specific", l) for l in LANGS}, "mean", stats=stats, strength=0.3),
        SetNeurons(ns.mask("partial_shared"), value="zero", positions="last"),
        DiffMeanSteering(None, "en", layers=[1], strength=2.0, means=rm),
        ClasSteering(ns, layers=[0], beta=0.7, suppress="others", edit_bos=True, steer_anchor=False),
        UniformGain({"en": 1.0, "de": 1.3, "ru": 0.8}, layers=[1], positions="last"),
    ]
    dicts = json.loads(json.dumps(interventions_to_dicts(ivs)))
    back = interventions_from_dicts(dicts)
    assert [type(b) for b in back] == [type(i) for i in ivs]
    assert json.loads(json.dumps(interventions_to_dicts(back))) == dicts
    # compact: a SetNeurons mask is stored as indices, values only where the mask is set
    mu = dicts[1]
    assert len(mu["values"]["per_lang"]["de"]["tensor"]["layers"]["0"]["index"]) == int(ns.mask("specific", "de")[0].sum())
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    for lang in ("de", "ru"):
        a = engine_logits(tiny_llama, enc, bind_lang(ivs, lang))
        b = engine_logits(tiny_llama, enc, bind_lang(back, lang))
        assert torch.equal(a, b), lang


def test_registered_names():
    names = registered_interventions()
    assert names[:6] == ["ClasSteering", "SetNeurons", "Deactivate", "AddNeurons", "DiffMeanSteering", "UniformGain"]
    assert len(names) == len(set(names))


def test_duplicate_name_is_refused():
    before = registered_interventions()

    @dataclasses.dataclass(eq=False)
    class Deactivate(Intervention):  # same name as the built-in one, another class
        pass

    with pytest.raises(DataValidationError, match="'Deactivate' is already registered"):
        register_intervention(Deactivate)
    assert registered_interventions() == before
    assert registry._REGISTRY["Deactivate"].__module__ == "clas_lens.steering.neuron_edits"
    # registering the very same class again is harmless
    from clas_lens.steering import Deactivate as Builtin

    assert register_intervention(Builtin) is Builtin and registered_interventions() == before


def test_a_new_intervention_type_round_trips():
    @dataclasses.dataclass(eq=False)
    class NoopForTest(Intervention):
        label: str = "x"

        def hooks(self, model):
            return []

        def to_dict(self):
            return {"type": "NoopForTest", "label": self.label}

        @classmethod
        def from_dict(cls, d):
            return cls(label=d["label"])

    register_intervention(NoopForTest)
    try:
        assert "NoopForTest" in registered_interventions()
        assert intervention_from_dict({"type": "NoopForTest", "label": "y"}).label == "y"
    finally:
        registry._REGISTRY.pop("NoopForTest")


def test_unknown_type_and_non_interventions():
    with pytest.raises(DataValidationError, match="Unknown intervention type 'Nope'"):
        intervention_from_dict({"type": "Nope"})
    with pytest.raises(DataValidationError, match="Not an intervention: int"):
        as_interventions([1])
    iv = Deactivate(torch.eye(2, 64, dtype=torch.bool))
    assert as_interventions(None) == [] and as_interventions(iv) == [iv]
    assert [type(x) for x in as_interventions([iv.to_dict(), (None, [iv])])] == [Deactivate, Deactivate]
