"""clas_lens.sweep.run: run_sweep / load_sweep -- resume, identity checks, shards, torn lines,
kill -9, directories of older releases, and every registered method in a real run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from _steering_toys import FakeNeurons, FakeStats, ToyTask
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.io import read_json, read_jsonl
from clas_lens.sites import neuron_sites
from clas_lens.sweep import COLUMNS, METHODS, SweepGrid, load_sweep, run_sweep

UNIT = Path(__file__).resolve().parents[1]  # tests/unit, where _steering_toys lives


def _grid(**kw):
    base = dict(langs=["de"], tasks=["toy"], betas=[0.0, 2.0], gammas=[0.0, 1.0], layers=["last:1"], n_boot=50)
    base.update(kw)
    return SweepGrid(**base)


def _lines(run_dir):
    return [json.loads(l) for l in (Path(run_dir) / "sweep" / "cells.jsonl").read_text().splitlines()]


def test_run_resume_and_table(tiny_llama, tmp_path):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    task = ToyTask()
    grid = _grid()
    df = run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": task}, progress=False)
    n_cells = len(grid.cells())
    assert n_cells == 2 * (1 + 4) and len(task.calls) == n_cells
    assert list(df.columns) == COLUMNS and len(df) == n_cells
    assert df.attrs["n_cells"] == df.attrs["n_total"] == n_cells
    recs = _lines(tmp_path)
    assert len(recs) == n_cells and len({r["key"] for r in recs}) == n_cells
    ident = read_json(tmp_path / "sweep" / "grid.json")
    assert ident["grid"] == json.loads(json.dumps(grid.to_dict()))
    assert ident["model_info"]["weights_sha256"]
    # zero strength (beta = gamma = 0): identical items, diff 0
    zero = df[(df.method == "clas") & (df.beta == 0.0) & (df.gamma == 0.0)]
    assert len(zero) == 2 and (zero["diff"] == 0).all() and (zero["p_value"] == 1).all()
    assert df[df.method == "unsteered"]["diff"].isna().all()
    assert set(df[df.method == "unsteered"]["condition"]) == {"unsteered"}
    strong = df[(df.method == "clas") & (df.beta == 2.0) & (df.gamma == 1.0)]
    assert strong["diff"].notna().all()
    # a rerun does nothing and returns the same table
    again = run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": task}, progress=False)
    assert len(task.calls) == n_cells and len(_lines(tmp_path)) == n_cells
    assert again.equals(df) and load_sweep(tmp_path).equals(df)


def test_directory_of_an_older_release_loads_and_resumes(tiny_llama, tmp_path):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    grid = _grid()
    ref = run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": ToyTask()}, progress=False)
    # rewrite it as an older release wrote it: "baseline" cells, bootstrap alpha in grid.json
    path = tmp_path / "sweep" / "cells.jsonl"
    path.write_text(path.read_text().replace("method=unsteered", "method=baseline")
                    .replace('"method": "unsteered"', '"method": "baseline"')
                    .replace('"condition": "unsteered"', '"condition": "baseline"'))
    ident = read_json(tmp_path / "sweep" / "grid.json")
    for k in ("confidence", "strengths"):
        del ident["grid"][k]
    ident["grid"]["alpha"] = 0.05
    (tmp_path / "sweep" / "grid.json").write_text(json.dumps(ident))
    assert "baseline" in path.read_text()
    old = load_sweep(tmp_path)
    assert old.equals(ref) and "baseline" not in set(old.method) | set(old.condition)
    task = ToyTask()
    again = run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": task}, progress=False)
    assert task.calls == [] and again.equals(ref)


def test_identity_checks_and_restart(tiny_llama, tiny_gpt2, tmp_path):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    task = ToyTask()
    grid = _grid(betas=[1.0], gammas=[0.5])
    run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": task}, progress=False)
    with pytest.raises(MismatchError, match=r"grid\.betas: \[1\.0\] in the directory, \[1\.0, 2\.0\] now"):
        run_sweep(tiny_llama, tmp_path, _grid(betas=[1.0, 2.0], gammas=[0.5]), neurons=ns, tasks={"toy": task})
    with pytest.raises(MismatchError, match="neuron set"):
        run_sweep(tiny_llama, tmp_path, grid, neurons=FakeNeurons(neuron_sites(tiny_llama).shape, seed=9), tasks={"toy": task})
    gpt_ns = FakeNeurons(neuron_sites(tiny_gpt2).shape)
    with pytest.raises(MismatchError, match="model"):
        run_sweep(tiny_gpt2, tmp_path, grid, neurons=gpt_ns, tasks={"toy": task})
    n = len(task.calls)
    new = _grid(betas=[1.0, 2.0], gammas=[0.5])
    df = run_sweep(tiny_llama, tmp_path, new, neurons=ns, tasks={"toy": task}, restart=True, progress=False)
    assert len(task.calls) - n == len(new.cells()) == len(df)
    assert read_json(tmp_path / "sweep" / "grid.json")["grid"]["betas"] == [1.0, 2.0]


def test_methods_subsets_and_shards(tiny_llama, tmp_path):
    shape = neuron_sites(tiny_llama).shape
    ns, stats = FakeNeurons(shape), FakeStats(shape)
    task = ToyTask()
    grid = _grid(methods=["clas", "int_mu", "deactivate"], betas=[1.0], gammas=[1.0], mu_values=["mean", "zero"])
    cells = grid.cells()
    for r in range(2):
        run_sweep(tiny_llama, tmp_path, grid, neurons=ns, stats=stats, tasks={"toy": task},
                  cells=grid.cells(rank=r, world_size=2), shard=f"rank{r}", progress=False)
    files = sorted(p.name for p in (tmp_path / "sweep").glob("cells*.jsonl"))
    assert files == ["cells.rank0.jsonl", "cells.rank1.jsonl"]
    df = load_sweep(tmp_path)
    assert len(df) == len(cells) and df["key"].is_unique
    assert set(df["method"]) == {"unsteered", "clas", "int_mu", "deactivate"}
    assert set(df[df.method == "int_mu"]["value_kind"]) == {"mean", "zero"}
    n = len(task.calls)
    run_sweep(tiny_llama, tmp_path, grid, neurons=ns, stats=stats, tasks={"toy": task}, progress=False)
    assert len(task.calls) == n  # every cell already done in some shard
    with pytest.raises(DataValidationError, match="not in this grid"):
        run_sweep(tiny_llama, tmp_path, grid, neurons=ns, stats=stats, tasks={"toy": task}, cells=["task=toy|lang=xx|method=unsteered"])
    with pytest.raises(DataValidationError, match="stats"):
        run_sweep(tiny_llama, tmp_path / "other", grid, neurons=ns, tasks={"toy": task})
    with pytest.raises(DataValidationError, match="shard"):
        run_sweep(tiny_llama, tmp_path, grid, neurons=ns, stats=stats, tasks={"toy": task}, shard="a/b")


def test_every_registered_method_runs(tiny_llama, tmp_path):
    from clas_lens.stats import collect_stats, residual_means

    from _steering_toys import TEXTS

    stats = collect_stats(tiny_llama, TEXTS, site="act")
    rm = residual_means(tiny_llama, TEXTS, layers="last:1")
    q_levels = ["p75"]
    import torch

    q = {l: torch.rand(1, *neuron_sites(tiny_llama).shape, generator=torch.Generator().manual_seed(2)) for l in TEXTS}
    grid = _grid(methods=list(METHODS), betas=[1.0], gammas=[1.0], mu_values=["mean", "p75"], strengths=[8.0])
    inputs = dict(neurons=FakeNeurons(neuron_sites(tiny_llama).shape), stats=stats, quantiles=q,
                  quantile_levels=q_levels, residual_means=rm)
    df = run_sweep(tiny_llama, tmp_path, grid, tasks={"toy": ToyTask()}, progress=False, **inputs)
    assert set(df.method) == {"unsteered", *METHODS} and df.attrs["n_cells"] == df.attrs["n_total"]
    assert set(df[df.method == "diffmean"]["strength"]) == {8.0}
    ident = read_json(tmp_path / "sweep" / "grid.json")
    assert {"stats_sha256", "quantiles_sha256", "lape_sha256", "residual_means_sha256"} <= set(ident)
    with pytest.raises(MismatchError, match="residual means"):
        other = residual_means(tiny_llama, {l: t[:2] for l, t in TEXTS.items()}, layers="last:1")
        run_sweep(tiny_llama, tmp_path, grid, tasks={"toy": ToyTask()}, **{**inputs, "residual_means": other})


def test_torn_last_line_is_repaired(tiny_llama, tmp_path):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    grid = _grid()
    cells = grid.cells()
    run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": ToyTask()}, cells=cells[:3], progress=False)
    path = tmp_path / "sweep" / "cells.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"key": "task=toy|lang=de|method=clas", "rows": [{"val')  # a crash mid-append
    task = ToyTask()
    df = run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": task}, progress=False)
    assert len(task.calls) == len(cells) - 3
    lines = path.read_text().splitlines()
    assert len(lines) == len(cells) and all(json.loads(l) for l in lines)
    assert len(df) == len(cells)


def test_progress_bar_counts_cells(tiny_llama, tmp_path, capfd):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    grid = _grid()
    run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": ToyTask()}, cells=grid.cells()[:2], progress=False)
    capfd.readouterr()
    run_sweep(tiny_llama, tmp_path, grid, neurons=ns, tasks={"toy": ToyTask()}, progress=True)
    err = capfd.readouterr().err
    n = len(grid.cells())
    assert "sweep cells" in err and f"2/{n}" in err and f"{n}/{n}" in err


def test_load_sweep_needs_a_sweep(tmp_path):
    with pytest.raises(DataValidationError, match="no grid.json"):
        load_sweep(tmp_path)


CHILD = """
import sys, torch
sys.path.insert(0, {here!r})
torch.set_num_threads(1)
from _steering_toys import FakeNeurons, ToyTask
from clas_lens.sites import neuron_sites
from clas_lens.sweep import SweepGrid, run_sweep
from clas_lens.testing import tiny_model
model = tiny_model("llama")
grid = SweepGrid(**{grid!r})
print("start", flush=True)
run_sweep(model, {run!r}, grid, neurons=FakeNeurons(neuron_sites(model).shape),
          tasks={{"toy": ToyTask(delay=0.5)}}, progress=False)
