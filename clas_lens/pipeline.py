"""The whole CLAS pipeline into one self-describing run directory.

``run_pipeline(cfg)`` (CLI: ``clas-lens run CONFIG.toml``) does, each step resumable:

1. neuron statistics on the parallel corpus (``stats.safetensors``; also cached across runs
   under the clas_lens cache, keyed by model weights, corpus content and settings);
2. neuron identification (``neurons.safetensors``);
3. the steering sweep per task (``sweeps/<task>/sweep/cells.jsonl``, one line per finished cell);
4. residual-stream representations before and after CLAS (``reps/base``, ``reps/clas``),
   cluster metrics and their deltas (``clusters/*.csv``);
5. the functional-divergence test (``clusters/divergence.csv``) and a 2-D projection;
6. every figure (``figures/``), regenerated from the saved files alone by
   :func:`make_figures` (CLI: ``clas-lens figures RUN_DIR``).

``run.json`` records the resolved config, package versions, the model identity and the git
commit. A rerun with the same config skips finished work; a different config against the same
directory is refused unless ``restart=True``.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.errors import MismatchError
from clas_lens.io import atomic_write_json, atomic_write_text, read_json, sha256_json

#: The CLAS setting the cluster analysis and divergence test use (from the sweep grid).
FOCUS_KEYS = ("alpha", "beta", "gamma")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("clas_lens", "torch", "transformers", "transformer-lens"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    df = df.copy()
    df.attrs = {}
    return atomic_write_text(path, df.to_csv(index=False))


def focus_setting(cfg: RunConfig) -> dict[str, float]:
    """The CLAS strengths used for clusters and the divergence test: the strongest beta of
    the sweep with the first alpha and gamma."""
    s = cfg.steering
    return {"alpha": float(s.alphas[0]), "beta": float(max(s.betas)), "gamma": float(s.gammas[0])}


def _check_run_dir(cfg: RunConfig, run_dir: Path, restart: bool) -> None:
    meta_path = run_dir / "run.json"
    identity = sha256_json({k: v for k, v in cfg.to_dict().items() if k != "figures"})
    if meta_path.exists():
        old = read_json(meta_path)
        if old.get("config_sha256") != identity:
            if not restart:
                raise MismatchError(
                    f"{run_dir} holds a run with a different config. Use another run name "
                    "([run] name = ...), or pass --restart to delete it and start over."
                )
    if restart and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return identity


def _stats_step(cfg, model, corpus, run_dir, log):
    from clas_lens.models import cache_dir, model_info
    from clas_lens.stats import NeuronStats, collect_stats

    path = run_dir / "stats.safetensors"
    if path.exists():
        stats = NeuronStats.load(path)
        stats.check_model(model, cfg.stats.site)
        log(f"statistics: reused {path}")
        return stats
    key = sha256_json(
        {
            "model": model_info(model).weights_sha256,
            "corpus": corpus.hash(),
            "stats": dataclasses.asdict(cfg.stats),
        }
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


def _sweep_step(cfg, model, neurons, stats, run_dir, log) -> pd.DataFrame:
    from clas_lens.sweep import SweepGrid, load_sweep, run_sweep

    frames = []
    for task in cfg.eval.tasks:
        grid = SweepGrid(
            langs=[l for l in cfg.corpus.langs if l != cfg.corpus.anchor],
            anchor=cfg.corpus.anchor,
            tasks=[task],
            methods=list(cfg.steering.methods),
            alphas=cfg.steering.alphas,
            betas=cfg.steering.betas,
            gammas=cfg.steering.gammas,
            layers=[cfg.steering.layers],
            limit=cfg.eval.limits.get(task),
            seed=cfg.run.seed,
            n_boot=cfg.eval.n_boot,
        )
        t0 = time.perf_counter()
        run_sweep(model, run_dir / "sweeps" / task, grid, neurons=neurons, stats=stats)
        frames.append(load_sweep(run_dir / "sweeps" / task))
        log(f"sweep {task}: {len(grid.cells())} cells ready ({time.perf_counter() - t0:.0f} s)")
    df = pd.concat(frames, ignore_index=True)
    _write_csv(df, run_dir / "sweep.csv")
    return df


def _clas_template(cfg, neurons):
    from clas_lens.steering import ClasSteering

    f = focus_setting(cfg)
    return ClasSteering(neurons, layers=cfg.steering.layers, alpha=f["alpha"], beta=f["beta"], gamma=f["gamma"])


def _clusters_step(cfg, model, corpus, neurons, run_dir, log):
    from clas_lens.clusters import Reps, cluster_metrics, compare_reps, residual_reps

    out = {}
    for cond, iv in (("base", None), ("clas", _clas_template(cfg, neurons))):
        path = run_dir / "reps" / cond
        if (path / "reps.json").exists() or (path.exists() and any(path.iterdir())):
            try:
                out[cond] = Reps.load(path)
                continue
            except Exception:  # a torn folder from a crash: recompute
                shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        reps = residual_reps(
            model, corpus, layers=cfg.clusters.layers if cfg.clusters.layers != "all" else None,
            pooling=cfg.clusters.pooling, intervention=iv, condition=cond,
        )
        reps.save(path)
        out[cond] = reps
        log(f"residual reps ({cond}): {time.perf_counter() - t0:.0f} s")
    anchor = cfg.corpus.anchor
    metrics = pd.concat(
        [cluster_metrics(out["base"], anchor=anchor), cluster_metrics(out["clas"], anchor=anchor)],
        ignore_index=True,
    )
    deltas = compare_reps(out["base"], out["clas"], anchor=anchor)
    _write_csv(metrics, run_dir / "clusters" / "metrics.csv")
    _write_csv(deltas, run_dir / "clusters" / "deltas.csv")
    return out, metrics, deltas


def language_gains(sweep: pd.DataFrame, cfg: RunConfig, method: str = "clas") -> pd.DataFrame:
    """Per-language gain (steered minus unsteered) of the focus setting on the gain task."""
    f = focus_setting(cfg)
    rows = sweep[(sweep.task == cfg.eval.gain_task) & (sweep.metric == cfg.eval.gain_metric) & (sweep.method == method)]
    if method == "clas":
        for k in FOCUS_KEYS:
            rows = rows[(rows[k].astype(float) - f[k]).abs() < 1e-12]
    return rows[["lang", "diff"]].rename(columns={"diff": "gain"}).reset_index(drop=True)


def _divergence_step(cfg, sweep, deltas, reps, run_dir, log):
    from clas_lens.clusters import divergence_test, project

    gains = language_gains(sweep, cfg)
    gains = gains[gains.lang != cfg.corpus.anchor]
    test = divergence_test(gains, deltas, x=cfg.clusters.divergence_metric, seed=cfg.run.seed)
    _write_csv(test, run_dir / "clusters" / "divergence.csv")
    _write_csv(gains, run_dir / "clusters" / "gains.csv")
    layer = int(test["layer"].iloc[0])
    proj = project([reps["base"], reps["clas"]], method=cfg.clusters.projection, layer=layer, seed=cfg.run.seed)
    _write_csv(proj, run_dir / "clusters" / "projection.csv")
    log(f"divergence test at layer {layer}: done")
    return test


def summary_table(run_dir: str | Path) -> pd.DataFrame:
    """Per task and language: baseline, CLAS and Int-mu (focus setting) with CIs, from a run dir."""
    run_dir = Path(run_dir)
    cfg = RunConfig.from_dict(read_json(run_dir / "run.json")["config"])
    sweep = pd.read_csv(run_dir / "sweep.csv")
    f = focus_setting(cfg)
    rows = []
    metric_for = {"cloze": "accuracy", "nli": "accuracy", "xnli": "accuracy", "qa": "f1", "xquad": "f1"}
    for (task, lang), g in sweep.groupby(["task", "lang"], sort=False):
        g = g[g.metric == metric_for.get(task, g.metric.iloc[0])]
        base = g[g.method == "baseline"]
        clas = g[g.method == "clas"]
        for k in FOCUS_KEYS:
            clas = clas[(clas[k].astype(float) - f[k]).abs() < 1e-12]
        mu = g[g.method == "int_mu"]
        row = {"task": task, "lang": lang, "metric": g.metric.iloc[0] if len(g) else ""}
        if len(base):
            row["baseline"] = base.value.iloc[0]
        for name, sel in (("clas", clas), ("int_mu", mu)):
            if len(sel):
                r = sel.iloc[0]
                row[f"{name}_gain"] = r["diff"]
                row[f"{name}_ci"] = f"[{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]"
                row[f"{name}_p"] = r["p_value"]
        rows.append(row)
    return pd.DataFrame(rows)


def run_pipeline(
    cfg: RunConfig,
    *,
    restart: bool = False,
    figures: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run every step of ``cfg`` into ``cfg.run_dir``; return the run directory.

    >>> from clas_lens.config import RunConfig
    >>> cfg = RunConfig.from_dict({"run": {"name": "doc"}})
    >>> cfg.run_dir.name
    'doc'
    """
    import torch

    import clas_lens
    from clas_lens.neurons import NeuronSet, identify_neurons

    t_start = time.perf_counter()
    run_dir = cfg.run_dir
    identity = _check_run_dir(cfg, run_dir, restart)
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    torch.manual_seed(cfg.run.seed)
    model = clas_lens.load_model(cfg.model.name, device=cfg.model.device)
    atomic_write_json(
        run_dir / "run.json",
        {
            "config": cfg.to_dict(),
            "config_sha256": identity,
            "model": clas_lens.model_info(model).to_dict(),
            "versions": _versions(),
            "git_commit": _git_commit(),
        },
    )
    corpus_all = clas_lens.load_corpus(cfg.corpus.name, langs=cfg.corpus.langs)

    def limited(n: int):
        return corpus_all if not n or n >= len(corpus_all) else corpus_all.subset(ids=corpus_all.ids[:n])

    stats = _stats_step(cfg, model, limited(cfg.corpus.stats_limit), run_dir, log)
    neurons_path = run_dir / "neurons.safetensors"
    if neurons_path.exists():
        neurons = NeuronSet.load(neurons_path)
    else:
        neurons = identify_neurons(stats, cfg.neurons.method, **cfg.neurons.params)
        neurons.save(neurons_path)
    _write_csv(neurons.counts(), run_dir / "neurons_counts.csv")
    _write_csv(neurons.overlap().reset_index().rename(columns={"index": "lang"}), run_dir / "neurons_overlap.csv")
    sweep = _sweep_step(cfg, model, neurons, stats, run_dir, log)
    reps, _, deltas = _clusters_step(cfg, model, limited(cfg.corpus.cluster_limit), neurons, run_dir, log)
    _divergence_step(cfg, sweep, deltas, reps, run_dir, log)
    if figures:
        made = make_figures(run_dir, formats=cfg.figures.formats, log=log)
        log(f"figures: {len(made)} written to {run_dir / 'figures'}")
    atomic_write_json(run_dir / "timing.json", {"seconds": time.perf_counter() - t_start})
    return run_dir


