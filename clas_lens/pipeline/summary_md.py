"""The closing summary of a run as markdown (``summary.md``), from the run directory's files.

Sections, whatever the signs of the numbers: the settings chosen on dev (rule, task, metric,
items); the positive control (deactivation matrix, diagonal-dominance score and p); the
split-half Jaccard of the neuron categories; per task and metric on test, the gains of CLAS and
the other methods (CI, calibrated p, Holm p over the target languages, MDE), dense and binary;
CLAS minus each control per language (paired per item); whether the anchor is kept (TOST); the
divergence test (separation, alignment and their difference, with CI, p, n and the detectable
``|r|``). The tables themselves are in :mod:`~clas_lens.pipeline.summary`.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from clas_lens.io import atomic_write_text, read_json
from clas_lens.pipeline.neuron_checks import CONTROL_DIR, read_dominance
from clas_lens.pipeline.rundir import load_run_config
from clas_lens.pipeline.summary import RANDOM, write_tables
from clas_lens.pipeline.sweeps import load_selection
from clas_lens.sweep.methods import control_methods
from clas_lens.vocab import UNSTEERED

__all__ = ["LABELS", "fmt_ci", "fmt_p", "shown_metrics", "summary_markdown", "write_summary"]

#: How the summary names each method and control.
LABELS = {
    "clas": "CLAS", "int_mu": "Int-mu", "deactivate": "deactivate", "lape_deactivate": "LAPE deactivate",
    "diffmean": "DiffMean", RANDOM: "random neurons", "uniform_gain": "uniform gain", "boost_only": "boost-only",
    "suppress_only": "suppress-only",
}


def fmt_ci(x: float, lo: float, hi: float, digits: int = 3) -> str:
    """``+0.012 [-0.003, +0.027]``.

    >>> fmt_ci(0.0123, -0.003, 0.0271)
    '+0.012 [-0.003, +0.027]'
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def fmt_p(p: float) -> str:
    """A p-value with 2 significant digits ("n/a" for NaN).

    >>> fmt_p(0.01234), fmt_p(float("nan"))
    ('0.012', 'n/a')
    """
    return "n/a" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"


