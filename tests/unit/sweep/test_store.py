"""clas_lens.sweep.store: cell files, torn-line repair, legacy names and the directory identity."""
from __future__ import annotations

import json

import pytest

from _steering_toys import FakeNeurons, FakeStats
from clas_lens.errors import MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.sweep import SweepGrid, SweepInputs
from clas_lens.sweep.store import (
    canonical_record,
    cell_files,
    finished_records,
    identity_differences,
    open_sweep_dir,
    repair_tail,
    sweep_identity,
)


def test_repair_and_finished_records(tmp_path):
    (tmp_path / "cells.rank0.jsonl").write_text('{"key": "a", "method": "clas"}\n{"key": "b", "method": "clas"}\n')
    (tmp_path / "cells.rank1.jsonl").write_text('{"key": "b", "method": "clas"}\n{"key": "c", "me')
    repair_tail(tmp_path / "cells.rank1.jsonl")
    assert (tmp_path / "cells.rank1.jsonl").read_text() == '{"key": "b", "method": "clas"}\n'
    repair_tail(tmp_path / "missing.jsonl")  # nothing to do
    assert [p.name for p in cell_files(tmp_path)] == ["cells.rank0.jsonl", "cells.rank1.jsonl"]
    assert [r["key"] for r in finished_records(tmp_path)] == ["a", "b"]  # first record per key


def test_legacy_baseline_records_read_as_unsteered(tmp_path):
    old = {"key": "task=t|lang=de|method=baseline", "task": "t", "lang": "de", "method": "baseline",
           "params": {}, "rows": [{"condition": "baseline", "metric": "accuracy"}]}
    (tmp_path / "cells.jsonl").write_text(json.dumps(old) + "\n")
    (rec,) = finished_records(tmp_path)
    assert rec["key"] == "task=t|lang=de|method=unsteered" and rec["method"] == "unsteered"
    assert rec["rows"][0]["condition"] == "unsteered"
    same = {"key": "x", "method": "clas"}
    assert canonical_record(same) is same


def test_identity_and_its_differences(tiny_llama, tmp_path):
    shape = neuron_sites(tiny_llama).shape
    grid = SweepGrid(langs=["de"], methods=["clas", "int_mu"])
    inputs = SweepInputs(FakeNeurons(shape), FakeStats(shape))
    ident = sweep_identity(tiny_llama, grid, inputs)
    assert ident["stats_sha256"] and ident["neurons_sha256"] and "quantiles_sha256" not in ident
    assert identity_differences(ident, ident) == []
    other = sweep_identity(tiny_llama, grid, SweepInputs(FakeNeurons(shape, seed=3), FakeStats(shape)))
    assert any(d.startswith("neuron set") for d in identity_differences(ident, other))
    # a grid.json of an older release (bootstrap alpha, no strengths/confidence) is the same grid
    old = dict(ident, grid={k: v for k, v in ident["grid"].items() if k not in ("confidence", "strengths")})
    old["grid"]["alpha"] = 0.05
    assert identity_differences(old, ident) == []
    open_sweep_dir(tmp_path, old)
    open_sweep_dir(tmp_path, ident)  # resumes
    changed = sweep_identity(tiny_llama, SweepGrid(langs=["de"], methods=["clas", "int_mu"], strengths=[2.0]), inputs)
    with pytest.raises(MismatchError, match=r"grid\.strengths"):
        open_sweep_dir(tmp_path, changed)
    open_sweep_dir(tmp_path, changed, restart=True)
