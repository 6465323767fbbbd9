"""SetNeurons, Deactivate and AddNeurons (clas_lens/steering/neuron_edits.py) against the
reference; the deprecated ``alpha=`` / ``scale=`` names of ``strength`` and old saved dicts.
Their shared base NeuronEdit (clas_lens/steering/edit_base.py) is covered here too, through
them; their ``edit_bos`` option is tested in test_positions.py, where the BOS rule lives."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.steering import AddNeurons, Deactivate, SetNeurons, intervention_from_dict

from ._reference import TEXTS, FakeNeurons, FakeStats, add_ref, check_against_reference, engine_logits, set_ref


@pytest.mark.parametrize("kind", ["set", "deactivate", "add", "int_mu"])
@pytest.mark.parametrize("site", ["post", "act"])
def test_neuron_edits_match_reference(tiny, kind, site):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape, p_spec=0.25)
    mask = ns.mask("specific", "en")
    g = torch.Generator().manual_seed(3)
    values = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if kind == "set":
        iv = SetNeurons(mask, value=values, strength=0.6, site=site)
        fns = [set_ref(mask[l], values[l], 0.6) for l in range(shape[0])]
    elif kind == "int_mu":
        stats = FakeStats(shape, site=site)
        iv = SetNeurons.int_mu(ns, stats, "en")
        assert iv.site == site
        fns = [set_ref(mask[l], stats.mean("en")[l], 1.0) for l in range(shape[0])]
    elif kind == "deactivate":
        iv = Deactivate(mask, site=site)
        fns = [set_ref(mask[l], torch.zeros(shape[1]), 1.0) for l in range(shape[0])]
    else:
        iv = AddNeurons(mask, values.float(), strength=0.5, site=site)
        fns = [add_ref(mask[l], values[l].float(), 0.5) for l in range(shape[0])]
    edits = [(site, l, fns[l], "all") for l in range(shape[0])]
    check_against_reference(tiny, [iv], edits)


def test_neuron_edit_errors(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    with pytest.raises(MismatchError, match="site"):
        SetNeurons(ns, value="mean", stats=FakeStats(shape, site="act"), site="post")
    # NaN values for masked neurons (layers the statistics did not measure)
    nan_stats = FakeStats(shape)
    nan_stats._mean["de"][0] = float("nan")
    with pytest.raises(DataValidationError, match="NaN"):
        SetNeurons.int_mu(ns, nan_stats, "de").hooks(tiny_llama)
    with pytest.raises(DataValidationError, match="category"):
        Deactivate(ns, category="some")
    with pytest.raises(DataValidationError, match="a mask must be"):
        Deactivate([[True]])
    with pytest.raises(DataValidationError, match="strength=nan"):
        AddNeurons(ns.mask("specific", "en"), 1.0, strength=float("nan"))


def _deprecated(fn):
    with pytest.warns(DeprecationWarning, match="strength"):
        return fn()


@pytest.mark.parametrize("cls,old", [(SetNeurons, "alpha"), (Deactivate, "alpha"), (AddNeurons, "scale")])
def test_deprecated_strength_keyword(tiny_llama, cls, old):
    """``alpha=`` / ``scale=`` still work, warn, and steer exactly like ``strength=``."""
    shape = neuron_sites(tiny_llama).shape
    mask = FakeNeurons(shape).mask("specific", "de")
    extra = {"value": 2.0} if cls is SetNeurons else {}
    new = cls(mask, strength=0.4, **extra)
    old_iv = _deprecated(lambda: cls(mask, **{old: 0.4}, **extra))
    assert old_iv.strength == 0.4 and old_iv.to_dict() == new.to_dict()
    assert _deprecated(lambda: getattr(old_iv, old)) == 0.4
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    assert torch.equal(engine_logits(tiny_llama, enc, old_iv), engine_logits(tiny_llama, enc, new))
    assert not torch.equal(engine_logits(tiny_llama, enc, new), engine_logits(tiny_llama, enc))
    with pytest.raises(DataValidationError, match="strength= only"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cls(mask, strength=0.4, **{old: 0.4}, **extra)
    # for_lang / dataclasses.replace go through the new name without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert new.for_lang("de").strength == 0.4


def test_deprecated_int_mu_alpha(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns, stats = FakeNeurons(shape), FakeStats(shape)
    new = SetNeurons.int_mu(ns, stats, "de", strength=0.5)
    old = _deprecated(lambda: SetNeurons.int_mu(ns, stats, "de", alpha=0.5))
    assert old.strength == 0.5
    enc = encode(tiny_llama, TEXTS)
    assert torch.equal(engine_logits(tiny_llama, enc, old), engine_logits(tiny_llama, enc, new))


@pytest.mark.parametrize("cls,old", [(SetNeurons, "alpha"), (Deactivate, "alpha"), (AddNeurons, "scale")])
def test_old_saved_dicts_load(tiny_llama, cls, old):
    """A dict saved before the rename (``alpha`` / ``scale`` keys) loads to the same edit."""
    shape = neuron_sites(tiny_llama).shape
    ns, stats = FakeNeurons(shape), FakeStats(shape)
    extra = {"value": "mean", "stats": stats} if cls is SetNeurons else {}
    if cls is AddNeurons:
        extra = {"amount": "mean", "stats": stats}
    iv = cls(ns, target_lang="ru", strength=0.3, **extra)
    saved = json.loads(json.dumps(iv.to_dict()))
    saved[old] = saved.pop("strength")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        back = intervention_from_dict(saved)
        back_cls = cls.from_dict(saved)
    assert type(back) is cls and back.strength == 0.3 and back_cls.strength == 0.3
    assert back.to_dict() == iv.to_dict()
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    assert torch.equal(engine_logits(tiny_llama, enc, back), engine_logits(tiny_llama, enc, iv))
