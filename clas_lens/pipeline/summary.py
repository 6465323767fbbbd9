"""The summary tables of a run directory, from its saved files alone (no model).

All numbers come from the ``test`` sweeps' per-item scores (``sweeps/test/<task>/``), paired by
item (docs/methods.md, "Evaluation" and "Statistical tests"):

* :func:`gain_table`: each method's and control's gain over the unsteered condition per task,
  language and metric -- calibrated tests (:func:`clas_lens.evaluation.summarise`: t / sign-flip
  for dense metrics, Wilson / Newcombe / McNemar mid-p for binary ones), ``mde``, and ``p_holm``
  over the target languages (the anchor is not a target: its row has no ``p_holm``);
* :func:`controls_table`: CLAS minus each control of CLAS on the same items, per language, with
  the same tests; the random-neuron control is the mean over its seeds, item by item;
* :func:`anchor_table`: whether the anchor is kept under each method, by TOST within
  ``[eval] anchor_margins`` (:func:`clas_lens.evaluation.anchor_kept`): "kept" or "not shown";
* :func:`stability_summary`: the split-half Jaccard of the neuron categories, pooled over layers.

:func:`write_tables` writes them under ``summary/``; the markdown is in
:mod:`~clas_lens.pipeline.summary_md`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.evaluation import anchor_kept, gain_row, metric_kind, summarise
from clas_lens.evaluation.inference import paired_values
from clas_lens.evaluation.summary import add_holm
from clas_lens.pipeline.rundir import load_run_config, write_csv
from clas_lens.sweep import finished_records
from clas_lens.sweep.methods import control_methods
from clas_lens.vocab import UNSTEERED

__all__ = [
    "SUMMARY_DIR", "RANDOM", "CONTROL_COLUMNS", "report_items", "task_metrics", "gain_table", "controls_table",
    "anchor_table", "stability_summary", "write_tables",
]

#: Where the summary CSVs go inside a run directory.
SUMMARY_DIR = "summary"
#: The random-neuron control; its per-seed conditions are ``clas_random[seed=k]``.
RANDOM = "clas_random"
_KEYS = ("task", "lang", "method", "condition", "split", "item_id")
CONTROL_COLUMNS = ["task", "lang", "role", "control", "metric", "n", "diff", "diff_ci_low", "diff_ci_high", "p_value",
                   "p_holm", "mde", "test"]


def report_items(run_dir: str | Path) -> pd.DataFrame:
    """Per-item scores of every test sweep: columns task, lang, method, condition, split, item_id
    and the metrics (NaN where a task lacks one). ``condition`` is the method, or for the random
    control ``clas_random[seed=k]``, plus a condition ``clas_random`` holding the mean over
    the seeds of each item."""
    frames = []
    root = Path(run_dir) / "sweeps" / "test"
    for task_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for rec in finished_records(task_dir / "sweep"):
            df = pd.DataFrame(rec["items"])
            seed = rec.get("params", {}).get("neuron_seed")
            cond = rec["method"] if seed is None else f"{RANDOM}[seed={int(seed)}]"
            frames.append(df.assign(task=rec["task"], lang=rec["lang"], method=rec["method"], condition=cond,
                                    split=root.name))
    items = pd.concat(frames, ignore_index=True)
    rand = items[items.method == RANDOM]
    if len(rand):
        metrics = [c for c in rand.columns if c not in _KEYS]
        mean = rand.groupby(["task", "lang", "split", "item_id"], sort=False)[metrics].mean().reset_index()
        items = pd.concat([items, mean.assign(method=RANDOM, condition=RANDOM)], ignore_index=True)
    return items


def task_metrics(items: pd.DataFrame, task: str) -> list[str]:
    """The metrics of ``task`` in its items, in the task's order."""
    sub = items[items.task == task]
    return [c for c in items.columns if c not in _KEYS and sub[c].notna().any()]


