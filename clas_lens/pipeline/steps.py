"""The pipeline's computing steps, each resumable from the files it leaves in the run directory.

The design (docs/methods.md, "Evaluation"): neurons are found on the corpus's ``stats`` split,
settings chosen on ``dev``, everything reported measured on held-out ``test`` items
(:mod:`~clas_lens.pipeline.corpora`).

1. :func:`stats_step`: neuron statistics of the ``stats`` sentences (``stats.safetensors``, also
   cached across runs, keyed by model weights, sentences and settings) and, from the same
   forward pass, their split-half stability (``neurons_stability.csv``,
   :mod:`~clas_lens.pipeline.neuron_checks`);
2. :func:`neurons_step`: identification (``neurons.safetensors``, counts and overlap CSVs);
3. the inputs some sweep methods need: Int-mu quantiles (``quantiles.safetensors``) and residual
   means (``residual_means.safetensors``, for ``diffmean``);
4. :func:`sweep_step`: every evaluation under interventions -- the positive control
   (``control/``), the dev sweep and the choice of each method's setting (``sweep_dev.csv``,
   ``selection.csv``, ``selection.json``), the test sweep of every task with the controls of
   CLAS (``sweeps/test/<task>/``, ``sweep.csv``) (:mod:`~clas_lens.pipeline.sweeps`);
5. :func:`clusters_step`: residual reps of held-out sentences unsteered and under CLAS, cluster
   metrics and deltas (:mod:`~clas_lens.pipeline.geometry`);
6. :func:`divergence_step`: the divergence test and a 2-D projection, then the closing summary
   (``summary.md``, ``summary/*.csv``, :mod:`~clas_lens.pipeline.summary_md`).
"""
from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.tasks import Task, load_task, task_spec
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.io import atomic_write_json, load_tensors, read_json, save_tensors, sha256_json
from clas_lens.models import cache_dir, model_info
from clas_lens.neurons import NeuronSet, identify_neurons
from clas_lens.pipeline import geometry
from clas_lens.pipeline.corpora import STATS_SPLIT, corpus_part
from clas_lens.pipeline.geometry import clas_setting, clas_template, clusters_step, language_gains, resolved_layers
from clas_lens.pipeline.neuron_checks import STABILITY_CSV, positive_control_step, stats_with_stability
from clas_lens.pipeline.rundir import write_csv
from clas_lens.pipeline.summary_md import write_summary
from clas_lens.pipeline.sweeps import design_grid, dev_sweep_step, layer_options, report_sweep_step, selection_step
from clas_lens.sites import neuron_sites
from clas_lens.specs import resolve_layers, quantile_level
from clas_lens.stats import NeuronStats, ResidualMeans, collect_quantiles, residual_means
from clas_lens.sweep import SweepGrid

__all__ = [
    "FOCUS_KEYS",
    "focus_setting",
    "sweep_grid",
    "check_gain_metric",
    "load_eval_tasks",
    "stats_step",
    "neurons_step",
    "quantiles_step",
    "residual_means_step",
    "sweep_step",
    "clusters_step",
    "language_gains",
    "divergence_step",
    "resolved_layers",
    "clas_template",
]

#: The CLAS strengths of :func:`focus_setting`.
FOCUS_KEYS = ("alpha", "beta", "gamma")
_QUANTILES_FORMAT = "clas_lens.quantiles/1"
_RESID_FORMAT = "clas_lens.residual_means/1"
_STATS_REF = "stats_corpus.json"
Log = Callable[[str], None]


def focus_setting(cfg: RunConfig, run_dir: Path | None = None) -> dict[str, float]:
    """CLAS's strengths as the clusters, the divergence test and the summary use them: those
    chosen on dev (``selection.json`` of ``run_dir``), else the strongest beta of the grid with
    the first alpha and gamma.

    >>> focus_setting(RunConfig())
    {'alpha': 1.0, 'beta': 0.5, 'gamma': 0.2}
    """
    setting = clas_setting(cfg, run_dir)
    return {k: float(setting[k]) for k in FOCUS_KEYS}


def sweep_grid(cfg: RunConfig, task: str) -> SweepGrid:
    """The sweep of one task over every value ``cfg`` lists, on all its items (the pipeline
    runs :func:`~clas_lens.pipeline.sweeps.design_grid` on dev, then on test).

    >>> sweep_grid(RunConfig(), "cloze").methods
    ('clas', 'int_mu')
    """
    return design_grid(cfg, task)


def load_eval_tasks(cfg: RunConfig) -> dict[str, Task]:
    """Every ``[eval] tasks`` task, loaded as its sweep evaluates it: the anchor and the task's
    languages (:meth:`RunConfig.task_langs`), its ``[eval.options]``. The pipeline loads them
    before the model, so a missing file or an unreachable hub dataset fails first.

    >>> list(load_eval_tasks(RunConfig.from_dict({"eval": {"tasks": ["cloze"]}})))
    ['cloze']
    """
    return {task: load_task(task, langs=sweep_grid(cfg, task).all_langs, **cfg.task_options(task)) for task in cfg.eval.tasks}