"""


@pytest.mark.slow
def test_kill_9_mid_sweep_loses_at_most_one_cell(tiny_llama, tmp_path):
    grid_kw = dict(langs=["de"], tasks=["toy"], betas=[0.0, 1.0, 2.0], gammas=[0.5, 1.0], layers=["last:1"], n_boot=20)
    grid = SweepGrid(**grid_kw)
    n_cells = len(grid.cells())
    run = str(tmp_path / "run")
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(here=str(UNIT), grid=grid_kw, run=run)))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cells_path = Path(run) / "sweep" / "cells.jsonl"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if cells_path.exists() and len(read_jsonl(cells_path)) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("the child sweep produced no cells in time")
        time.sleep(0.2)  # land inside a cell
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {r["key"] for r in read_jsonl(cells_path)}
    assert 3 <= len(before) < n_cells
    task = ToyTask()
    df = run_sweep(tiny_llama, run, grid, neurons=FakeNeurons(neuron_sites(tiny_llama).shape), tasks={"toy": task}, progress=False)
    assert len(task.calls) == n_cells - len(before)  # finished cells were kept, not redone
    keys = [json.loads(l)["key"] for l in cells_path.read_text().splitlines()]
    assert len(keys) == n_cells and len(set(keys)) == n_cells
    assert sorted(keys) == sorted(c.key for c in grid.cells())
    assert len(df) == n_cells and df["key"].is_unique


def _sweep_table(model, run_dir, grid, inputs, *, reuse):
    df = run_sweep(model, run_dir, grid, progress=False, reuse=reuse, **inputs)
    items = {r["key"]: r["items"] for p in (Path(run_dir) / "sweep").glob("cells*.jsonl") for r in read_jsonl(p)}
    return df.sort_values(["key", "metric"]).reset_index(drop=True), items


def test_prefix_reuse_gives_the_same_sweep(tiny, tmp_path, monkeypatch):
    """Every method on real tasks (choice, with calibration / length normalisation; language
    modelling): the same per-item values and scores within 1e-5 with and without prefix reuse.
    (Generation runs in full either way; the tiny models' context is too short for qa.)"""
    import contextlib

    import torch

    import clas_lens.sweep.run as run_mod
    from clas_lens.data.tasks import load_task
    from clas_lens.stats import collect_stats, residual_means

    from _steering_toys import TEXTS

    texts = {l: TEXTS[l] for l in ("en", "de")}
    inputs = dict(
        neurons=FakeNeurons(neuron_sites(tiny).shape, langs=["en", "de"]), stats=collect_stats(tiny, texts, site="act"),
        residual_means=residual_means(tiny, texts, layers="last:1"),
        tasks={
            "cloze": load_task("cloze", langs=["en", "de"], calibrate=True),
            "completion": load_task("completion", langs=["en", "de"], length_norm="tokens"),
            "lm": load_task("lm", langs=["en", "de"]),
        },
    )
    grid = SweepGrid(langs=["de"], tasks=list(inputs["tasks"]), methods=list(METHODS), betas=[1.0], gammas=[1.0],
                     mu_values=["mean"], strengths=[8.0], layers=["last:1"], limit=3, n_boot=20, batch_size=8)
    memos = []
    real = run_mod.reuse_prefix

    @contextlib.contextmanager
    def spy(model, start, **kw):
        with real(model, start, **kw) as memo:
            yield memo
        memos.append(memo)

    monkeypatch.setattr(run_mod, "reuse_prefix", spy)
    fast, fast_items = _sweep_table(tiny, tmp_path / "fast", grid, inputs, reuse=True)
    n_conditions = 1 + len(METHODS)
    assert len(memos) == 6  # one scope per (task, lang), starting at the edited (last) block
    assert all(m.start == tiny.cfg.n_layers - 1 and m.fallbacks == 0 for m in memos)
    assert all(m.hits == (n_conditions - 1) * m.misses > 0 for m in memos)  # the first cell stores, the rest replay
    full, full_items = _sweep_table(tiny, tmp_path / "full", grid, inputs, reuse=False)
    assert len(memos) == 6
    assert list(fast["key"]) == list(full["key"]) and list(fast["metric"]) == list(full["metric"])
    for col in ("value", "ci_low", "ci_high", "diff"):
        a, b = (torch.tensor(df[col].to_numpy()) for df in (fast, full))
        assert torch.allclose(a, b, atol=1e-5, rtol=0, equal_nan=True), col
    assert set(fast_items) == set(full_items)
    for key, items in full_items.items():
        assert items["item_id"] == fast_items[key]["item_id"]
        for metric in set(items) - {"item_id"}:
            a, b = torch.tensor(items[metric]), torch.tensor(fast_items[key][metric])
            assert torch.allclose(a, b, atol=1e-5, rtol=0), (key, metric)
