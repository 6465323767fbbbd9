"""Value tables (clas_lens/steering/values.py): quantile names through clas_lens.specs, per-language
tables, compact storage; SetNeurons with quantile values against the reference."""
from __future__ import annotations

import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.steering import SetNeurons
from clas_lens.steering.values import pick_quantile, resolve_table, table_for, table_from_dict, table_to_dict

from ._reference import LANGS, FakeNeurons, check_against_reference, set_ref


def test_quantile_values(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    g = torch.Generator().manual_seed(5)
    q = {l: torch.randn((3,) + shape, generator=g, dtype=torch.float64) for l in LANGS}
    iv = SetNeurons(ns, value="p90", quantiles=q, quantile_levels=["median", 0.75, "p90"], target_lang="de")
    mask = ns.mask("specific", "de")
    edits = [("post", l, set_ref(mask[l], q["de"][2][l], 1.0), "all") for l in range(2)]
    check_against_reference(tiny_llama, [iv], edits)
    med = SetNeurons(ns, value="median", quantiles=q, quantile_levels=[0.5, 0.75, 0.9])
    assert torch.equal(med.for_lang("ru").values["ru"], q["ru"][0])
    with pytest.raises(DataValidationError, match="quantile_levels"):
        SetNeurons(ns, value="median", quantiles=q)
    with pytest.raises(DataValidationError, match="not collected"):
        SetNeurons(ns, value="p95", quantiles=q, quantile_levels=[0.5, 0.75, 0.9])


def test_value_errors():
    ns = FakeNeurons((2, 64))
    with pytest.raises(DataValidationError, match="stats"):
        SetNeurons(ns, value="mean", target_lang="de")
    with pytest.raises(DataValidationError, match="unknown value"):
        SetNeurons(ns.mask("partial_shared"), value="mode")
    with pytest.raises(DataValidationError, match="value must be"):
        SetNeurons(ns.mask("partial_shared"), value=True)
    with pytest.raises(DataValidationError, match="needs quantiles"):
        SetNeurons(ns.mask("partial_shared"), value="p75")


def test_resolve_table_kinds():
    kw = dict(what="SetNeurons", langs=None, stats=None, quantiles=None, quantile_levels=None)
    assert resolve_table("zero", **kw) == 0.0 and resolve_table(3, **kw) == 3.0
    t = resolve_table(torch.ones(2, 3), **kw)
    assert t.dtype == torch.float64
    per = resolve_table({"en": 1, "de": torch.zeros(2, 3)}, **kw)
    assert per["en"] == 1.0 and per["de"].dtype == torch.float64
    assert table_for(per, "en", "SetNeurons") == 1.0
    with pytest.raises(DataValidationError, match="target_lang"):
        table_for(per, None, "SetNeurons")
    q = torch.arange(12.0).reshape(2, 2, 3)
    assert torch.equal(pick_quantile(q, 0.5, ["median", "p90"], "en"), q[0].double())
    assert torch.equal(pick_quantile(q[0], 0.9, None, "en"), q[0].double())  # a single level


def test_table_round_trip_stores_only_masked_values():
    v = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    where = torch.tensor([[True, False, False], [False, False, True]])
    d = table_to_dict({"en": v, "de": 2.0}, lambda lang: where)
    back = table_from_dict(d)
    assert back["de"] == 2.0
    assert back["en"][where].tolist() == [0.0, 5.0] and torch.isnan(back["en"][~where]).all()