def check_gain_metric(cfg: RunConfig, tasks: dict[str, Task] | None = None) -> None:
    """``[eval] gain_metric`` must be a metric of ``gain_task`` (the task itself says which:
    from ``tasks`` when given, else loaded for the anchor with its ``[eval.options]``; a hub
    task without ``data_files`` is not fetched here: the run checks it once it has the data,
    still before the model loads).

    >>> check_gain_metric(RunConfig.from_dict({"eval": {"tasks": ["cloze"], "gain_metric": "bleu"}}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: config key 'eval.gain_metric' = 'bleu' is not a metric of task 'cloze'; allowed values: [...'accuracy'...]
    """
    task = (tasks or {}).get(cfg.eval.gain_task)
    if task is None:
        options = cfg.task_options(cfg.eval.gain_task)
        if task_spec(cfg.eval.gain_task).hub_split and options.get("data_files") is None:
            return
        try:
            task = load_task(cfg.eval.gain_task, langs=[cfg.corpus.anchor], **options)
        except DatasetUnavailableError:
            return
    if cfg.eval.gain_metric not in task.metrics:
        raise DataValidationError(
            f"config key 'eval.gain_metric' = {cfg.eval.gain_metric!r} is not a metric of task "
            f"{cfg.eval.gain_task!r}; allowed values: {list(task.metrics)}"
        )


def _stats_ref(corpus) -> dict[str, Any]:
    return {"split": STATS_SPLIT, "n_items": len(corpus), "corpus_hash": corpus.hash()}


def stats_step(cfg: RunConfig, model, corpus, run_dir: Path, log: Log) -> NeuronStats:
    """``stats.safetensors`` of the first ``[corpus] stats_limit`` ``stats`` sentences (reused,
    or from the cross-run cache, or collected) and their split-half stability
    (``neurons_stability.csv``, same pass). ``corpus``: the run's corpus or its stats part.

    Raises:
        MismatchError: the run directory holds statistics of other sentences (a run of an
            earlier release, which read the first items of the whole corpus).
    """
    run_dir = Path(run_dir)
    corpus = corpus_part(cfg, STATS_SPLIT, cfg.corpus.stats_limit, corpus)
    path, stab_path, ref_path = run_dir / "stats.safetensors", run_dir / STABILITY_CSV, run_dir / _STATS_REF
    ref, k = _stats_ref(corpus), int(cfg.neurons.stability_splits)
    if path.exists():
        if (read_json(ref_path) if ref_path.exists() else None) != ref:
            raise MismatchError(
                f"{path} holds statistics of other sentences than the first {len(corpus)} of the corpus's "
                f"{STATS_SPLIT!r} split. Use another run name ([run] name = ...) or pass --restart."
            )
        if k == 0 or stab_path.exists():
            stats = NeuronStats.load(path)
            stats.check_model(model, cfg.stats.site)
            log(f"statistics: reused {path}")
            return stats
    n = cfg.neurons
    key = sha256_json({
        "model": model_info(model).weights_sha256, "corpus": corpus.hash(), "stats": dataclasses.asdict(cfg.stats),
        "stability": {"splits": k, "seed": cfg.run.seed, "method": n.method, "params": n.params} if k else None,
    })[:24]
    cached, cached_stab = cache_dir() / "stats" / f"{key}.safetensors", cache_dir() / "stats" / f"{key}.stability.csv"
    table = None
    if cached.exists() and (k == 0 or cached_stab.exists()):
        stats = NeuronStats.load(cached)
        stats.check_model(model, cfg.stats.site)
        table = pd.read_csv(cached_stab) if k else None
        log(f"statistics: reused the cached {cached}")
    else:
        t0 = time.perf_counter()
        stats, table = stats_with_stability(cfg, model, corpus)
        stats.save(cached)
        if table is not None:
            write_csv(table, cached_stab)
        log(f"statistics: {len(corpus)} {STATS_SPLIT} items x {len(corpus.langs)} languages"
            f"{f' with {k} split halves' if k else ''} in {time.perf_counter() - t0:.0f} s")
    stats.save(path)
    if table is not None:
        write_csv(table, stab_path)
    atomic_write_json(ref_path, ref)
    return stats


def neurons_step(cfg: RunConfig, stats: NeuronStats, run_dir: Path) -> NeuronSet:
    """``neurons.safetensors`` (reused or identified) and its counts / overlap CSVs."""
    path = run_dir / "neurons.safetensors"
    if path.exists():
        neurons = NeuronSet.load(path)
    else:
        neurons = identify_neurons(stats, cfg.neurons.method, **cfg.neurons.params)
        neurons.save(path)
    write_csv(neurons.counts(), run_dir / "neurons_counts.csv")
    write_csv(neurons.overlap().reset_index().rename(columns={"index": "lang"}), run_dir / "neurons_overlap.csv")
    return neurons


