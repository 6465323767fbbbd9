"""clas_lens.distributed.sharded_sweep: two gloo processes give the one-process sweep, skip the
cells finished before, and a one-process group is run_sweep itself."""
from __future__ import annotations

import json

from _steering_toys import ToyTask
from clas_lens.distributed import distributed_run_sweep
from distributed._launch import WORLD, sweep_setup


def test_sweep_equals_one_process_and_resumes(launched, tmp_path):
    from clas_lens.io import read_jsonl
    from clas_lens.sweep import load_sweep, run_sweep

    root, model = launched
    grid, neurons, tasks = sweep_setup(model)
    ref = run_sweep(model, tmp_path, grid, neurons=neurons, tasks=tasks, progress=False)
    got = load_sweep(root / "sweep_run")
    keys = [r["key"] for r in read_jsonl(root / "sweep_run" / "sweep" / "cells.jsonl")]
    assert keys == [c.key for c in grid.cells()]  # each cell once, in grid order
    assert got.attrs["n_cells"] == got.attrs["n_total"] == len(keys)
    assert got.equals(ref), (got.compare(ref) if got.shape == ref.shape else (got.shape, ref.shape))
    reports = [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert all(r["sweep_rows"] == len(ref) and r["sweep_cells"] == len(keys) for r in reports)
    # resuming in one process: nothing left to do
    task = ToyTask(n=6)
    again = run_sweep(model, root / "sweep_run", grid, neurons=neurons, tasks={"toy": task}, progress=False)
    assert task.calls == [] and again.equals(ref)


def test_one_process_fallback(tiny_llama, tmp_path, monkeypatch):
    from clas_lens.sweep import run_sweep

    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    grid, neurons, tasks = sweep_setup(tiny_llama)
    grid = type(grid).from_dict({**grid.to_dict(), "langs": ["de"], "methods": ["deactivate"], "layers": ["last:1"]})
    df = distributed_run_sweep(tiny_llama, tmp_path / "a", grid, neurons=neurons, tasks=tasks, progress=False)
    assert df.equals(run_sweep(tiny_llama, tmp_path / "b", grid, neurons=neurons, tasks=tasks, progress=False))