def shown_metrics(metrics: list[str]) -> list[str]:
    """The metrics a task is summarised by: its first (dense) metric and its binary ones.

    >>> shown_metrics(["margin", "gold_logprob", "accuracy"]), shown_metrics(["neg_nll", "nll"])
    (['margin', 'accuracy'], ['neg_nll'])
    """
    binary = [m for m in metrics[1:] if m in ("accuracy", "exact_match")]
    return metrics[:1] + binary


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _setting(params: dict) -> str:
    return ", ".join(f"{k} = {','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in params.items())


def _selection(run_dir: Path) -> list[str]:
    sel = load_selection(run_dir)
    if not sel:
        return ["No selection was recorded."]
    out = [f"Rule: {sel['rule']}.",
           f"Chosen on the **{sel['split']}** split of `{sel['task']}` by `{sel['metric']}` "
           f"({sel.get('limit') or 'all'} items per language, {len(sel.get('langs', []))} target languages); "
           "every number below is from the **test** split.", ""]
    rows = [[LABELS.get(m, m), _setting(p), f"{sel['mean_gain'].get(m, float('nan')):+.4f}", sel["n_settings"].get(m, 1)]
            for m, p in sel.get("chosen", {}).items()]
    rows += [[LABELS.get(m, m), _setting(p), "(one setting)", 1] for m, p in sel.get("fixed", {}).items()]
    return out + _table(["method", "chosen setting", "mean dev gain", "settings tried"], rows)


def _positive_control(run_dir: Path) -> list[str]:
    path = run_dir / CONTROL_DIR / "deactivation.csv"
    if not path.exists():
        return ["Not run (`[neurons] control_limit = 0`)."]
    frame, dom = pd.read_csv(path), read_dominance(run_dir)
    mat = frame.pivot(index="deactivated", columns="lang", values="delta_nll")
    cols = list(dict.fromkeys(frame["lang"]))
    rows = [[f"**{d}**"] + [f"{mat.loc[d, c]:+.3f}" for c in cols] for d in dict.fromkeys(frame["deactivated"])]
    out = [f"Change in held-out NLL (nats/token, {dom.get('n_sentences', '?')} test sentences per language) when the "
           f"`{dom.get('neurons', '?')}` neurons of the row language are zeroed:", ""]
    out += _table(["deactivated \\ evaluated"] + cols, rows) + [""]
    if "score" not in dom:
        out.append(f"Diagonal dominance: not tested (it needs 2 or more languages with neurons to zero; "
                   f"{frame['deactivated'].nunique()} had).")
    else:
        out.append(f"Diagonal dominance: score {dom['score']:+.4f} (diagonal mean {dom['diag_mean']:+.4f} - "
                   f"off-diagonal mean {dom['off_mean']:+.4f}), p = {fmt_p(dom['p_value'])} ({dom['method']} "
                   f"permutation test over {dom['n_perm']} pairings, {dom['n_langs']} languages); diagonal largest "
                   f"in its row for {100 * dom['share_row_max']:.0f} % of the rows.")
    return out


def _stability(tables: dict) -> list[str]:
    st = tables.get("stability")
    if st is None or st.empty:
        return ["Not measured (`[neurons] stability_splits = 0`)."]
    spec = st[st.category == "specific"]
    rows = [[r.category, r.lang, f"{r.jaccard:.3f} [{r.jaccard_min:.3f}, {r.jaccard_max:.3f}]", f"{r.size:.0f}"]
            for r in st[st.category != "specific"].itertuples()]
    if len(spec):
        rows.append(["specific", f"mean of {len(spec)} languages", f"{spec.jaccard.mean():.3f} "
                     f"[{spec.jaccard.min():.3f}, {spec.jaccard.max():.3f}]", f"{spec['size'].mean():.0f}"])
    n = int(st.n_splits.max())
    return [f"Jaccard of the neurons found on two random halves of the stats sentences, all layers pooled "
            f"(mean [min, max] over {n} splits; per language in `summary/stability.csv`):", ""] + _table(
        ["category", "language", "split-half Jaccard", "neurons per half"], rows)


def _gains(g: pd.DataFrame, task: str, metric: str, anchor: str) -> list[str]:
    sub = g[(g.task == task) & (g.metric == metric)]
    conds = [c for c in dict.fromkeys(sub.condition) if c != UNSTEERED and "[" not in c
             and c not in control_methods() + (RANDOM,)]
    base = sub[sub.condition == UNSTEERED].set_index("lang")
    header = ["language", "unsteered"]
    for c in conds:
        header += [f"{LABELS.get(c, c)} gain [CI]", "p", "p_holm", "MDE"]
    rows = []
    for lang in base.index:
        row = [f"{lang} (anchor)" if lang == anchor else lang, f"{base.loc[lang, 'value']:.3f}"]
        for c in conds:
            r = sub[(sub.condition == c) & (sub.lang == lang)]
            if r.empty:
                row += ["", "", "", ""]
                continue
            r = r.iloc[0]
            row += [fmt_ci(r["diff"], r.diff_ci_low, r.diff_ci_high), fmt_p(r.p_value), fmt_p(r.p_holm),
                    f"{r.mde:.3f}" if pd.notna(r.mde) else "n/a"]
        rows.append(row)
    n = int(base["n"].max()) if len(base) else 0
    test = sub[sub.condition == "clas"]["test"].dropna()
    out = [f"**{task} / {metric}** (n = {n} test items per language; test: {test.iloc[0] if len(test) else 'n/a'})",
           ""] + _table(header, rows)
    if sub[sub.condition.isin(conds)]["mde"].isna().any():
        out += ["", "MDE n/a: no item changed its outcome, or too few items for any effect to reach power 0.8."]
    return out


def _controls(c: pd.DataFrame, task: str, metric: str, anchor: str, n_seeds: int) -> list[str]:
    sub = c[(c.task == task) & (c.metric == metric)]
    if sub.empty:
        return []
    controls = list(dict.fromkeys(sub.control))
    label = {k: LABELS.get(k, k) + (f" ({n_seeds} seeds)" if k == RANDOM else "") for k in controls}
    rows = []
    for lang in dict.fromkeys(sub.lang):
        row = [f"{lang} (anchor)" if lang == anchor else lang]
        for k in controls:
            r = sub[(sub.lang == lang) & (sub.control == k)]
            row.append("" if r.empty else f"{fmt_ci(r.iloc[0]['diff'], r.iloc[0].diff_ci_low, r.iloc[0].diff_ci_high)} "
                       f"p={fmt_p(r.iloc[0].p_value)}")
        rows.append(row)
    return [f"**{task} / {metric}**: CLAS minus control, paired per item (p_holm in `summary/controls.csv`)", ""] + \
        _table(["language"] + [f"CLAS - {label[k]}" for k in controls], rows)


def _anchor(a: pd.DataFrame, tasks: list[str]) -> list[str]:
    if a is None or a.empty:
        return ["No anchor comparison (no metric with a margin in `[eval] anchor_margins`)."]
    shown = {t: shown_metrics(list(dict.fromkeys(a[a.task == t].metric))) for t in tasks}
    a = a[[m in shown.get(t, []) for t, m in zip(a.task, a.metric)]]
    a = a.assign(order=a.task.map({t: i for i, t in enumerate(tasks)})).sort_values("order", kind="stable")
    rows = [[r.task, LABELS.get(r.condition, r.condition), r.metric, fmt_ci(r.diff, r.ci_low, r.ci_high), f"{r.margin:g}",
             fmt_p(r.p_value), f"**{r.verdict}**"] for r in a.itertuples()]
    return ["Steered minus unsteered in the anchor language; \"kept\" only when TOST shows the change within the "
            "margin (the interval is the TOST one), else \"not shown\":", ""] + _table(
        ["task", "method", "metric", "change [CI]", "margin", "TOST p", "verdict"], rows)


def _divergence(run_dir: Path) -> list[str]:
    path = run_dir / "clusters" / "divergence.csv"
    if not path.exists():
        return ["Not run."]
    d = pd.read_csv(path)
    meta = read_json(run_dir / "clusters" / "divergence.json") if (run_dir / "clusters" / "divergence.json").exists() else {}
    rows = [[r.quantity, r.method, fmt_ci(r.estimate, r.ci_low, r.ci_high), fmt_p(r.p_value), int(r.n),
             f"{r.detectable_r:.2f}"] for r in d.itertuples()]
    return [f"CLAS's per-language test gain vs the change in language separation (`{d.metric.iloc[0]}`) and in "
            f"alignment to the anchor, held-out test sentences, centred representations, layer "
            f"{int(d.layer.iloc[0])} ({meta.get('layer_choice', 'rule')}):", ""] + _table(
        ["quantity", "method", "estimate [CI]", "p", "n", "detectable |r|"], rows)


def summary_markdown(run_dir: str | Path, tables: dict | None = None) -> str:
    """The summary of a finished run directory as markdown (the tables are computed unless
    given)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    tables = tables if tables is not None else write_tables(run_dir)
    meta = read_json(run_dir / "run.json")
    level = f"{100 * cfg.eval.confidence:g} %"
    out = [f"# Run `{cfg.run.name}`: {meta.get('model', {}).get('model_id', cfg.model.name)}", "",
           f"Intervals are {level}; p-values two-sided; MDE = the smallest true effect detected with power 0.8.", "",
           "## Settings chosen on dev", ""] + _selection(run_dir)
    out += ["", "## Positive control", ""] + _positive_control(run_dir)
    out += ["", "## Split-half stability of the neuron categories", ""] + _stability(tables)
    g, c = tables["gains"], tables["controls"]
    n_seeds = len(cfg.steering.random_seeds)
    out += ["", "## Gains on test (steered minus unsteered, paired per item)", ""]
    tasks = [t for t in cfg.eval.tasks if t in set(g.task)]
    for task in tasks:
        for metric in shown_metrics(list(dict.fromkeys(g[g.task == task].metric))):
            out += _gains(g, task, metric, cfg.corpus.anchor) + [""]
    out += ["## CLAS minus its controls", ""]
    for task in [t for t in tasks if t in set(c.task)]:
        for metric in shown_metrics(list(dict.fromkeys(c[c.task == task].metric))):
            out += _controls(c, task, metric, cfg.corpus.anchor, n_seeds) + [""]
    out += ["## Anchor kept?", ""] + _anchor(tables.get("anchor"), tasks)
    out += ["", "## Divergence test", ""] + _divergence(run_dir)
    timing = run_dir / "timing.json"
    if timing.exists():
        t = read_json(timing)
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in (t.get("steps") or {}).items())
        out += ["", f"Run time: {t['seconds']:.0f} s" + (f" ({parts})." if parts else ".")]
    return "\n".join(out) + "\n"


def write_summary(run_dir: str | Path) -> Path:
    """Write ``summary.md`` and ``summary/*.csv`` of a finished run directory; return the
    markdown's path."""
    run_dir = Path(run_dir)
    return atomic_write_text(run_dir / "summary.md", summary_markdown(run_dir))
