"""Choosing each steering method's setting on the dev split, by one named rule.

Every method with more than one setting in the grid (CLAS's beta x gamma x layers, Int-mu's
value x layers, ...) is run on the ``dev`` items of the gain task; :func:`select_settings`
ranks the settings by :data:`SELECT_RULE` and marks one per method as chosen. The test split is
then run at the chosen settings only, so nothing reported on test was picked by looking at test
(docs/methods.md, "Evaluation"). Pure (DataFrames in and out).

>>> import pandas as pd
>>> gains = pd.DataFrame({"method": "clas", "condition": ["b0.2"] * 2 + ["b0.5"] * 2, "lang": ["de", "ru"] * 2,
...                       "gain": [0.1, 0.3, 0.2, 0.2],
...                       "params": [{"alpha": 1.0, "beta": 0.2, "gamma": 0.2, "layers": "last:4"}] * 2
...                               + [{"alpha": 1.0, "beta": 0.5, "gamma": 0.2, "layers": "last:4"}] * 2})
>>> t = select_settings(gains, n_layers=18)
>>> t[["condition", "mean_gain", "strength", "rank", "chosen"]].values.tolist()
[['b0.2', 0.2, 0.4, 1, True], ['b0.5', 0.2, 0.7, 2, False]]
>>> chosen_params(t)
{'clas': {'alpha': 1.0, 'beta': 0.2, 'gamma': 0.2, 'layers': 'last:4'}}
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

from clas_lens.errors import DataValidationError
from clas_lens.specs import resolve_layers

__all__ = ["SELECT_RULE", "SELECTION_COLUMNS", "TIE_TOLERANCE", "setting_strength", "select_settings", "chosen_params"]

#: The rule, as the summary states it.
SELECT_RULE = (
    "largest mean gain over the target languages on dev; ties (within 1e-9) -> the smaller strength "
    "(alpha * (beta + gamma) for CLAS and its controls, |strength| for DiffMean), then fewer steered layers, "
    "then the earlier setting of the grid"
)
#: Mean gains closer than this are a tie.
TIE_TOLERANCE = 1e-9
#: Columns of :func:`select_settings`.
SELECTION_COLUMNS = ["method", "condition", "params", "mean_gain", "n_langs", "strength", "n_layers", "rank", "chosen"]


def setting_strength(params: Mapping[str, Any]) -> float:
    """How strong a setting is, for the tie-break: ``alpha * (beta + gamma)`` (CLAS: missing
    terms count 0, ``alpha`` 1), plus ``|strength|`` (DiffMean); 0 for a setting without any
    (Int-mu's value).

    >>> setting_strength({"alpha": 0.5, "beta": 0.6, "gamma": 0.2}), setting_strength({"value": "mean"})
    (0.4, 0.0)
    """
    alpha = float(params.get("alpha", 1.0))
    rule = alpha * (abs(float(params.get("beta", 0.0))) + abs(float(params.get("gamma", 0.0))))
    return float(rule + abs(float(params.get("strength", 0.0))))


def _n_layers(params: Mapping[str, Any], n_layers: int) -> int:
    spec = params.get("layers")
    if spec is None:
        return 0
    return len(resolve_layers(spec, n_layers))


def select_settings(gains: pd.DataFrame, *, n_layers: int) -> pd.DataFrame:
    """Rank every method's settings by :data:`SELECT_RULE` and mark the best one ``chosen``.

    ``gains``: one row per (method, condition, target language) with columns ``method``,
    ``condition`` (the setting's name), ``params`` (its parameters, a dict), ``lang`` and
    ``gain`` (the dev gain in the language, steered minus unsteered on the same items).
    ``n_layers``: the model's, to count steered layers. Returns :data:`SELECTION_COLUMNS`, one
    row per setting, in rank order within each method (``params`` as JSON).
    """
    need = {"method", "condition", "params", "lang", "gain"}
    if not need <= set(gains.columns):
        raise DataValidationError(f"select_settings needs columns {sorted(need)}; got {list(gains.columns)}.")
    rows = []
    for (method, condition), g in gains.groupby(["method", "condition"], sort=False):
        params = dict(g["params"].iloc[0])
        vals = g["gain"].to_numpy(dtype=np.float64)
        rows.append({"method": method, "condition": condition, "params": params,
                     "mean_gain": float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan,
                     "n_langs": int(np.isfinite(vals).sum()), "strength": setting_strength(params),
                     "n_layers": _n_layers(params, n_layers), "order": len(rows)})
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        best = max((r["mean_gain"] for r in mine if np.isfinite(r["mean_gain"])), default=np.nan)

        def key(r: dict) -> tuple:
            tied = np.isfinite(r["mean_gain"]) and r["mean_gain"] >= best - TIE_TOLERANCE
            gain = best if tied else (r["mean_gain"] if np.isfinite(r["mean_gain"]) else -np.inf)
            return (-gain, r["strength"], r["n_layers"], r["order"])

        for rank, r in enumerate(sorted(mine, key=key), start=1):
            out.append({**r, "rank": rank, "chosen": rank == 1 and np.isfinite(r["mean_gain"])})
    table = pd.DataFrame(out, columns=SELECTION_COLUMNS + ["order"]).drop(columns="order")
    table["params"] = [json.dumps(p, sort_keys=True) for p in table["params"]]
    return table


def chosen_params(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{method: params}`` of the chosen settings of a :func:`select_settings` table."""
    chosen = table[table["chosen"].astype(bool)]
    return {str(r.method): json.loads(r.params) if isinstance(r.params, str) else dict(r.params)
            for r in chosen.itertuples(index=False)}