def make_figures(run_dir: str | Path, *, formats=("html", "png", "svg"), log: Callable[[str], None] = print) -> dict[str, dict]:
    """(Re)build every figure of a run directory from its saved files (no model needed)."""
    from clas_lens import plotting
    from clas_lens.neurons import NeuronSet
    from clas_lens.stats import NeuronStats

    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a clas_lens run directory (no run.json); run `clas-lens run` first.")
    cfg = RunConfig.from_dict(read_json(run_dir / "run.json")["config"])
    out_dir = run_dir / "figures"
    figs = {}
    neurons = NeuronSet.load(run_dir / "neurons.safetensors")
    figs["neuron_categories"] = plotting.neuron_categories(neurons.counts())
    figs["language_overlap"] = plotting.language_overlap(neurons.overlap())
    stats = NeuronStats.load(run_dir / "stats.safetensors")
    figs["activation_probabilities"] = plotting.activation_prob_distributions(
        {l: stats.active_prob(l).numpy() for l in stats.langs}
    )
    sweep = pd.read_csv(run_dir / "sweep.csv")
    for task in sorted(sweep.task.unique()):
        sub = sweep[sweep.task == task]
        metric = "accuracy" if "accuracy" in set(sub.metric) else "f1"
        clas = sub[(sub.method.isin(["clas", "baseline"]))]
        figs[f"sweep_{task}"] = plotting.sweep_curves(clas, x="beta", metric=metric)
    f = focus_setting(cfg)
    focus = sweep[(sweep.method != "clas") | ((sweep.beta.astype(float) - f["beta"]).abs() < 1e-12)]
    short = {"clas": f"CLAS β={f['beta']:g}", "int_mu": "Int-mu", "deactivate": "deactivate"}
    focus = focus.assign(condition=[short.get(m, c) for m, c in zip(focus.method, focus.condition)])
    figs["language_gains"] = plotting.language_gains(focus, anchor=cfg.corpus.anchor)
    metrics = pd.read_csv(run_dir / "clusters" / "metrics.csv")
    figs["silhouette_by_layer"] = plotting.cluster_by_layer(metrics, metric=cfg.clusters.divergence_metric)
    proj = pd.read_csv(run_dir / "clusters" / "projection.csv")
    figs["projection"] = plotting.projection_scatter(proj)
    test = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    deltas = pd.read_csv(run_dir / "clusters" / "deltas.csv")
    gains = pd.read_csv(run_dir / "clusters" / "gains.csv")
    figs["divergence"] = plotting.divergence_scatter(divergence_points(gains, deltas, test), test)
    attr = run_dir / "attribution.csv"
    if attr.exists():
        figs["top_attributed_neurons"] = plotting.top_attributed_neurons(pd.read_csv(attr))
    written = {}
    for name, fig in figs.items():
        written[name] = plotting.save_figure(fig, out_dir / f"{name}.html", formats=tuple(formats))
    return written


