"""The pipeline's computing steps, each resumable from the files it leaves in the run directory.

1. neuron statistics on the parallel corpus (``stats.safetensors``; also cached across runs
   under the clas_lens cache, keyed by model weights, corpus content and settings);
2. neuron identification (``neurons.safetensors``, counts and overlap CSVs);
3. the inputs some sweep methods need: Int-mu quantiles (``quantiles.safetensors``, for
   ``"median"`` / ``"pNN"`` values) and residual means (``residual_means.safetensors``, for
   ``diffmean``);
4. the steering sweep per task (``sweeps/<task>/sweep/cells.jsonl``, one line per finished cell);
5. residual-stream representations unsteered and under CLAS (``reps/unsteered``,
   ``reps/clas``), cluster metrics and their deltas (``clusters/*.csv``);
6. the functional-divergence test (``clusters/divergence.csv``) and a 2-D projection.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from clas_lens.clusters import Reps, cluster_metrics, compare_reps, divergence_test, project, residual_reps
from clas_lens.config import RunConfig
from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.tasks import Task, load_task, task_spec
from clas_lens.errors import DataValidationError
from clas_lens.io import load_tensors, save_tensors, sha256_json
from clas_lens.models import cache_dir, model_info
from clas_lens.neurons import NeuronSet, identify_neurons
from clas_lens.pipeline.rundir import write_csv
from clas_lens.sites import neuron_sites
from clas_lens.specs import LayerSpec, quantile_level
from clas_lens.stats import NeuronStats, ResidualMeans, collect_quantiles, collect_stats, residual_means
from clas_lens.steering import ClasSteering
from clas_lens.sweep import SweepGrid, load_sweep, run_sweep
from clas_lens.vocab import UNSTEERED

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
]

#: The CLAS setting the cluster analysis and divergence test use (from the sweep grid).
FOCUS_KEYS = ("alpha", "beta", "gamma")
_QUANTILES_FORMAT = "clas_lens.quantiles/1"
_RESID_FORMAT = "clas_lens.residual_means/1"
Log = Callable[[str], None]


def focus_setting(cfg: RunConfig) -> dict[str, float]:
    """The CLAS strengths used for clusters and the divergence test: the strongest beta of
    the sweep with the first alpha and gamma.

    >>> focus_setting(RunConfig())
    {'alpha': 1.0, 'beta': 0.5, 'gamma': 0.2}
    """
    s = cfg.steering
    return {"alpha": float(s.alphas[0]), "beta": float(max(s.betas)), "gamma": float(s.gammas[0])}


def sweep_grid(cfg: RunConfig, task: str) -> SweepGrid:
    """The sweep of one task that ``cfg`` describes.

    >>> sweep_grid(RunConfig(), "cloze").methods
    ('clas', 'int_mu')
    """
    s = cfg.steering
    options = cfg.task_options(task)
    return SweepGrid(
        langs=[l for l in cfg.task_langs(task) if l != cfg.corpus.anchor],
        anchor=cfg.corpus.anchor,
        tasks=[task],
        task_options={task: options} if options else {},
        batch_size=cfg.eval.batch_size,
        methods=list(s.methods),
        alphas=s.alphas,
        betas=s.betas,
        gammas=s.gammas,
        layers=[s.layers],
        mu_values=s.mu_values,
        strengths=s.strengths,
        positions=s.positions,
        shared=s.shared,
        suppress=s.suppress,
        limit=cfg.eval.limits.get(task),
        seed=cfg.run.seed,
        n_boot=cfg.eval.n_boot,
        confidence=cfg.eval.confidence,
    )


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


def stats_step(cfg: RunConfig, model, corpus, run_dir: Path, log: Log) -> NeuronStats:
    """``stats.safetensors`` (reused, or from the cross-run cache, or collected)."""
    path = run_dir / "stats.safetensors"
    if path.exists():
        stats = NeuronStats.load(path)
        stats.check_model(model, cfg.stats.site)
        log(f"statistics: reused {path}")
        return stats
    key = sha256_json(
        {"model": model_info(model).weights_sha256, "corpus": corpus.hash(), "stats": dataclasses.asdict(cfg.stats)}
    )[:24]
    cached = cache_dir() / "stats" / f"{key}.safetensors"
    if cached.exists():
        stats = NeuronStats.load(cached)
        stats.check_model(model, cfg.stats.site)
        log(f"statistics: reused the cached {cached}")
    else:
        t0 = time.perf_counter()
        stats = collect_stats(
            model, corpus, site=cfg.stats.site, batch_size=cfg.stats.batch_size,
            threshold=cfg.stats.threshold, max_length=cfg.stats.max_length,
        )
        stats.save(cached)
        log(f"statistics: {len(corpus)} items x {len(corpus.langs)} languages in {time.perf_counter() - t0:.0f} s")
    stats.save(path)
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
    """Int-mu quantiles of the specific neurons, when ``[steering] mu_values`` names any."""
    levels = [v for v in cfg.steering.mu_values if isinstance(v, str) and quantile_level(v) is not None]
    if "int_mu" not in cfg.steering.methods or not levels:
        return None, None
    path = run_dir / "quantiles.safetensors"
    if path.exists():
        meta, tensors = load_tensors(path, _QUANTILES_FORMAT, "quantiles")
        if meta.get("levels") == levels:
            return {l: tensors[f"q/{l}"] for l in meta["langs"]}, levels
    t0 = time.perf_counter()
    q = collect_quantiles(model, corpus, neurons.mask("specific"), levels, site=cfg.stats.site, langs=cfg.corpus.langs,
                          batch_size=cfg.stats.batch_size)
    save_tensors(path, {f"q/{l}": t for l, t in q.items()}, {"levels": levels, "langs": list(q)}, _QUANTILES_FORMAT)
    log(f"quantiles {levels}: {time.perf_counter() - t0:.0f} s")
    return q, levels


def residual_means_step(cfg: RunConfig, model, corpus, run_dir: Path, log: Log) -> ResidualMeans | None:
    """Residual means of every language at the steered layers, when the sweep has ``diffmean``."""
    if "diffmean" not in cfg.steering.methods:
        return None
    path = run_dir / "residual_means.safetensors"
    if path.exists():
        meta, tensors = load_tensors(path, _RESID_FORMAT, "residual means")
        return ResidualMeans(layers=meta["layers"], means={l: tensors[f"means/{l}"] for l in meta["langs"]},
                             n_tokens=meta["n_tokens"], model_info=meta["model_info"])
    t0 = time.perf_counter()
    rm = residual_means(model, corpus, layers=cfg.steering.layers, langs=cfg.corpus.langs, batch_size=cfg.stats.batch_size)
    meta = {"layers": rm.layers, "langs": rm.langs, "n_tokens": rm.n_tokens, "model_info": rm.model_info}
    save_tensors(path, {f"means/{l}": m for l, m in rm.means.items()}, meta, _RESID_FORMAT)
    log(f"residual means: {time.perf_counter() - t0:.0f} s")
    return rm


def sweep_step(cfg: RunConfig, model, run_dir: Path, log: Log, **inputs: Any) -> pd.DataFrame:
    """Every task's sweep (``sweeps/<task>/``) and their table ``sweep.csv``."""
    frames = []
    for task in cfg.eval.tasks:
        grid = sweep_grid(cfg, task)
        t0 = time.perf_counter()
        run_sweep(model, run_dir / "sweeps" / task, grid, **inputs)
        frames.append(load_sweep(run_dir / "sweeps" / task))
        log(f"sweep {task}: {len(grid.cells())} cells ready ({time.perf_counter() - t0:.0f} s)")
    df = pd.concat(frames, ignore_index=True)
    write_csv(df, run_dir / "sweep.csv")
    return df


