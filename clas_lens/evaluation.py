"""Evaluate a task across languages under steering conditions, with CIs and paired tests.

:func:`evaluate` runs ``task.predict`` for every (language, condition) inside
:func:`clas_lens.steering.steer` and returns a tidy DataFrame, one row per (lang, condition,
metric): ``task, lang, condition, metric, value, ci_low, ci_high, n`` (seeded percentile
bootstrap CI of the mean) and, for every condition except the unsteered baseline, the paired
difference against the baseline on the same items: ``diff, diff_ci_low, diff_ci_high, p_value``
(:func:`clas_lens.metrics.paired_bootstrap`, ``diff = steered - baseline``). The per-item
predictions of every run are kept in ``df.attrs["predictions"]`` (with a ``condition`` column).

Per-language templates (``ClasSteering(neurons)`` with ``target_lang=None``, ``SetNeurons.int_mu
(neurons, stats)``, ``DiffMeanSteering(None, "en", ...)``) are bound to each evaluated language:
German is steered with German's specific neurons, Swahili with Swahili's. The anchor language
(English by default) is evaluated in every run, so an English drop is always reported next to a
gain.

The summary functions (:func:`metric_row`, :func:`paired_row`, :func:`summarise`) are pure:
per-item values in, tidy rows out; :mod:`clas_lens.sweep` reuses them.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from clas_lens.errors import DataValidationError
from clas_lens.steering import as_interventions, bind_lang, steer

#: Columns of :func:`evaluate`'s result, in order.
COLUMNS = [
    "task", "lang", "condition", "metric", "value", "ci_low", "ci_high", "n",
    "diff", "diff_ci_low", "diff_ci_high", "p_value",
]
#: Name given to the unsteered condition when ``conditions`` has none.
BASELINE = "baseline"
_BULKY = ("neurons", "mask", "values", "means")


def metric_row(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """``value`` (mean), ``ci_low``, ``ci_high`` (bootstrap) and ``n`` of per-item values.

    >>> r = metric_row([1, 0, 1, 1], n_boot=200)
    >>> r["value"], r["n"]
    (0.75, 4)
    """
    from clas_lens.metrics import bootstrap_ci

    x = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_ci(x, n_boot=n_boot, seed=seed, alpha=alpha)
    return {"value": float(x.mean()) if len(x) else math.nan, "ci_low": low, "ci_high": high, "n": int(len(x))}


def paired_row(
    baseline: Sequence[float], steered: Sequence[float], *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """Paired bootstrap of ``steered - baseline``: ``diff, diff_ci_low, diff_ci_high, p_value``.

    >>> r = paired_row([0, 0, 1, 0], [1, 0, 1, 1], n_boot=200)
    >>> r["diff"]
    0.5
    """
    from clas_lens.metrics import paired_bootstrap

    r = paired_bootstrap(
        np.asarray(baseline, dtype=np.float64), np.asarray(steered, dtype=np.float64), n_boot=n_boot, seed=seed, alpha=alpha
    )
    return {"diff": r["diff"], "diff_ci_low": r["ci_low"], "diff_ci_high": r["ci_high"], "p_value": r["p_value"]}


def _nan_diff() -> dict[str, float]:
    return {"diff": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "p_value": math.nan}


def _paired_values(base: pd.DataFrame, other: pd.DataFrame, metric: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    b = base.set_index("item_id")[metric]
    o = other.set_index("item_id")[metric]
    if b.index.has_duplicates or o.index.has_duplicates:
        raise DataValidationError(f"{where}: duplicated item ids; paired comparison needs unique ids.")
    if set(b.index) != set(o.index):
        raise DataValidationError(
            f"{where}: the steered and baseline runs scored different items "
            f"({len(set(b.index) ^ set(o.index))} differ); they must share the item set."
        )
    return b.to_numpy(dtype=np.float64), o.reindex(b.index).to_numpy(dtype=np.float64)


def summarise(
    predictions: pd.DataFrame,
    metrics: Sequence[str],
    *,
    baseline: str = BASELINE,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tidy rows (see :data:`COLUMNS`) from per-item predictions with a ``condition`` column.

    Pure: rows in the order the (task, lang, condition) groups first appear; diffs against the
    ``baseline`` condition of the same (task, lang), NaN for the baseline itself.

    >>> preds = pd.DataFrame({"task": "t", "lang": "en", "item_id": ["a", "b", "a", "b"],
    ...                       "condition": ["baseline"] * 2 + ["x"] * 2, "accuracy": [0, 1, 1, 1]})
    >>> summarise(preds, ["accuracy"], n_boot=100)[["condition", "value", "diff"]].to_dict("list")
    {'condition': ['baseline', 'x'], 'value': [0.5, 1.0], 'diff': [nan, 0.5]}
    """
    rows = []
    groups = predictions.groupby(["task", "lang", "condition"], sort=False)
    frames = {k: g for k, g in groups}
    for (task, lang, cond), g in frames.items():
        base = frames.get((task, lang, baseline))
        for metric in metrics:
            row: dict[str, Any] = {"task": task, "lang": lang, "condition": cond, "metric": metric}
            row.update(metric_row(g[metric].to_numpy(dtype=np.float64), n_boot=n_boot, seed=seed, alpha=alpha))
            if cond == baseline or base is None:
                row.update(_nan_diff())
            else:
                b, s = _paired_values(base, g, metric, f"{task}/{lang}/{cond}")
                row.update(paired_row(b, s, n_boot=n_boot, seed=seed, alpha=alpha))
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def describe(interventions) -> list[dict]:
    """``to_dict()`` of each intervention without its bulky parts (masks, values, means).

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> describe(Deactivate(torch.eye(2, 64, dtype=torch.bool)))[0]["type"]
    'Deactivate'
    """
    out = []
    for iv in as_interventions(interventions):
        d = iv.to_dict()
        for k in _BULKY:
            if k in d:
                d[k] = "..."
        out.append(d)
    return out


