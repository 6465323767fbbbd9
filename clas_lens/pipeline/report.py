"""What a finished run directory shows, from its saved files alone (no model): the summary
table, the printed summary and every figure (CLI: ``clas-lens figures RUN_DIR``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from clas_lens import plotting
from clas_lens.neurons import NeuronSet
from clas_lens.pipeline.rundir import load_run_config, read_sweep_csv
from clas_lens.pipeline.steps import FOCUS_KEYS, focus_setting
from clas_lens.stats import NeuronStats
from clas_lens.vocab import UNSTEERED

__all__ = ["summary_table", "print_summary", "make_figures", "divergence_points", "report_metric"]


def report_metric(cfg, metrics) -> str:
    """The metric a task is reported by: ``[eval] gain_metric`` when the task has it, else the
    task's first metric (its rows come in ``Task.metrics`` order).

    >>> from clas_lens.config import RunConfig
    >>> report_metric(RunConfig(), ["f1", "exact_match"]), report_metric(RunConfig(), ["margin", "accuracy"])
    ('f1', 'accuracy')
    """
    metrics = list(dict.fromkeys(metrics))
    return cfg.eval.gain_metric if cfg.eval.gain_metric in metrics else metrics[0]

def summary_table(run_dir: str | Path) -> pd.DataFrame:
    """Per task and language: the unsteered score, CLAS and Int-mu gains (focus setting) with
    CIs, from a run directory; each task by its :func:`report_metric`."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    sweep = read_sweep_csv(run_dir)
    f = focus_setting(cfg)
    rows = []
    for (task, lang), g in sweep.groupby(["task", "lang"], sort=False):
        g = g[g.metric == report_metric(cfg, g.metric)]
        base = g[g.method == UNSTEERED]
        clas = g[g.method == "clas"]
        for k in FOCUS_KEYS:
            clas = clas[(clas[k].astype(float) - f[k]).abs() < 1e-12]
        mu = g[g.method == "int_mu"]
        row = {"task": task, "lang": lang, "metric": g.metric.iloc[0] if len(g) else ""}
        if len(base):
            row[UNSTEERED] = base.value.iloc[0]
        for name, sel in (("clas", clas), ("int_mu", mu)):
            if len(sel):
                r = sel.iloc[0]
                row[f"{name}_gain"] = r["diff"]
                row[f"{name}_ci"] = f"[{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]"
                row[f"{name}_p"] = r["p_value"]
        rows.append(row)
    return pd.DataFrame(rows)


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


def make_figures(run_dir: str | Path, *, formats=("html", "png", "svg"), log: Callable[[str], None] = print) -> dict[str, dict]:
    """(Re)build every figure of a run directory from its saved files (no model needed)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    out_dir = run_dir / "figures"
    figs = {}
    neurons = NeuronSet.load(run_dir / "neurons.safetensors")
    figs["neuron_categories"] = plotting.neuron_categories(neurons.counts())
    figs["language_overlap"] = plotting.language_overlap(neurons.overlap())
    stats = NeuronStats.load(run_dir / "stats.safetensors")
    figs["activation_probabilities"] = plotting.activation_prob_distributions(
        {l: stats.active_prob(l).numpy() for l in stats.langs}
    )
    sweep = read_sweep_csv(run_dir)
    for task in sorted(sweep.task.unique()):
        sub = sweep[sweep.task == task]
        metric = report_metric(cfg, sub.metric)
        clas = sub[(sub.method.isin(["clas", UNSTEERED]))]
        figs[f"sweep_{task}"] = plotting.sweep_curves(clas, x="beta", metric=metric)
    f = focus_setting(cfg)
    focus = sweep[(sweep.method != "clas") | ((sweep.beta.astype(float) - f["beta"]).abs() < 1e-12)]
    short = {"clas": f"CLAS β={f['beta']:g}", "int_mu": "Int-mu", "deactivate": "deactivate",
             "lape_deactivate": "LAPE deactivate"}
    focus = focus.assign(condition=[short.get(m, c) for m, c in zip(focus.method, focus.condition)])
    figs["language_gains"] = plotting.language_gains(focus, anchor=cfg.corpus.anchor, confidence=cfg.eval.confidence)
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


def print_summary(run_dir: str | Path, out: Callable[[str], None] = print) -> None:
    """Print the run's summary: per-language gains (CLAS, Int-mu) with CIs, whether the anchor
    kept its score, and the divergence test (r, CI, p, n) for separation and alignment."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    table = summary_table(run_dir)
    f = focus_setting(cfg)
    level = f"{100 * cfg.eval.confidence:g}%"
    out(f"per-language gains at CLAS alpha={f['alpha']}, beta={f['beta']}, gamma={f['gamma']} "
        f"(paired bootstrap {level} CI, p), Int-mu beside it:")
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
