"""Resumable sweeps over steering methods, strengths, layers, tasks and languages.

A :class:`SweepGrid` enumerates **cells**: one (task, language, method, parameters) each, plus
one :data:`~clas_lens.vocab.UNSTEERED` cell per (task, language). A cell's key is a stable
string, e.g. ``task=nli|lang=de|method=clas|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4``, so
cells can be split over processes or machines (``run_sweep(..., cells=grid.cells(rank=r,
world_size=w), shard=f"rank{r}")``, or :func:`clas_lens.distributed.distributed_run_sweep`)
and merged by :func:`load_sweep`.

Modules:

* :mod:`~clas_lens.sweep.grid`: :class:`SweepGrid`, :class:`SweepCell` and cell keys;
* :mod:`~clas_lens.sweep.methods`: the one registry of sweep methods (``clas``, ``int_mu``,
  ``deactivate``, ``lape_deactivate``, ``diffmean``), each a builder of a cell's interventions;
* :mod:`~clas_lens.sweep.store`: the sweep directory (``grid.json`` identity, fsynced
  ``cells*.jsonl``, torn-line repair, resumption);
* :mod:`~clas_lens.sweep.run`: :func:`run_sweep` and :func:`load_sweep`.

Paired differences against the unsteered cell are computed when loading, so cells stay
independent of each other.

>>> SweepGrid(langs=["de"], methods=["deactivate"]).cells()[0].key
'task=nli|lang=en|method=unsteered'
"""
from __future__ import annotations

from clas_lens.sweep.grid import PARAM_FIELDS, SweepCell, SweepGrid, format_param, layer_option, mu_value
from clas_lens.sweep.methods import (
    METHODS,
    SWEEP_METHODS,
    SweepInputs,
    SweepMethod,
    build_interventions,
    cell_interventions,
    method_names,
    register_sweep_method,
    sweep_method,
)
from clas_lens.sweep.run import COLUMNS, load_sweep, load_tasks, run_sweep, select_cells
from clas_lens.sweep.store import (
    canonical_record,
    cell_files,
    cell_record,
    finished_records,
    hash_tensors,
    identity_differences,
    neurons_fingerprint,
    open_sweep_dir,
    repair_tail,
    sweep_identity,
)
from clas_lens.vocab import UNSTEERED

#: Deprecated name of the unsteered cell's method; it is :data:`clas_lens.vocab.UNSTEERED` now.
BASELINE = UNSTEERED

__all__ = [
    "SweepGrid",
    "SweepCell",
    "SweepInputs",
    "SweepMethod",
    "METHODS",
    "SWEEP_METHODS",
    "COLUMNS",
    "PARAM_FIELDS",
    "BASELINE",
    "run_sweep",
    "load_sweep",
    "cell_interventions",
    "build_interventions",
    "register_sweep_method",
    "sweep_method",
    "method_names",
    "select_cells",
    "load_tasks",
    "format_param",
    "layer_option",
    "mu_value",
    "sweep_identity",
    "identity_differences",
    "neurons_fingerprint",
    "hash_tensors",
    "cell_files",
    "repair_tail",
    "finished_records",
    "canonical_record",
    "open_sweep_dir",
    "cell_record",
]
