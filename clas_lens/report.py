"""Paper tables: the per-language gain of every steering method, with its CI, p-value and MDE.

:func:`paper_table` reads the tidy frame of :func:`clas_lens.evaluation.evaluate` or of
:func:`clas_lens.sweep.load_sweep` (both have ``task, lang, condition, metric, value, ci_low,
ci_high, n, diff, diff_ci_low, diff_ci_high, p_value``) and returns one row per (task, metric,
method, language): the unsteered and steered scores, the gain (the paired difference, steered
minus unsteered) with its confidence interval and p-value, the Holm-adjusted p-value over the
target languages of that method, and the minimum detectable effect (MDE) of the comparison, so
that a null result is read against what the items could have shown. The anchor language (English
by default) is kept, marked ``role="anchor"`` and left out of the Holm family: its row reports
the cost of steering, not a target gain.

:func:`format_table` lays a paper table out wide (one row per method, one column per language,
cells such as ``+0.12 [-0.03, 0.27]*``) for ``.to_latex()`` or ``.to_markdown()``.

The MDE (``metrics.min_detectable_effect``, two-sided level ``1 - confidence``, power 0.8) comes
from the per-item scores when the frame carries them (``evaluate``'s ``attrs["predictions"]``):
for 0/1 metrics from the share of items whose outcome changed (McNemar), otherwise from the SD of
the paired differences (t test); ``mde_source`` says ``"items"``. Without per-item scores (sweep
frames), or when they cannot say (no item changed, or too few for any effect to reach the power),
it is read off the width of the paired CI, ``(z_{1-a/2} + z_power) * width / (2 z_{(1+c)/2})``
(``mde_source="ci"``). See docs/methods.md, "Evaluation" and "Statistical tests".

Pure: frames in, frames out; imports only ``clas_lens.metrics``, ``clas_lens.vocab`` and
``clas_lens.errors``.

>>> import pandas as pd
>>> rows = [("en", "unsteered", 0.8, None, None, None, None), ("en", "clas", 0.78, -0.02, -0.1, 0.06, 0.6),
...         ("de", "unsteered", 0.5, None, None, None, None), ("de", "clas", 0.6, 0.1, 0.02, 0.18, 0.01),
...         ("sw", "unsteered", 0.3, None, None, None, None), ("sw", "clas", 0.35, 0.05, -0.03, 0.13, 0.2)]
>>> df = pd.DataFrame(rows, columns=["lang", "condition", "value", "diff", "diff_ci_low", "diff_ci_high", "p_value"])
>>> df = df.assign(task="cloze", metric="accuracy", ci_low=df.value - 0.1, ci_high=df.value + 0.1, n=40)
>>> table = paper_table(df)
>>> table[["method", "lang", "role", "gain", "p_holm"]].round(3).to_dict("records")[:2]
[{'method': 'clas', 'lang': 'en', 'role': 'anchor', 'gain': -0.02, 'p_holm': nan}, {'method': 'clas', 'lang': 'de', 'role': 'target', 'gain': 0.1, 'p_holm': 0.02}]
>>> format_table(table).loc["clas", "de"]
'+0.10 [+0.02, +0.18]*'
>>> "\\\\begin{tabular}" in format_table(table).to_latex()
True
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from clas_lens.errors import DataValidationError
from clas_lens.metrics import holm, min_detectable_effect
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED, canonical_condition, is_unsteered

__all__ = ["PAPER_COLUMNS", "paper_table", "format_table"]

#: Columns of :func:`paper_table`, in order.
PAPER_COLUMNS = [
    "task", "metric", "method", "lang", "role", "n", "unsteered", "steered", "gain", "gain_ci_low",
    "gain_ci_high", "p_value", "p_holm", "significant", "mde", "mde_source",
]
_NEEDED = ["task", "lang", "condition", "metric", "value", "diff", "diff_ci_low", "diff_ci_high", "p_value"]


def _frame_confidence(results: pd.DataFrame) -> float:
    grid = results.attrs.get("grid")
    if isinstance(grid, Mapping) and grid.get("confidence") is not None:
        return float(grid["confidence"])
    return DEFAULT_CONFIDENCE


def _select_methods(conditions: Sequence[str], methods) -> dict[str, str]:
    """``{condition: label}`` in table order."""
    steered = [c for c in conditions if c != UNSTEERED]
    if methods is None:
        return {c: c for c in steered}
    wanted = dict(methods) if isinstance(methods, Mapping) else {m: m for m in methods}
    unknown = [m for m in wanted if m not in steered]
    if unknown:
        raise DataValidationError(f"No condition {unknown} in the results (steered conditions: {steered}).")
    return {c: str(label) for c, label in wanted.items()}


def _mde_from_items(base: np.ndarray, steered: np.ndarray, alpha: float, power: float) -> float:
    if len(base) < 2:
        return math.nan
    binary = np.isin(base, (0.0, 1.0)).all() and np.isin(steered, (0.0, 1.0)).all()
    if binary:
        discordance = float(np.mean(base != steered))
        if discordance == 0:
            return math.nan  # no item changed: the items say nothing about detectable effects
        return min_detectable_effect(len(base), kind="binary", discordance=discordance, level=alpha, power=power)
    sd = float(np.std(steered - base, ddof=1))
    return min_detectable_effect(len(base), kind="continuous", sd=sd, level=alpha, power=power) if sd > 0 else math.nan


def _mde_from_ci(low: float, high: float, confidence: float, power: float) -> float:
    width = high - low
    if not np.isfinite(width) or width <= 0:
        return math.nan
    se = width / (2 * sps.norm.ppf((1 + confidence) / 2))
    return float((sps.norm.ppf(1 - (1 - confidence) / 2) + sps.norm.ppf(power)) * se)


def _paired_items(preds: pd.DataFrame, task, lang, condition: str, metric: str):
    if preds is None or metric not in preds.columns or "item_id" not in preds.columns:
        return None
    sel = preds[(preds["task"] == task) & (preds["lang"] == lang)]
    cond = sel["condition"].map(canonical_condition)
    b = sel[cond == UNSTEERED].set_index("item_id")[metric]
    s = sel[cond == condition].set_index("item_id")[metric]
    if b.empty or s.empty or set(b.index) != set(s.index) or b.index.has_duplicates:
        return None
    return b.to_numpy(dtype=np.float64), s.reindex(b.index).to_numpy(dtype=np.float64)


def paper_table(
    results: pd.DataFrame,
    *,
    metric: str | Sequence[str] | None = None,
    methods: Sequence[str] | Mapping[str, str] | None = None,
    anchor: str | None = "en",
    confidence: float | None = None,
    power: float = 0.8,
    adjust: bool = True,
) -> pd.DataFrame:
    """Per-language gains of each steering method with CI, p-value, Holm p-value and MDE.

    Args:
        results: the frame of :func:`clas_lens.evaluate` or :func:`clas_lens.sweep.load_sweep`
            (a sweep's ``condition`` is the cell setting, e.g. ``clas|alpha=1.0|beta=0.2|...``).
        metric: keep only this metric (or these); default every metric in ``results``.
        methods: steered conditions to keep, in order (a dict also relabels them:
            ``{"clas|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4": "CLAS"}``); default all.
        anchor: the anchor language (``role="anchor"``, outside the Holm family); None: none.
        confidence: the level of the frame's intervals (default: the sweep grid's, else 0.95);
            also sets the test level ``1 - confidence`` of ``significant`` and of the MDE.
        power: the power of the MDE.
        adjust: Holm-adjust the p-values over each method's target languages (``False``:
            ``p_holm`` is the raw p-value).

    Returns:
        DataFrame with :data:`PAPER_COLUMNS`, rows ordered by task, metric, method (as given)
        and language (anchor first, then as in ``results``). ``significant``: ``p_holm <
        1 - confidence``. ``attrs``: ``confidence``, ``power``, ``anchor``.
    """
    missing = [c for c in _NEEDED if c not in results.columns]
    if missing:
        raise DataValidationError(
            f"paper_table needs the frame of evaluate() or load_sweep(); missing columns {missing}."
        )
    confidence = _frame_confidence(results) if confidence is None else float(confidence)
    if not 0 < confidence < 1 or not 0 < power < 1:
        raise ValueError(f"confidence and power must be in (0, 1), got {confidence} and {power}.")
    level = 1 - confidence
    df = results.assign(condition=results["condition"].map(canonical_condition))
    if metric is not None:
        keep = [metric] if isinstance(metric, str) else list(metric)
        absent = sorted(set(keep) - set(df["metric"]))
        if absent:
            raise DataValidationError(f"No metric {absent} in the results (metrics: {sorted(set(df['metric']))}).")
        df = df[df["metric"].isin(keep)]
    if not df["condition"].map(is_unsteered).any():
        raise DataValidationError(f"The results have no {UNSTEERED!r} condition to compare against.")
    chosen = _select_methods(list(dict.fromkeys(df["condition"])), methods)
    preds = results.attrs.get("predictions")
    langs = list(dict.fromkeys(df["lang"]))
    if anchor is not None and anchor in langs:
        langs = [anchor] + [l for l in langs if l != anchor]
    rows = []
    for (task, met), g in df.groupby(["task", "metric"], sort=False):
        base = g[g["condition"] == UNSTEERED].drop_duplicates("lang").set_index("lang")["value"]
        for condition, label in chosen.items():
            block = []
            for lang in langs:
                r = g[(g["condition"] == condition) & (g["lang"] == lang)]
                if r.empty:
                    continue
                r = r.iloc[0]
                items = _paired_items(preds, task, lang, condition, met)
                mde, source = (_mde_from_items(*items, level, power), "items") if items is not None else (math.nan, "")
                if not np.isfinite(mde):  # no per-item scores, or too few changed items to say
                    mde, source = _mde_from_ci(r["diff_ci_low"], r["diff_ci_high"], confidence, power), "ci"
                block.append({
                    "task": task, "metric": met, "method": label, "lang": lang,
                    "role": "anchor" if lang == anchor else "target",
                    "n": int(r["n"]) if "n" in r and pd.notna(r["n"]) else (len(items[0]) if items else np.nan),
                    "unsteered": float(base.get(lang, np.nan)), "steered": float(r["value"]),
                    "gain": float(r["diff"]), "gain_ci_low": float(r["diff_ci_low"]),
                    "gain_ci_high": float(r["diff_ci_high"]), "p_value": float(r["p_value"]),
                    "mde": float(mde), "mde_source": source,
                })
            targets = [i for i, b in enumerate(block) if b["role"] == "target"]
            p = [block[i]["p_value"] for i in targets]
            adjusted = holm(p) if adjust else np.asarray(p, dtype=np.float64)
            for b in block:
                b["p_holm"] = math.nan
            for i, q in zip(targets, adjusted):
                block[i]["p_holm"] = float(q)
            for b in block:
                b["significant"] = bool(np.isfinite(b["p_holm"]) and b["p_holm"] < level)
            rows += block
    out = pd.DataFrame(rows, columns=PAPER_COLUMNS)
    out.attrs.update({"confidence": confidence, "power": power, "anchor": anchor})
    return out


def format_table(
    table: pd.DataFrame,
    *,
    digits: int = 2,
    ci: bool = True,
    mark: str = "*",
    value: str = "gain",
) -> pd.DataFrame:
    """A paper table laid out wide: one row per method (and task/metric when there are
    several), one column per language, cells ``"+0.10 [+0.02, +0.18]*"`` (``mark`` when
    ``significant``). ``value="steered"`` shows the steered score instead of the gain (with
    its gain's mark). Call ``.to_latex()`` on the result for a LaTeX tabular.

    >>> t = pd.DataFrame({"task": "cloze", "metric": "accuracy", "method": "clas", "lang": ["en", "de"],
    ...                   "gain": [-0.02, 0.1], "gain_ci_low": [-0.1, 0.02], "gain_ci_high": [0.06, 0.18],
    ...                   "steered": [0.78, 0.6], "significant": [False, True]})
    >>> format_table(t, ci=False).to_dict("records")
    [{'en': '-0.02', 'de': '+0.10*'}]
    """
    if value not in ("gain", "steered"):
        raise ValueError(f"value must be 'gain' or 'steered', got {value!r}.")
    if table.empty:
        return pd.DataFrame()

    def cell(r) -> str:
        sign = "+" if value == "gain" else ""
        text = f"{r[value]:{sign}.{digits}f}"
        if ci and value == "gain":
            text += f" [{r['gain_ci_low']:+.{digits}f}, {r['gain_ci_high']:+.{digits}f}]"
        return text + (mark if bool(r.get("significant", False)) else "")

    several = table[["task", "metric"]].drop_duplicates().shape[0] > 1
    index = ["task", "metric", "method"] if several else ["method"]
    cells = table.assign(cell=table.apply(cell, axis=1))
    wide = cells.pivot_table(index=index, columns="lang", values="cell", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(table["lang"]))]
    wide.columns.name = None
    return wide