def quantiles_step(cfg: RunConfig, model, corpus, neurons, run_dir: Path, log: Log) -> tuple[Any, list | None]:
    """Int-mu quantiles of the specific neurons on the ``stats`` sentences, when ``[steering]
    mu_values`` names any."""
    levels = [v for v in cfg.steering.mu_values if isinstance(v, str) and quantile_level(v) is not None]
    if "int_mu" not in cfg.steering.methods or not levels:
        return None, None
    path = Path(run_dir) / "quantiles.safetensors"
    if path.exists():
        meta, tensors = load_tensors(path, _QUANTILES_FORMAT, "quantiles", required=("levels", "langs"))
        if meta.get("levels") == levels:
            return {l: tensors[f"q/{l}"] for l in meta["langs"]}, levels
    t0 = time.perf_counter()
    corpus = corpus_part(cfg, STATS_SPLIT, cfg.corpus.stats_limit, corpus)
    q = collect_quantiles(model, corpus, neurons.mask("specific"), levels, site=cfg.stats.site, langs=cfg.corpus.langs,
                          batch_size=cfg.stats.batch_size)
    save_tensors(path, {f"q/{l}": t for l, t in q.items()}, {"levels": levels, "langs": list(q)}, _QUANTILES_FORMAT)
    log(f"quantiles {levels}: {time.perf_counter() - t0:.0f} s")
    return q, levels


def residual_means_step(cfg: RunConfig, model, corpus, run_dir: Path, log: Log) -> ResidualMeans | None:
    """Residual means of every language on the ``stats`` sentences at every layer a layer
    option steers, when the sweep has ``diffmean``."""
    if "diffmean" not in cfg.steering.methods:
        return None
    path = Path(run_dir) / "residual_means.safetensors"
    if path.exists():
        meta, tensors = load_tensors(path, _RESID_FORMAT, "residual means",
                                     required=("layers", "langs", "n_tokens", "model_info"))
        return ResidualMeans(layers=meta["layers"], means={l: tensors[f"means/{l}"] for l in meta["langs"]},
                             n_tokens=meta["n_tokens"], model_info=meta["model_info"])
    t0 = time.perf_counter()
    n_layers = neuron_sites(model).n_layers
    layers = sorted({l for spec in layer_options(cfg.steering.layers) for l in resolve_layers(spec, n_layers)})
    corpus = corpus_part(cfg, STATS_SPLIT, cfg.corpus.stats_limit, corpus)
    rm = residual_means(model, corpus, layers=layers, langs=cfg.corpus.langs, batch_size=cfg.stats.batch_size)
    meta = {"layers": rm.layers, "langs": rm.langs, "n_tokens": rm.n_tokens, "model_info": rm.model_info}
    save_tensors(path, {f"means/{l}": m for l, m in rm.means.items()}, meta, _RESID_FORMAT)
    log(f"residual means: {time.perf_counter() - t0:.0f} s")
    return rm


@contextmanager
def step_timer(steps: dict[str, float], name: str):
    """Add the wall time (s) of the ``with`` block to ``steps[name]`` (a resumed step: near 0).

    >>> steps = {}
    >>> with step_timer(steps, "nothing"):
    ...     pass
    >>> list(steps), steps["nothing"] < 1
    (['nothing'], True)
    """
    t0 = time.perf_counter()
    try:
        yield
    finally:
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - t0


def sweep_step(cfg: RunConfig, model, run_dir: Path, log: Log, *, tasks: dict[str, Task] | None = None,
               steps: dict[str, float] | None = None, **inputs: Any) -> pd.DataFrame:
    """Every evaluation under interventions, in order: the positive control, the dev sweep and
    the choice of each method's setting, the test sweep of every task with CLAS's controls;
    returns the test sweep's table (``sweep.csv``). ``inputs``: ``neurons``, ``stats``,
    ``quantiles``, ``quantile_levels``, ``residual_means`` (as :func:`clas_lens.sweep.run_sweep`
    takes them). ``tasks``: the tasks the pipeline loaded to check them before the model; each
    sweep loads its own split of them. ``steps``: each part's wall time is added to it."""
    steps = {} if steps is None else steps
    with step_timer(steps, "positive_control"):
        positive_control_step(cfg, model, inputs.get("stats"), run_dir, log)
    with step_timer(steps, "dev_sweep"):
        dev_sweep_step(cfg, model, run_dir, log, inputs)
    with step_timer(steps, "selection"):
        chosen = selection_step(cfg, model, run_dir, log)
    with step_timer(steps, "test_sweep"):
        return report_sweep_step(cfg, model, run_dir, log, inputs, chosen)


def divergence_step(cfg: RunConfig, sweep: pd.DataFrame, deltas: pd.DataFrame, reps, run_dir: Path, log: Log) -> pd.DataFrame:
    """The divergence test and the projection (:func:`clas_lens.pipeline.geometry.divergence_step`),
    then the closing summary (``summary.md``, ``summary/*.csv``)."""
    test = geometry.divergence_step(cfg, sweep, deltas, reps, run_dir, log)
    log(f"summary: {write_summary(run_dir)}")
    return test
