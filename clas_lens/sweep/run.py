"""Running a sweep's unfinished cells (:func:`run_sweep`) and reading its table (:func:`load_sweep`).

Cells are independent of each other: each is one :func:`clas_lens.evaluation.predict` under the cell's
interventions, written as one line when finished. Paired differences against the
(task, language)'s unsteered cell are computed when loading, on the same items.

The cells of one (task, language) run one after the other on the same token batches, inside
:func:`clas_lens.prefix.reuse_prefix`: the blocks before the first layer the group's conditions
edit (:func:`clas_lens.prefix.best_start`) run once per batch, by the first cell, and are
replayed for the others (same results; a condition that edits an earlier block runs in full).
Conditions are not batched together: the steering hooks act on a whole forward, so two
conditions cannot share one.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from clas_lens.data.tasks import load_task
from clas_lens.errors import DataValidationError, NonFiniteError
from clas_lens.evaluation import paired_row, predict
from clas_lens.io import append_jsonl, read_json
from clas_lens.prefix import best_start, first_layer_of, reuse_prefix
from clas_lens.steering import steer
from clas_lens.sweep.grid import SweepCell, SweepGrid, format_param
from clas_lens.sweep.methods import SweepInputs, build_interventions
from clas_lens.sweep.store import cell_record, failed_record, finished_records, open_sweep_dir, sweep_identity
from clas_lens.vocab import UNSTEERED

__all__ = ["COLUMNS", "run_sweep", "load_sweep", "select_cells", "load_tasks"]

#: Columns of :func:`load_sweep`'s result, in order.
COLUMNS = [
    "task", "lang", "method", "condition", "alpha", "beta", "gamma", "strength", "layers", "value_kind",
    "metric", "value", "ci_low", "ci_high", "n", "diff", "diff_ci_low", "diff_ci_high", "p_value", "key", "error",
]


def select_cells(grid: SweepGrid, cells: Sequence[SweepCell | str] | None) -> list[SweepCell]:
    """``cells`` (cells or keys) as cells of ``grid``, in the order given (default: every cell).

    >>> g = SweepGrid(langs=["de"], methods=["deactivate"])
    >>> [c.method for c in select_cells(g, ["task=nli|lang=de|method=deactivate|layers=last:4"])]
    ['deactivate']
    """
    every = grid.cells()
    if cells is None:
        return every
    by_key = {c.key: c for c in every}
    out = []
    for c in cells:
        k = c.key if isinstance(c, SweepCell) else str(c)
        if k not in by_key:
            raise DataValidationError(f"Cell {k!r} is not in this grid.")
        out.append(by_key[k])
    return out


def load_tasks(grid: SweepGrid, cells: Sequence[SweepCell], tasks: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{name: Task}`` for the grid's tasks that ``cells`` need: from ``tasks`` where given,
    else :func:`~clas_lens.data.tasks.load_task` with the grid's languages and task options.

    >>> g = SweepGrid(langs=["de"], tasks=["cloze"])
    >>> list(load_tasks(g, g.cells()))
    ['cloze']
    """
    out: dict[str, Any] = {}
    for name in grid.tasks:
        if tasks is not None and name in tasks:
            out[name] = tasks[name]
        elif any(c.task == name for c in cells):
            out[name] = load_task(name, langs=grid.all_langs, **grid.task_options.get(name, {}))
    return out


