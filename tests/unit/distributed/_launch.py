"""The one two-process gloo launch shared by the sharded-statistics and sharded-sweep tests.

``launched`` (in conftest.py) builds the model folder, runs part of a sweep in one process,
then spawns :func:`worker` on two processes (env:// on a free localhost port, one thread
each); every multi-process check reads what the workers wrote.
"""
from __future__ import annotations

import functools
import json
import os
import socket
from pathlib import Path

import torch

from _steering_toys import FakeNeurons, ToyTask
from clas_lens.distributed import distributed_collect_stats, distributed_run_sweep, finish_distributed, init_distributed
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sweep_setup(model):
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


def worker(rank: int, folder: str, out: str, port: int) -> None:
    """One process of the group: statistics, error cases and a resumed sweep."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import clas_lens.distributed.sharded_stats as sharded
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
        real = sharded.collect_stats

        @functools.wraps(real)  # keeps the signature the argument check reads
        def broken(*a, **k):
            raise RuntimeError("boom on rank 1")

        if rank == 1:
            sharded.collect_stats = broken
        try:  # collecting fails on rank 1 only: rank 0 hears about it
            distributed_collect_stats(model, TEXTS, batch_size=4)
        except Exception as e:
            report["failure"] = f"{type(e).__name__}: {e}"
        finally:
            sharded.collect_stats = real
        grid, neurons, tasks = sweep_setup(model)
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
