"""A sweep's cells over the processes of a group; only rank 0 writes the run directory.

The cells of a :class:`~clas_lens.sweep.SweepGrid` that the run directory does not hold yet
are dealt round-robin to the ranks; each rank computes its cells, rank 0 gathers the results
and appends them to ``run_dir/sweep/cells.jsonl`` in grid order. Finished cells are recognised
by their key whatever rank -- or world size -- computed them, so a run resumes after a crash on
any number of processes.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch.distributed as dist
from tqdm.auto import tqdm

from clas_lens.distributed.group import (
    all_gather_objects,
    broadcast_object,
    deal,
    global_rank,
    group_size_rank,
    raise_if_any_failed,
)
from clas_lens.errors import MismatchError
from clas_lens.io import append_jsonl, read_jsonl, sha256_json
from clas_lens.sweep import SweepInputs, finished_records, load_sweep, load_tasks, run_sweep, select_cells, sweep_identity

__all__ = ["distributed_run_sweep"]


def distributed_run_sweep(
    model,
    run_dir,
    grid,
    *,
    neurons: Any,
    stats: Any = None,
    quantiles: Any = None,
    quantile_levels: Sequence[Any] | None = None,
    residual_means: Any = None,
    restart: bool = False,
    cells: Sequence[Any] | None = None,
    tasks: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    group=None,
):
    """:func:`clas_lens.sweep.run_sweep` with its cells spread over a process group.

    Every rank calls it with the same model, grid and inputs (neuron set, statistics ...).
    Rank 0 checks ``run_dir`` as ``run_sweep`` does (identity of grid, model and inputs;
    ``restart``) and tells every rank which cells are finished; the unfinished ones (of
    ``cells``, default the whole grid) are dealt round-robin to the ranks. They are computed in
    rounds of one cell per rank, each by ``run_sweep`` itself in a private scratch directory, so
    a cell gives exactly the record it gives in one process. After each round rank 0 gathers
    the records and appends them to ``run_dir/sweep/cells.jsonl`` in grid order -- only rank 0
    writes into ``run_dir`` (which therefore only needs to exist on rank 0's machine), and a
    crash loses at most the round in flight. Finished cells are skipped whatever rank or world
    size computed them: a sweep resumes on any number of processes, or in one.

    Returns :func:`~clas_lens.sweep.load_sweep`'s table on every rank. Without an
    initialised process group this is ``run_sweep(model, run_dir, grid, ...)``.

    Raises:
        MismatchError: ranks hold different models, grids or inputs, or ``run_dir`` holds
            another sweep (as ``run_sweep``).
        DistributedError: a cell failed on another rank (the failing rank raises its own
            error, after the round's other records were saved); every rank raises.

    >>> import tempfile, torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import MaskSet
    >>> from clas_lens.sweep import SweepGrid
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> grid = SweepGrid(langs=["de"], tasks=["cloze"], limit=2, n_boot=50)
    >>> df = distributed_run_sweep(tiny_model("llama"), tempfile.mkdtemp(), grid, neurons=ns, progress=False)
    >>> df.attrs["n_cells"] == df.attrs["n_total"] == 4
    True
    """
    inputs = dict(neurons=neurons, stats=stats, quantiles=quantiles, quantile_levels=quantile_levels,
                  residual_means=residual_means)
    world, rank = group_size_rank(group)
    if world == 1:
        return run_sweep(model, run_dir, grid, restart=restart, cells=cells, tasks=tasks, progress=progress, **inputs)

    # Same model, grid and inputs on every rank.
    error: BaseException | None = None
    try:
        ident = sha256_json(sweep_identity(model, grid, SweepInputs(**inputs)))
    except Exception as e:
        error, ident = e, None
    raise_if_any_failed(error, group, "checking the sweep's identity")
    idents = all_gather_objects(ident, group)
    if len(set(idents)) > 1:
        bad = [r for r, v in enumerate(idents) if v != idents[0]]
        raise MismatchError(
            f"Ranks {bad} hold a different model, grid, neuron set or statistics than rank 0: every "
            "rank must call distributed_run_sweep with the same ones."
        )

    # Rank 0 checks/initialises run_dir exactly as run_sweep does (it runs no cell here) and
    # reads which cells are finished.
    sweep_dir = Path(run_dir) / "sweep"
    done: list[str] | None = None
    error = None
    if rank == 0:
        try:
            run_sweep(model, run_dir, grid, restart=restart, cells=[], tasks=tasks, progress=False, **inputs)
            done = [rec["key"] for rec in finished_records(sweep_dir)]
        except Exception as e:
            error = e
    raise_if_any_failed(error, group, "opening the run directory on rank 0")
    done_keys = set(broadcast_object(done, group))

    index = {c.key: i for i, c in enumerate(grid.cells())}
    selected = select_cells(grid, cells)
    todo = [c for c in selected if c.key not in done_keys]
    mine = deal(todo, rank, world)
    n_rounds = -(-len(todo) // world)

    # Tasks are loaded once per rank and handed to every per-cell run_sweep.
    task_objs: dict[str, Any] = dict(tasks or {})
    error = None
    try:
        task_objs.update(load_tasks(grid, mine, tasks))
    except Exception as e:
        error = e
    raise_if_any_failed(error, group, "loading the sweep's tasks")

    scratch = Path(tempfile.mkdtemp(prefix=f"clas_lens_sweep_rank{rank}_"))
    show = rank == 0 and (progress if progress is not None else len(selected) >= 4)
    try:
        with tqdm(total=len(selected), initial=len(selected) - len(todo), desc="sweep cells", unit="cell", disable=not show) as bar:
            for r in range(n_rounds):
                records: list[dict] = []
                error = None
                if r < len(mine):
                    try:
                        run_sweep(model, scratch, grid, tasks=task_objs, cells=[mine[r]], restart=True, progress=False,
                                  **inputs)
                        records = read_jsonl(scratch / "sweep" / "cells.jsonl")
                    except Exception as e:
                        error = e
                report = (records, None if error is None else f"{type(error).__name__}: {error}")
                gathered: list[Any] | None = [None] * world if rank == 0 else None
                dist.gather_object(report, gathered, dst=global_rank(group, 0), group=group)
                if rank == 0:
                    got = sorted((rec for recs, _ in gathered for rec in recs), key=lambda rec: index[rec["key"]])
                    for rec in got:
                        append_jsonl(sweep_dir / "cells.jsonl", rec)
                    bar.update(len(got))
                raise_if_any_failed(error, group, f"sweep cell (round {r + 1} of {n_rounds})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = load_sweep(run_dir) if rank == 0 else None
    return broadcast_object(table, group)