def run_sweep(
    model,
    run_dir: str | os.PathLike,
    grid: SweepGrid,
    *,
    neurons: Any,
    stats: Any = None,
    quantiles: Any = None,
    quantile_levels: Sequence[Any] | None = None,
    residual_means: Any = None,
    restart: bool = False,
    cells: Sequence[SweepCell | str] | None = None,
    tasks: Mapping[str, Any] | None = None,
    shard: str | None = None,
    progress: bool | None = None,
    reuse: bool = True,
) -> pd.DataFrame:
    """Run every unfinished cell of ``grid`` and return :func:`load_sweep`'s table.

    Args:
        model: a TransformerBridge.
        run_dir: the run directory; results go to ``run_dir/sweep/``.
        grid: the :class:`~clas_lens.sweep.grid.SweepGrid`.
        neurons: the NeuronSet (``identify_neurons``) CLAS / Int-mu / deactivation use.
        stats: NeuronStats for Int-mu means and the LAPE neurons of ``lape_deactivate``.
        quantiles, quantile_levels: :func:`clas_lens.collect_quantiles` output, for Int-mu
            values ``"median"`` / ``"pNN"``.
        residual_means: :func:`clas_lens.steering.residual_means`, for ``diffmean``.
        restart: discard earlier results in ``run_dir/sweep`` and start again (also when the
            grid, model or inputs changed).
        cells: run only these cells (``SweepCell`` or keys; e.g. ``grid.cells(rank=r,
            world_size=w)``), in the order given, the cells of each (task, language) together
            (at the place of its first cell).
        tasks: ``{name: Task}`` to use instead of ``load_task(name, langs=grid.all_langs)``.
        shard: write to ``cells.<shard>.jsonl`` (one file per process when several processes
            share ``run_dir``); finished cells of every shard are skipped.
        progress: tqdm bar of cells done (default: on unless there are fewer than 4 cells).
        reuse: replay the unsteered blocks across the cells of a (task, language)
            (:mod:`clas_lens.prefix`); False runs every cell in full (same results, slower).

    Raises:
        MismatchError: ``run_dir/sweep`` holds a sweep of another grid, model or input.

    >>> import tempfile, torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import MaskSet
    >>> model = tiny_model("llama")
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> grid = SweepGrid(langs=["de"], tasks=["cloze"], betas=[0.5], limit=2, n_boot=50)
    >>> run = tempfile.mkdtemp()
    >>> df = run_sweep(model, run, grid, neurons=ns, progress=False)
    >>> sorted(set(df["method"])), len(load_sweep(run)) == len(df)
    (['clas', 'unsteered'], True)
    """
    if shard is not None and (not shard or any(c in shard for c in "/\\ ")):
        raise DataValidationError(f"shard={shard!r}: use a short name without slashes or spaces, e.g. 'rank0'.")
    sweep_dir = Path(run_dir) / "sweep"
    cells_path = sweep_dir / ("cells.jsonl" if shard is None else f"cells.{shard}.jsonl")
    inputs = SweepInputs(neurons, stats, quantiles, quantile_levels, residual_means)
    open_sweep_dir(sweep_dir, sweep_identity(model, grid, inputs), restart=restart)

    selected = select_cells(grid, cells)
    done = {rec["key"] for rec in finished_records(sweep_dir)}
    todo = [c for c in selected if c.key not in done]
    task_objs = load_tasks(grid, todo, tasks)
    # Build every intervention (and its hooks) first: errors come before any forward pass.
    n_layers = int(model.cfg.n_layers)
    groups: dict[tuple[str, str], list] = {}
    for c in todo:
        ivs = build_interventions(c, grid, inputs)
        names = [name for iv in ivs for name, _ in iv.hooks(model)]
        task_objs[c.task].items(c.lang)
        groups.setdefault((c.task, c.lang), []).append((c, ivs, first_layer_of(names, n_layers)))

    show = progress if progress is not None else len(selected) >= 4
    with tqdm(total=len(selected), initial=len(selected) - len(todo), desc="sweep cells", unit="cell", disable=not show) as bar:
        for members in groups.values():
            start = best_start([f for _, _, f in members], n_layers) if reuse else 0
            with reuse_prefix(model, start) if start > 0 else contextlib.nullcontext():
                for cell, ivs, _ in members:
                    task = task_objs[cell.task]
                    t0 = time.perf_counter()
                    try:
                        with steer(model, *ivs):
                            preds = predict(model, task, cell.lang, limit=grid.limit, batch_size=grid.batch_size)
                        rec = cell_record(cell, task.metrics, preds, grid, time.perf_counter() - t0)
                    except NonFiniteError as e:  # recorded as failed (column "error"); the sweep goes on
                        warnings.warn(f"sweep cell {cell.key} failed: {e}", RuntimeWarning, stacklevel=2)
                        rec = failed_record(cell, task.metrics, str(e), time.perf_counter() - t0)
                    append_jsonl(cells_path, rec)
                    bar.update(1)
    return load_sweep(run_dir)


def load_sweep(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of every finished cell (all shards), with paired diffs vs the unsteered cell.

    One row per (cell, metric); ``diff`` etc. compare a cell with its (task, lang) unsteered
    cell on the same items (NaN for unsteered cells and while that cell is not finished).
    ``attrs``: ``grid``, ``model_info``, ``n_cells`` (finished), ``n_total`` (in the grid).
    A cell that failed (non-finite scores) has NaN values and its cause in ``error``.
    Directories written by older releases (``method=baseline`` cells) load the same way.
    """
    sweep_dir = Path(run_dir) / "sweep"
    grid_path = sweep_dir / "grid.json"
    if not grid_path.exists():
        raise DataValidationError(f"{sweep_dir} holds no sweep (no grid.json); run run_sweep first.")
    ident = read_json(grid_path)
    grid = SweepGrid.from_dict(ident["grid"])
    recs = finished_records(sweep_dir)
    base = {(r["task"], r["lang"]): r for r in recs if r["method"] == UNSTEERED}
    rows = []
    for rec in recs:
        params = rec.get("params", {})
        b = base.get((rec["task"], rec["lang"]))
        for row in rec["rows"]:
            out = dict(row)
            out.update(
                method=rec["method"],
                alpha=params.get("alpha", math.nan),
                beta=params.get("beta", math.nan),
                gamma=params.get("gamma", math.nan),
                strength=params.get("strength", math.nan),
                layers=format_param(params["layers"]) if "layers" in params else None,
                value_kind=format_param(params["value"]) if "value" in params else None,
                key=rec["key"],
                error=rec.get("failed"),
            )
            m = row["metric"]
            if rec["method"] == UNSTEERED or b is None or rec.get("failed") or b.get("failed"):
                out.update(diff=math.nan, diff_ci_low=math.nan, diff_ci_high=math.nan, p_value=math.nan)
            else:
                bv = dict(zip(b["items"]["item_id"], b["items"][m]))
                sv = dict(zip(rec["items"]["item_id"], rec["items"][m]))
                if set(bv) != set(sv):
                    raise DataValidationError(f"Cell {rec['key']} and its unsteered cell scored different items.")
                ids = list(bv)
                out.update(paired_row([bv[i] for i in ids], [sv[i] for i in ids], n_boot=grid.n_boot, seed=grid.seed,
                                      confidence=grid.confidence))
            rows.append(out)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["grid"] = ident["grid"]
    df.attrs["model_info"] = ident.get("model_info")
    df.attrs["n_cells"] = len(recs)
    df.attrs["n_total"] = len(grid.cells())
    return df