def _kinds(frame: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    """Binary only where every value is 0 or 1 (a mean over seeds is continuous)."""
    out = {}
    for m in metrics:
        v = frame[m].dropna().to_numpy(dtype=np.float64)
        out[m] = "binary" if metric_kind(m) == "binary" and np.isin(v, (0.0, 1.0)).all() else "continuous"
    return out


def _holm_targets(rows: pd.DataFrame, anchor: str) -> pd.DataFrame:
    """``role`` (anchor / target) and ``p_holm`` over the target languages of each (task,
    condition, metric); the anchor's row has none."""
    rows = rows.copy()
    rows["role"] = np.where(rows["lang"] == anchor, "anchor", "target")
    rows["p_holm"] = np.nan
    tgt = rows[(rows.role == "target") & rows["p_value"].notna()]
    if len(tgt):
        rows.loc[tgt.index, "p_holm"] = add_holm(tgt)["p_holm"].to_numpy()
    return rows


def gain_table(items: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """Each condition's gain over the unsteered one, per task, language and metric
    (:data:`clas_lens.evaluation.COLUMNS` plus ``role``)."""
    parts = []
    opts = {"n_boot": cfg.eval.n_boot, "seed": cfg.run.seed, "confidence": cfg.eval.confidence}
    for task in items.task.unique():
        sub = items[items.task == task]
        metrics = task_metrics(items, task)
        for cond in [c for c in sub.condition.unique() if c != UNSTEERED]:
            pair = sub[sub.condition.isin([UNSTEERED, cond])]
            rows = summarise(pair, metrics, kinds=_kinds(sub[sub.condition == cond], metrics), **opts)
            parts.append(rows[rows.condition == cond])
        parts.insert(0, summarise(sub[sub.condition == UNSTEERED], metrics, **opts))
    out = pd.concat(parts, ignore_index=True)
    return _holm_targets(out, cfg.corpus.anchor)


def controls_table(items: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """CLAS minus each control of CLAS on the same items (:data:`CONTROL_COLUMNS`); the test is
    the calibrated one of the metric's kind, ``p_holm`` over the target languages."""
    rows = []
    controls = [RANDOM if c == RANDOM else c for c in control_methods()]
    for task in items.task.unique():
        sub = items[items.task == task]
        metrics = task_metrics(items, task)
        for lang in sub.lang.unique():
            clas = sub[(sub.lang == lang) & (sub.condition == "clas")]
            for control in controls:
                other = sub[(sub.lang == lang) & (sub.condition == control)]
                if clas.empty or other.empty:
                    continue
                kinds = _kinds(pd.concat([clas, other]), metrics)
                for m in metrics:
                    b, s = paired_values(other, clas, m, f"{task}/{lang}/clas-{control}")
                    r = gain_row(b, s, kinds[m], confidence=cfg.eval.confidence, seed=cfg.run.seed)
                    rows.append({"task": task, "lang": lang, "control": control, "metric": m, "n": len(b), **r})
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=CONTROL_COLUMNS)
    out = _holm_targets(out.rename(columns={"control": "condition"}), cfg.corpus.anchor)
    return out.rename(columns={"condition": "control"})[CONTROL_COLUMNS]


def anchor_table(items: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """Whether the anchor is kept under each condition, per task and metric with a margin in
    ``[eval] anchor_margins`` (TOST; "kept" or "not shown")."""
    margins = dict(cfg.eval.anchor_margins)
    parts = []
    for task in items.task.unique():
        sub = items[(items.task == task) & (items.lang == cfg.corpus.anchor) & ~items.condition.str.contains(r"\[")]
        metrics = [m for m in task_metrics(items, task) if m in margins]
        if sub.empty or not metrics or sub.condition.nunique() < 2:
            continue
        parts.append(anchor_kept(sub, cfg.corpus.anchor, margin=margins, metrics=metrics,
                                 level=round(1 - cfg.eval.confidence, 12)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def stability_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Split-half Jaccard per (category, lang): the neurons of all layers pooled per split
    (``sum n_both / sum |A u B|``), then mean, min and max over the splits; ``size``: the mean
    number of neurons a half found. Language-agnostic categories have ``lang`` "all".

    >>> t = pd.DataFrame({"category": "specific", "lang": "de", "layer": [0, 1, 0, 1], "n_a": [2, 2, 4, 0],
    ...                   "n_b": [2, 0, 4, 0], "n_both": [1, 0, 2, 0], "replicate": [0, 0, 1, 1]})
    >>> stability_summary(t)[["category", "lang", "jaccard", "jaccard_min", "n_splits"]].round(3).values.tolist()
    [['specific', 'de', 0.267, 0.2, 2]]
    """
    t = table.assign(lang=table["lang"].fillna("all"), union=table.n_a + table.n_b - table.n_both)
    per = t.groupby(["category", "lang", "replicate"], sort=False)[["n_both", "union", "n_a", "n_b"]].sum()
    per["jaccard"] = per.n_both / per.union.where(per.union > 0)
    per["size"] = (per.n_a + per.n_b) / 2
    g = per.groupby(level=["category", "lang"], sort=False)
    out = pd.DataFrame({"jaccard": g.jaccard.mean(), "jaccard_min": g.jaccard.min(), "jaccard_max": g.jaccard.max(),
                        "n_splits": g.jaccard.count(), "size": g["size"].mean()}).reset_index()
    return out


def write_tables(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Compute every summary table of a finished run directory and write ``summary/*.csv``;
    returns ``{name: table}`` (gains, controls, anchor, and stability when it was measured)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    items = report_items(run_dir)
    tables = {"gains": gain_table(items, cfg), "controls": controls_table(items, cfg), "anchor": anchor_table(items, cfg)}
    stab = run_dir / "neurons_stability.csv"
    if stab.exists():
        tables["stability"] = stability_summary(pd.read_csv(stab))
    for name, table in tables.items():
        write_csv(table, run_dir / SUMMARY_DIR / f"{name}.csv")
    return tables
