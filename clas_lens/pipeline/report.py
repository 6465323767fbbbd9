"""What a finished run directory shows, from its saved files alone (no model): the summary
table, the printed summary and every figure (CLI: ``clas-lens figures RUN_DIR``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from clas_lens import plotting
from clas_lens.io import atomic_write_text
from clas_lens.neurons import NeuronSet
from clas_lens.pipeline.neuron_checks import CONTROL_DIR
from clas_lens.pipeline.rundir import load_run_config
from clas_lens.pipeline.summary import SUMMARY_DIR, write_tables
from clas_lens.pipeline.summary_md import LABELS, summary_markdown
from clas_lens.pipeline.sweeps import load_selection
from clas_lens.positive_control import figure as deactivation_figure
from clas_lens.stats import NeuronStats
from clas_lens.sweep import format_param
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


def _gains(run_dir: Path) -> pd.DataFrame:
    path = run_dir / SUMMARY_DIR / "gains.csv"
    return pd.read_csv(path) if path.exists() else write_tables(run_dir)["gains"]


def summary_table(run_dir: str | Path) -> pd.DataFrame:
    """Per task and language, on test: the unsteered score, the CLAS and Int-mu gains at their
    chosen settings with CIs, calibrated p-values and Holm p-values over the target languages;
    each task by its :func:`report_metric`."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    g = _gains(run_dir)
    rows = []
    for (task, lang), sub in g.groupby(["task", "lang"], sort=False):
        sub = sub[sub.metric == report_metric(cfg, sub.metric)]
        row = {"task": task, "lang": lang, "metric": sub.metric.iloc[0]}
        base = sub[sub.condition == UNSTEERED]
        if len(base):
            row[UNSTEERED] = base.value.iloc[0]
        for name in ("clas", "int_mu"):
            sel = sub[sub.condition == name]
            if len(sel):
                r = sel.iloc[0]
                row.update({f"{name}_gain": r["diff"], f"{name}_ci": f"[{r.diff_ci_low:+.3f}, {r.diff_ci_high:+.3f}]",
                            f"{name}_p": r.p_value, f"{name}_p_holm": r.p_holm})
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


def _test_gains(run_dir: Path) -> pd.DataFrame:
    """The calibrated test gains of every method and control, conditions named for figures."""
    g = _gains(run_dir)
    g = g[~g.condition.str.contains(r"\[", regex=True)]
    return g.assign(condition=[LABELS.get(c, c) for c in g.condition])


def _dev_curve(run_dir: Path, cfg) -> pd.DataFrame | None:
    """The dev sweep's CLAS gains by beta at the chosen gamma and layers (None: fewer than 2 betas)."""
    path = run_dir / "sweep_dev.csv"
    chosen = (load_selection(run_dir).get("chosen") or {}).get("clas")
    if not path.exists() or not chosen:
        return None
    d = pd.read_csv(path)
    d = d[(d.method == "clas") & (d.metric == cfg.eval.gain_metric)]
    d = d[((d.gamma - chosen["gamma"]).abs() < 1e-12) & ((d.alpha - chosen["alpha"]).abs() < 1e-12)
          & (d.layers.astype(str) == format_param(chosen["layers"]))]
    return d if d.beta.nunique() > 1 else None


def make_figures(run_dir: str | Path, *, formats=("html", "png", "svg"), log: Callable[[str], None] = print) -> dict[str, dict]:
    """(Re)build every figure of a run directory from its saved files (no model needed)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    figs = {}
    neurons = NeuronSet.load(run_dir / "neurons.safetensors")
    figs["neuron_categories"] = plotting.neuron_categories(neurons.counts())
    stats = NeuronStats.load(run_dir / "stats.safetensors")
    probs = {l: stats.active_prob(l).numpy() for l in stats.langs}
    figs["active_overlap"] = plotting.active_overlap(probs, float(cfg.neurons.params.get("prob_threshold", 0.5)))
    figs["activation_probabilities"] = plotting.activation_prob_distributions(probs)
    control = run_dir / CONTROL_DIR / "deactivation.csv"
    if control.exists():
        figs["positive_control"] = deactivation_figure(pd.read_csv(control))
    dev = _dev_curve(run_dir, cfg)
    if dev is not None:
        figs["dev_sweep"] = plotting.sweep_curves(dev, x="beta", y="diff",
                                                  title=f"CLAS on dev: {cfg.eval.gain_metric} gain by beta")
    figs["language_gains"] = plotting.language_gains(_test_gains(run_dir), anchor=cfg.corpus.anchor,
                                                     metric=cfg.eval.gain_metric, confidence=cfg.eval.confidence)
    metrics = pd.read_csv(run_dir / "clusters" / "metrics.csv")
    figs["silhouette_by_layer"] = plotting.cluster_by_layer(metrics, metric=cfg.clusters.divergence_metric)
    figs["projection"] = plotting.projection_scatter(pd.read_csv(run_dir / "clusters" / "projection.csv"))
    test = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    deltas = pd.read_csv(run_dir / "clusters" / "deltas.csv")
    gains = pd.read_csv(run_dir / "clusters" / "gains.csv")
    figs["divergence"] = plotting.divergence_scatter(divergence_points(gains, deltas, test),
                                                     test[test.hypothesis != "difference"])
    attr = run_dir / "attribution.csv"
    if attr.exists():
        figs["top_attributed_neurons"] = plotting.top_attributed_neurons(pd.read_csv(attr))
    with plotting.export_session():  # one browser for all the figures
        return {name: plotting.save_figure(fig, run_dir / "figures" / f"{name}.html", formats=tuple(formats))
                for name, fig in figs.items()}


def print_summary(run_dir: str | Path, out: Callable[[str], None] = print) -> None:
    """Print the run's closing summary (and write it: ``summary.md``, ``summary/*.csv``): the
    settings chosen on dev, the positive control, the split-half Jaccard, the test gains of
    CLAS and Int-mu with CIs, calibrated and Holm p-values and MDEs, CLAS minus each control,
    whether the anchor is kept (TOST) and the divergence test."""
    run_dir = Path(run_dir)
    text = summary_markdown(run_dir)
    atomic_write_text(run_dir / "summary.md", text)
    for line in text.rstrip("\n").split("\n"):
        out(line)
