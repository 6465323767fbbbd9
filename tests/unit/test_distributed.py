"""clas_lens.distributed: two gloo processes on CPU give the one-process statistics and sweep.

One module-scoped launch (torch.multiprocessing.spawn, env:// on a free localhost port, one
thread per process) runs every multi-process check; one torchrun launch checks the
``clas-lens stats`` command. The model folder is built once here and loaded in each worker.
"""
from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _steering_toys import FakeNeurons, ToyTask
from clas_lens.distributed import (
    DistributedError,
    _batch_plan,
    backend_for,
    deal,
    distributed_collect_stats,
    distributed_run_sweep,
    finish_distributed,
    init_distributed,
    stats_plan,
)
from clas_lens.errors import MismatchError

WORLD = 2
TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps in the garden today.",
           "Hello world", "A b c d e f g", "1 2 3 4 5 6 7 8 9", "The end.", "Tuesday and Wednesday",
           "Why?", "It rains in the morning and in the evening."],
    "de": ["Der Hund schläft im Garten.", "Die Katze", "Eins zwei drei vier fünf", "Hallo", "Guten Tag",
           "Montag", "Das Ende.", "Es regnet am Morgen.", "Warum?", "Ein Tag", "Zwei Tage und drei Nächte"],
    "ru": ["Привет, как дела?", "Мир", "Кошка сидит на коврике.", "Один два три", "Собака", "Дом",
           "Понедельник", "Конец.", "Почему?", "Утро", "Идёт дождь утром и вечером."],
}
STATS_KW = dict(site="act", batch_size=2, threshold=0.05, per_sentence=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_setup(model):
    from clas_lens.sites import neuron_sites
    from clas_lens.sweep import SweepGrid

    grid = SweepGrid(langs=["de", "ru"], tasks=["toy"], methods=["clas", "deactivate"], betas=[0.0, 2.0],
                     gammas=[1.0], layers=["last:1", [0]], n_boot=50)
    return grid, FakeNeurons(neuron_sites(model).shape), {"toy": ToyTask(n=6)}


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| over the finite entries (NaN rows must match)."""
    assert torch.equal(a.isnan(), b.isnan())
    f = b.isfinite()
    return float((a[f] - b[f]).abs().max() / b[f].abs().max().clamp(min=1e-300))


def _worker(rank: int, folder: str, out: str, port: int) -> None:
    """One process of the group: statistics, error cases and a resumed sweep."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import clas_lens.stats
    from clas_lens.models import load_model

    out = Path(out)
    ctx = init_distributed("cpu")
    try:
        assert ctx.world_size == WORLD and ctx.backend == "gloo" and ctx.initialised_here
        model = load_model(folder)
        s = distributed_collect_stats(model, TEXTS, **STATS_KW)
        # one batch in all: rank 1 collects nothing and contributes zeros
        small = distributed_collect_stats(model, {"en": TEXTS["en"][:2]}, batch_size=2)
        if ctx.is_main:
            s.save(out / "stats.safetensors")
            small.save(out / "small.safetensors")
        report: dict = {"n_tokens": {l: s.n_tokens(l) for l in s.langs}}
        try:  # ranks disagree on an argument: every rank raises, none hangs
            distributed_collect_stats(model, TEXTS, threshold=0.1 * rank)
        except MismatchError as e:
            report["mismatch"] = str(e)
        real = clas_lens.stats.collect_stats

        @functools.wraps(real)  # keeps the signature the argument check reads
        def broken(*a, **k):
            raise RuntimeError("boom on rank 1")

        if rank == 1:
            clas_lens.stats.collect_stats = broken
        try:  # collecting fails on rank 1 only: rank 0 hears about it
            distributed_collect_stats(model, TEXTS, batch_size=4)
        except Exception as e:
            report["failure"] = f"{type(e).__name__}: {e}"
        finally:
            clas_lens.stats.collect_stats = real
        grid, neurons, tasks = _sweep_setup(model)
        df = distributed_run_sweep(model, out / "sweep_run", grid, neurons=neurons, tasks=tasks, progress=False)
        report["sweep_rows"] = len(df)
        report["sweep_cells"] = df.attrs["n_cells"]
        (out / f"rank{rank}.json").write_text(json.dumps(report))
    except BaseException:
        import traceback

        traceback.print_exc()
        finish_distributed(ctx, wait=False)  # the other rank may be inside a collective
        raise
    finish_distributed(ctx)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Build the model folder, run a partial sweep in one process, then the 2-process group."""
    from clas_lens.models import load_model
    from clas_lens.sweep import run_sweep
    from clas_lens.testing import tiny_model_folder

    root = tmp_path_factory.mktemp("dist")
    folder = tiny_model_folder("llama", seed=0, folder=root / "model")
    model = load_model(folder)
    grid, neurons, tasks = _sweep_setup(model)
    # 3 cells done by one process before: the group must skip them
    run_sweep(model, root / "sweep_run", grid, neurons=neurons, tasks=tasks, cells=grid.cells()[:3], progress=False)
    torch.multiprocessing.spawn(_worker, args=(str(folder), str(root), _free_port()), nprocs=WORLD, join=True)
    return root, model


def test_stats_equal_one_process(launched):
    from clas_lens.stats import NeuronStats, collect_stats

    root, model = launched
    ref = collect_stats(model, TEXTS, **STATS_KW)
    got = NeuronStats.load(root / "stats.safetensors")
    assert got.langs == ref.langs and got.meta() == ref.meta()  # tokens, hashes, ids, versions ...
    worst = 0.0
    for lang in ref.langs:
        assert got.n_tokens(lang) == ref.n_tokens(lang)
        assert torch.equal(got.active_prob(lang), ref.active_prob(lang))
        for f in ("mean", "std"):
            worst = max(worst, rel_diff(getattr(got, f)(lang), getattr(ref, f)(lang)))
        assert torch.equal(got.sentence_means(lang).nan_to_num(), ref.sentence_means(lang).nan_to_num())
        assert got.sentence_ids(lang) == ref.sentence_ids(lang)
    print(f"distributed stats: max relative difference {worst:.2e}")
    assert worst <= 1e-9
    small = NeuronStats.load(root / "small.safetensors")
    ref_small = collect_stats(model, {"en": TEXTS["en"][:2]}, batch_size=2)
    assert small.n_tokens("en") == ref_small.n_tokens("en")
    assert rel_diff(small.mean("en"), ref_small.mean("en")) <= 1e-9


def test_errors_reach_every_rank(launched):
    root, _ = launched
    reports = [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert reports[0]["n_tokens"] == reports[1]["n_tokens"]
    for rep in reports:
        assert "Ranks disagree on the options" in rep["mismatch"]
    assert reports[1]["failure"] == "RuntimeError: boom on rank 1"
    assert reports[0]["failure"].startswith("DistributedError: collect_stats failed on rank 1 (RuntimeError: boom")


def test_sweep_equals_one_process_and_resumes(launched, tmp_path):
    from clas_lens.io import read_jsonl
    from clas_lens.sweep import load_sweep, run_sweep

    root, model = launched
    grid, neurons, tasks = _sweep_setup(model)
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


def test_cli_stats_under_torchrun(launched, tmp_path):
    from clas_lens.cli import main
    from clas_lens.data.corpus import ParallelCorpus
    from clas_lens.stats import NeuronStats

    root, _ = launched
    corpus = tmp_path / "corpus.jsonl"
    ParallelCorpus.from_dict(TEXTS, check_langid=False).to_jsonl(corpus)
    args = ["stats", "--model", str(root / "model"), "--corpus", str(corpus), "--langs", "en,ru", "--limit", "9",
            "--batch-size", "2", "--site", "post", "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "one.safetensors")]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD), "--master-addr",
           "127.0.0.1", "--master-port", str(_free_port()), "-m", "clas_lens", *args, "--out", str(tmp_path / "two.safetensors")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1 and "on 2 process(es)" in proc.stdout  # rank 0 only
    one, two = NeuronStats.load(tmp_path / "one.safetensors"), NeuronStats.load(tmp_path / "two.safetensors")
    assert one.langs == two.langs == ["en", "ru"] and one.meta() == two.meta()
    for lang in one.langs:
        assert rel_diff(two.mean(lang), one.mean(lang)) <= 1e-9
        assert rel_diff(two.std(lang), one.std(lang)) <= 1e-9
        assert torch.equal(two.active_prob(lang), one.active_prob(lang))


# ---------------------------------------------------------------------------------------------
# in-process: plan, fallbacks, validation
# ---------------------------------------------------------------------------------------------


def test_plan_reproduces_collect_stats_batches(tiny_llama):
    from clas_lens.stats import sentence_batches as _batches

    texts = TEXTS["de"]
    got = [list(idx) for idx, _ in _batches(tiny_llama, texts, batch_size=3, padding_side="right",
                                            max_length=None, truncation="warn", keep_bos=False)]
    assert got == _batch_plan(texts, 3)
    for world in (1, 2, 3, 5, 40):
        plan = stats_plan(TEXTS, 3, world)
        assert len(plan) == world
        for lang, t in TEXTS.items():
            assert sorted(i for p in plan for i in p.get(lang, [])) == list(range(len(t)))
            for p in plan:  # a rank's share is whole batches, in one-process order
                idx = p.get(lang, [])
                mine = [b for b in _batch_plan(t, 3) if b[0] in idx]
                assert [i for b in mine for i in b] == idx
    assert stats_plan(TEXTS, 3, 2)[0]["en"][:3] == _batch_plan(TEXTS["en"], 3)[0]


def test_deal_partitions():
    items = list(range(11))
    shares = [deal(items, r, 4) for r in range(4)]
    assert sorted(x for s in shares for x in s) == items and shares[0] == [0, 4, 8]
    with pytest.raises(ValueError, match="rank 4"):
        deal(items, 4, 4)


def test_one_process_fallbacks(tiny_llama, tmp_path, monkeypatch):
    from clas_lens.stats import collect_stats
    from clas_lens.sweep import run_sweep

    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = init_distributed("cuda")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.device, ctx.initialised_here) == (1, 0, True, "cuda:0", False)
    finish_distributed(ctx)  # nothing to do
    a = distributed_collect_stats(tiny_llama, TEXTS, batch_size=3)
    b = collect_stats(tiny_llama, TEXTS, batch_size=3)
    assert a.meta() == b.meta() and all(torch.equal(a.mean(l), b.mean(l)) for l in TEXTS)
    with pytest.raises(TypeError, match="batchsize"):
        distributed_collect_stats(tiny_llama, TEXTS, batchsize=3)
    grid, neurons, tasks = _sweep_setup(tiny_llama)
    grid = type(grid).from_dict({**grid.to_dict(), "langs": ["de"], "methods": ["deactivate"], "layers": ["last:1"]})
    df = distributed_run_sweep(tiny_llama, tmp_path / "a", grid, neurons=neurons, tasks=tasks, progress=False)
    assert df.equals(run_sweep(tiny_llama, tmp_path / "b", grid, neurons=neurons, tasks=tasks, progress=False))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="MASTER_ADDR"):
        init_distributed("cpu")
    assert backend_for("cpu") == "gloo" and backend_for(torch.device("cpu")) == "gloo"


def test_cli_parser_has_info_and_stats():
    from clas_lens.cli import _parse_layers, _split_list, build_parser

    p = build_parser()
    a = p.parse_args(["stats", "--out", "x.safetensors", "--langs", "en,de", "ru", "--layers", "last:2"])
    assert a.func.__name__ == "cmd_stats" and _split_list(a.langs) == ["en", "de", "ru"]
    assert _parse_layers("0,2,-1") == [0, 2, -1] and _parse_layers("last:2") == "last:2"
    assert p.parse_args(["info"]).func.__name__ == "cmd_info"
