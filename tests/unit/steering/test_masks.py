"""MaskSet and mask sources (clas_lens/steering/masks.py)."""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.steering import MaskSet
from clas_lens.steering.masks import (
    check_shape,
    get_mask,
    is_neuron_set,
    source_from_dict,
    source_is_per_lang,
    source_langs,
    source_to_dict,
    source_union,
)

from ._reference import FakeNeurons


def test_maskset_from_neurons_round_trip():
    ns = FakeNeurons((2, 64))
    ms = MaskSet.from_neurons(ns, ["partial_shared", "all_shared", "specific"])
    assert ms.langs == ns.langs and ms.method == "fake" and ms.params == {"seed": 0}
    assert ms.shape == (2, 64)
    back = MaskSet.from_dict(json.loads(json.dumps(ms.to_dict())))
    for lang in ns.langs:
        assert torch.equal(back.mask("specific", lang), ns.mask("specific", lang))
    assert torch.equal(back.mask("specific"), ns.mask("specific"))
    assert torch.equal(back.mask("all_shared"), ns.mask("all_shared"))
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        back.mask("specific", "xx")
    with pytest.raises(DataValidationError, match="no 'non_activated' mask"):
        back.mask("non_activated")
    with pytest.raises(DataValidationError, match="no masks"):
        MaskSet(langs=[]).shape


def test_sources():
    ns = FakeNeurons((2, 64))
    t = ns.mask("partial_shared")
    per = {l: ns.mask("specific", l) for l in ns.langs}
    assert is_neuron_set(ns) and not is_neuron_set(t)
    assert source_langs(t) is None and source_langs(per) == ns.langs and source_langs(ns) == ns.langs
    assert not source_is_per_lang(t, "specific") and source_is_per_lang(per, "all_shared")
    assert source_is_per_lang(ns, "specific") and not source_is_per_lang(ns, "partial_shared")
    assert torch.equal(get_mask(per, "specific", "de", "X"), per["de"])
    assert torch.equal(get_mask(ns, "partial_shared", None, "X"), t)
    with pytest.raises(DataValidationError, match="one mask per language"):
        get_mask(per, "specific", None, "X")
    with pytest.raises(DataValidationError, match="language-specific"):
        get_mask(ns, "specific", None, "X")
    with pytest.raises(DataValidationError, match="a mask must be"):
        get_mask([1], "specific", None, "X")
    assert torch.equal(source_union(per, "specific"), ns.mask("specific"))
    for src in (t, per):
        back = source_from_dict(json.loads(json.dumps(source_to_dict(src, ["specific"]))))
        assert torch.equal(source_union(back, "specific"), source_union(src, "specific"))
    back = source_from_dict(source_to_dict(ns, ["specific"]))
    assert isinstance(back, MaskSet) and torch.equal(back.mask("specific", "ru"), ns.mask("specific", "ru"))
    with pytest.raises(DataValidationError, match="Unknown mask encoding"):
        source_from_dict({"kind": "other"})


def test_shape_mismatch_names_both_shapes(tiny_llama):
    check_shape(tiny_llama, torch.zeros(2, 64, dtype=torch.bool), "X")
    with pytest.raises(MismatchError, match=r"\(2, 128\).*\(2, 64\)"):
        check_shape(tiny_llama, torch.zeros(2, 128, dtype=torch.bool), "X")


def test_maskset_keeps_per_language_activity():
    """"active" masks (used by ClasSteering(shared="partial_active")) per language, round trip."""
    g = torch.Generator().manual_seed(1)
    active = {l: torch.rand(2, 64, generator=g) < 0.4 for l in ["en", "de"]}

    class WithActive(FakeNeurons):
        def mask(self, category, lang=None):
            if category == "active":
                return active[lang].clone()
            return super().mask(category, lang)

    ns = WithActive((2, 64), langs=["en", "de"])
    ms = MaskSet.from_neurons(ns, ["partial_shared", "active"])
    assert set(ms.active) == {"en", "de"} and "active" not in ms.categories
    back = MaskSet.from_dict(json.loads(json.dumps(ms.to_dict())))
    assert torch.equal(back.mask("active", "de"), active["de"])
    assert torch.equal(back.mask("active"), active["en"] | active["de"])
    assert "active" not in MaskSet.from_neurons(ns, ["partial_shared"]).to_dict()  # only when held
    with pytest.raises(DataValidationError, match="no per-language 'active' masks"):
        MaskSet.from_neurons(ns, ["partial_shared"]).mask("active", "de")
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        back.mask("active", "xx")