def divergence_points(gains: pd.DataFrame, deltas: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Per language: gain, separation delta and alignment delta at the tested layer."""
    sep = test[test.hypothesis == "separation"].iloc[0]
    ali = test[test.hypothesis == "alignment"]
    layer = int(sep["layer"])
    d = deltas[deltas.layer == layer]
    pts = gains.copy()
    pts["delta_separation"] = pts.lang.map(d[d.metric == sep["metric"]].set_index("lang")["delta"])
    if len(ali):
        pts["delta_alignment"] = pts.lang.map(d[d.metric == ali.iloc[0]["metric"]].set_index("lang")["delta"])
    return pts


def print_summary(run_dir: str | Path, out: Callable[[str], None] = print) -> None:
    """Print the run's summary: per-language gains (CLAS, Int-mu) with CIs, whether the anchor
    kept its score, and the divergence test (r, CI, p, n) for separation and alignment."""
    run_dir = Path(run_dir)
    cfg = RunConfig.from_dict(read_json(run_dir / "run.json")["config"])
    table = summary_table(run_dir)
    f = focus_setting(cfg)
    out(f"per-language gains at CLAS alpha={f['alpha']}, beta={f['beta']}, gamma={f['gamma']} "
        f"(paired bootstrap 95% CI, p), Int-mu beside it:")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        out(table.to_string(index=False))
    anchor = table[table.lang == cfg.corpus.anchor]
    for _, row in anchor.iterrows():
        gain = row.get("clas_gain")
        if pd.notna(gain):
            kept = "kept" if gain >= 0 or float(str(row["clas_ci"]).strip("[]").split(",")[1]) >= 0 else "DROPPED"
            out(f"anchor {cfg.corpus.anchor} on {row['task']}: CLAS gain {gain:+.3f} {row['clas_ci']} -> {kept}")
    div = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    out("divergence test (task gain vs cluster-metric delta across languages):")
    cols = [c for c in ("hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n") if c in div]
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        out(div[cols].to_string(index=False))