def resolved_layers(model, spec) -> list[int] | None:
    """A config layer spec as the model's layer indices (None for every layer)."""
    parsed = LayerSpec.parse(spec)
    return None if parsed.kind == "all" else parsed.resolve(neuron_sites(model).n_layers)


def clas_template(cfg: RunConfig, neurons) -> ClasSteering:
    """CLAS at the focus setting, bound per language by ``residual_reps``."""
    f, s = focus_setting(cfg), cfg.steering
    return ClasSteering(neurons, layers=s.layers, alpha=f["alpha"], beta=f["beta"], gamma=f["gamma"], shared=s.shared,
                        suppress=s.suppress, positions=s.positions)


def clusters_step(cfg: RunConfig, model, corpus, neurons, run_dir: Path, log: Log):
    """Residual reps unsteered and under CLAS, their cluster metrics and deltas."""
    out = {}
    for cond, iv in ((UNSTEERED, None), ("clas", clas_template(cfg, neurons))):
        path = run_dir / "reps" / cond
        if path.exists() and any(path.iterdir()):
            try:
                out[cond] = Reps.load(path)
                continue
            except Exception:  # a torn folder from a crash: recompute
                shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        reps = residual_reps(
            model, corpus, layers=resolved_layers(model, cfg.clusters.layers),
            pooling=cfg.clusters.pooling, intervention=iv, condition=cond, batch_size=cfg.clusters.batch_size,
        )
        reps.save(path)
        out[cond] = reps
        log(f"residual reps ({cond}): {time.perf_counter() - t0:.0f} s")
    anchor = cfg.corpus.anchor
    metrics = pd.concat(
        [cluster_metrics(out[UNSTEERED], anchor=anchor), cluster_metrics(out["clas"], anchor=anchor)],
        ignore_index=True,
    )
    deltas = compare_reps(out[UNSTEERED], out["clas"], anchor=anchor)
    write_csv(metrics, run_dir / "clusters" / "metrics.csv")
    write_csv(deltas, run_dir / "clusters" / "deltas.csv")
    return out, metrics, deltas


def language_gains(sweep: pd.DataFrame, cfg: RunConfig, method: str = "clas") -> pd.DataFrame:
    """Per-language gain (steered minus unsteered) of the focus setting on the gain task."""
    f = focus_setting(cfg)
    rows = sweep[(sweep.task == cfg.eval.gain_task) & (sweep.metric == cfg.eval.gain_metric) & (sweep.method == method)]
    if method == "clas":
        for k in FOCUS_KEYS:
            rows = rows[(rows[k].astype(float) - f[k]).abs() < 1e-12]
    return rows[["lang", "diff"]].rename(columns={"diff": "gain"}).reset_index(drop=True)


def divergence_step(cfg: RunConfig, sweep: pd.DataFrame, deltas: pd.DataFrame, reps, run_dir: Path, log: Log) -> pd.DataFrame:
    """The divergence test (gains vs cluster-metric deltas) and the 2-D projection."""
    gains = language_gains(sweep, cfg)
    gains = gains[gains.lang != cfg.corpus.anchor]
    test = divergence_test(gains, deltas, x=cfg.clusters.divergence_metric, seed=cfg.run.seed)
    write_csv(test, run_dir / "clusters" / "divergence.csv")
    write_csv(gains, run_dir / "clusters" / "gains.csv")
    layer = int(test["layer"].iloc[0])
    proj = project([reps[UNSTEERED], reps["clas"]], method=cfg.clusters.projection, layer=layer, seed=cfg.run.seed)
    write_csv(proj, run_dir / "clusters" / "projection.csv")
    log(f"divergence test at layer {layer}: done")
    return test
