"""``run_pipeline(cfg)``: every step of a run config into its run directory, resumably."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from clas_lens.config import RunConfig
from clas_lens.pipeline.inputs import check_inputs
from clas_lens.data.corpus import load_corpus
from clas_lens.io import atomic_write_json
from clas_lens.models import load_model, model_info
from clas_lens.pipeline.report import make_figures
from clas_lens.pipeline.rundir import (
    check_compatible,
    claim_run_dir,
    git_commit,
    package_versions,
    prepare_run_dir,
    read_marker,
    run_dir_of,
    write_csv,
)
from clas_lens.pipeline.steps import (
    check_gain_metric,
    clusters_step,
    divergence_step,
    load_eval_tasks,
    neurons_step,
    quantiles_step,
    residual_means_step,
    stats_step,
    step_timer,
    sweep_step,
)

__all__ = ["run_pipeline", "report_dropped", "check_config"]


def report_dropped(corpus, run_dir: Path, log: Callable[[str], None] = print) -> Path | None:
    """Log the corpus items ``drop_incomplete`` left out and list them, with the languages each
    lacks, in ``run_dir/corpus_dropped.csv`` (nothing when none was dropped)."""
    dropped = corpus.info.get("dropped") or []
    if not dropped:
        return None
    rows = [{**d, "missing": " ".join(d["missing"]), "empty": " ".join(d["empty"])} for d in dropped]
    path = write_csv(pd.DataFrame(rows, columns=["id", "missing", "empty", "reason"]), run_dir / "corpus_dropped.csv")
    log(f"corpus: dropped {len(dropped)} of {len(dropped) + len(corpus)} items missing a language "
        f"(e.g. id {dropped[0]['id']!r}: {dropped[0]['reason']}); the list is in {path}")
    return path


def run_pipeline(
    cfg: RunConfig,
    *,
    restart: bool = False,
    figures: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run every step of ``cfg`` into ``cfg.run_dir``; return the run directory.

    A rerun with the same config skips finished work; a different config against the same
    directory raises :class:`~clas_lens.errors.MismatchError` unless ``restart=True``.

    >>> cfg = RunConfig.from_dict({"run": {"name": "doc"}})
    >>> cfg.run_dir.name
    'doc'
    """
    t_start = time.perf_counter()
    # Everything but the model first: the run name, paths, devices, the tasks' data and the corpus.
    run_dir_of(cfg)
    for note in check_inputs(cfg):
        log(note)
    tasks = load_eval_tasks(cfg)
    check_gain_metric(cfg, tasks)
    corpus_all = load_corpus(cfg.corpus.name, langs=cfg.corpus.langs, drop_incomplete=cfg.corpus.drop_incomplete)
    steps: dict[str, float] = {}
    with claim_run_dir(cfg, restart=restart, log=log) as (run_dir, identity):
        _run_steps(cfg, run_dir, identity, corpus_all, tasks, figures=figures, log=log, steps=steps)
        atomic_write_json(run_dir / "timing.json", {"seconds": time.perf_counter() - t_start,
                                                    "steps": steps, "threads": torch.get_num_threads()})
    return run_dir


def _run_steps(cfg: RunConfig, run_dir: Path, identity: str, corpus_all, tasks, *, figures: bool, log,
               steps: dict[str, float]) -> None:
    report_dropped(corpus_all, run_dir, log)
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    torch.manual_seed(cfg.run.seed)
    m = cfg.model
    with step_timer(steps, "load_model"):
        model = load_model(m.name, device=m.device, dtype=m.dtype, device_map=m.device_map or None)
    atomic_write_json(
        run_dir / "run.json",
        {
            "config": cfg.to_dict(),
            "config_sha256": identity,
            "model": model_info(model).to_dict(),
            "versions": package_versions(),
            "git_commit": git_commit(),
        },
    )

    def limited(n: int):
        return corpus_all if not n or n >= len(corpus_all) else corpus_all.subset(ids=corpus_all.ids[:n])

    stats_corpus = limited(cfg.corpus.stats_limit)
    with step_timer(steps, "stats"):
        stats = stats_step(cfg, model, stats_corpus, run_dir, log)
    with step_timer(steps, "neurons"):
        neurons = neurons_step(cfg, stats, run_dir)
    with step_timer(steps, "quantiles_and_means"):
        quantiles, levels = quantiles_step(cfg, model, stats_corpus, neurons, run_dir, log)
        means = residual_means_step(cfg, model, stats_corpus, run_dir, log)
    sweep = sweep_step(cfg, model, run_dir, log, neurons=neurons, stats=stats, quantiles=quantiles,
                       quantile_levels=levels, residual_means=means, tasks=tasks, steps=steps)
    with step_timer(steps, "clusters"):
        reps, _, deltas = clusters_step(cfg, model, limited(cfg.corpus.cluster_limit), neurons, run_dir, log)
    with step_timer(steps, "divergence"):
        divergence_step(cfg, sweep, deltas, reps, run_dir, log)
    if figures:
        with step_timer(steps, "figures"):
            made = make_figures(run_dir, formats=cfg.figures.formats, log=log)
        log(f"figures: {len(made)} written to {run_dir / 'figures'}")


def check_config(cfg: RunConfig, *, restart: bool = False, devices: bool = True) -> list[str]:
    """Every check of ``cfg`` that needs no model, without writing anything (``clas-lens run
    --check``): the values (already checked by :meth:`RunConfig.from_dict`), the run name, the
    inputs it names (:func:`~clas_lens.pipeline.inputs.check_inputs`), the gain metric, and whether a run
    could use the run directory (``restart``: as ``run --restart`` would). Returns what a run
    would use, one line each.

    >>> import tempfile
    >>> notes = check_config(RunConfig.from_dict({"run": {"out_dir": tempfile.mkdtemp()}, "eval": {"tasks": ["cloze"]}}))
    >>> notes[-1].startswith("run directory: ") and notes[-1].endswith("(new)")
    True
    """
    run_dir = run_dir_of(cfg)
    notes = list(check_inputs(cfg, devices=devices))
    check_gain_metric(cfg)
    if run_dir.is_symlink() or (run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir()))):
        marker = read_marker(run_dir) if run_dir.is_dir() and not run_dir.is_symlink() else None
        if marker is None:
            prepare_run_dir(run_dir)  # raises: not a run directory (nothing is written)
        if not restart:
            check_compatible(cfg, run_dir)
        what = "--restart empties it" if restart else "a rerun resumes it"
        notes.append(f"run directory: {run_dir} (exists, made by clas_lens {marker['clas_lens']}; {what})")
    else:
        notes.append(f"run directory: {run_dir} (new)")
    return notes