def _conditions(conditions: Mapping[str, Any] | None) -> tuple[dict[str, list], str]:
    if conditions is None:
        conditions = {}
    if not isinstance(conditions, Mapping):
        raise DataValidationError(
            "conditions must be a dict {name: intervention | list | None}, e.g. "
            "{'none': None, 'clas': ClasSteering(neurons)}."
        )
    out = {str(k): as_interventions(v) for k, v in conditions.items()}
    empty = [k for k, v in out.items() if not v]
    if empty:
        return out, empty[0]
    name = BASELINE if BASELINE not in out else "unsteered"
    return {name: [], **out}, name


def evaluate(
    model,
    task,
    langs: Sequence[str] | None = None,
    conditions: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
    anchor: str | None = "en",
    batch_size: int = 32,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Score ``task`` in ``langs`` under each steering condition; tidy rows + paired diffs.

    Args:
        model: a TransformerBridge.
        task: a Task (``load_task``) or anything with ``name``, ``metrics``, ``items(lang)`` and
            ``predict(model, lang, *, limit, batch_size)``.
        langs: languages to evaluate (default: the task's); ``anchor`` is added (first) if missing.
        conditions: ``{name: intervention | list of them | None}``. The first condition with no
            intervention is the baseline; if there is none, an unsteered ``"baseline"`` is
            added. Templates (``target_lang=None``) are bound to each evaluated language.
        limit: first n items per language.
        anchor: language evaluated in every run (None: do not add one).
        batch_size: passed to ``task.predict``.
        n_boot, seed, alpha: bootstrap settings of the CIs and paired tests.

    Returns:
        DataFrame with :data:`COLUMNS`; ``attrs``: ``predictions`` (per item, with
        ``condition``), ``baseline``, ``conditions`` (intervention settings, incl. site),
        ``model_info``, ``langs``.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.steering import Deactivate
    >>> model = tiny_model("llama")
    >>> task = load_task("cloze", langs=["en", "de"])
    >>> off = Deactivate(torch.ones(2, 64, dtype=torch.bool), layers=[1])
    >>> df = evaluate(model, task, ["de"], {"none": None, "off": off}, limit=3, n_boot=100)
    >>> sorted(set(df["lang"])), sorted(set(df["condition"]))
    (['de', 'en'], ['none', 'off'])
    >>> len(df.attrs["predictions"])
    12
    """
    from tqdm.auto import tqdm

    from clas_lens.models import model_info

    langs = list(langs) if langs is not None else list(getattr(task, "langs", []))
    if isinstance(langs, str):
        langs = [langs]
    if anchor is not None and anchor not in langs:
        langs = [anchor] + langs
    if not langs:
        raise DataValidationError("evaluate() got no languages: pass langs=[...].")
    if len(set(langs)) != len(langs):
        raise DataValidationError(f"Duplicated languages in {langs}.")
    for lang in langs:
        task.items(lang)  # a clear error for an unknown language before any work
    conds, baseline = _conditions(conditions)
    # Bind templates and build every hook once up front: errors (unknown language, a
    # NeuronSet from another model) surface before the first forward pass.
    bound: dict[tuple[str, str], list] = {}
    for lang in langs:
        for name, ivs in conds.items():
            b = bind_lang(ivs, lang)
            for iv in b:
                iv.hooks(model)
            bound[(lang, name)] = b
    runs = [(lang, name) for lang in langs for name in conds]
    show = progress if progress is not None else len(runs) >= 4
    preds = []
    for lang, name in tqdm(runs, desc=f"evaluate {getattr(task, 'name', '')}", disable=not show, leave=False):
        with steer(model, *bound[(lang, name)]):
            df = task.predict(model, lang, limit=limit, batch_size=batch_size)
        df = df.copy()
        if "lang" not in df.columns:
            df.insert(0, "lang", lang)
        if "task" not in df.columns:
            df.insert(0, "task", getattr(task, "name", "task"))
        df.insert(int(df.columns.get_loc("lang")) + 1, "condition", name)
        preds.append(df)
    predictions = pd.concat(preds, ignore_index=True)
    out = summarise(predictions, list(task.metrics), baseline=baseline, n_boot=n_boot, seed=seed, alpha=alpha)
    out.attrs["predictions"] = predictions
    out.attrs["baseline"] = baseline
    out.attrs["conditions"] = {name: describe(ivs) for name, ivs in conds.items()}
    out.attrs["model_info"] = model_info(model).to_dict()
    out.attrs["langs"] = langs
    return out
