"""Input checks shared by the figure functions: one clear ``DataValidationError`` per problem.

Owns the checks of result tables (required columns, non-empty, unique keys), the choice of
one metric per task, and the conversion of ``[layer, neuron]`` arrays (numpy or torch).

>>> try:
...     check_frame(pd.DataFrame({"a": [1]}), ["a", "b"], "df")
... except DataValidationError as e:
...     print(e)
df is missing column(s) ['b']; it has ['a']. Required: ['a', 'b'].
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clas_lens.errors import DataValidationError

__all__ = [
    "as_layer_neuron_array",
    "check_frame",
    "check_unique",
    "hashable",
    "metric_per_task",
    "select_metric",
    "unique_in_order",
]


def check_frame(df: Any, required: Sequence[str], name: str) -> pd.DataFrame:
    """A copy of ``df`` after checking it is a non-empty DataFrame with the ``required`` columns.

    >>> check_frame(pd.DataFrame({"a": [1], "b": [2]}), ["a"], "df").shape
    (1, 2)
    """
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{name} is missing column(s) {missing}; it has {list(map(str, df.columns))}. "
            f"Required: {list(required)}."
        )
    if df.empty:
        raise DataValidationError(f"{name} has no rows: nothing to plot")
    return df.copy()


def unique_in_order(values: Iterable[Any]) -> list[Any]:
    """Unique values in order of first appearance.

    >>> unique_in_order(["zh", "de", "zh", "en"])
    ['zh', 'de', 'en']
    """
    return list(dict.fromkeys(values))


def hashable(v: Any) -> Any:
    """A list / tuple / array cell (e.g. ``layers=[1, 2]``) as a comparable string.

    >>> hashable([1, 2]), hashable(0.5)
    ('1,2', 0.5)
    """
    if isinstance(v, (list, tuple, np.ndarray)):
        return ",".join(str(x) for x in v)
    return v


def check_unique(df: pd.DataFrame, keys: Sequence[str], name: str, hint: str) -> None:
    """Raise if two rows of ``df`` share the same ``keys`` (``hint`` says what to do).

    >>> try:
    ...     check_unique(pd.DataFrame({"k": [1, 1]}), ["k"], "df", "aggregate them first")
    ... except DataValidationError as e:
    ...     print(e)
    df has 2 rows that share the same ['k'] (e.g. {'k': 1}); aggregate them first
    """
    dup = df.duplicated(list(keys), keep=False)
    if dup.any():
        example = df.loc[dup, list(keys)].iloc[0].to_dict()
        raise DataValidationError(
            f"{name} has {int(dup.sum())} rows that share the same {list(keys)} "
            f"(e.g. {example}); {hint}"
        )


def metric_per_task(df: pd.DataFrame, metric: str | Mapping[str, str] | None,
                    name: str) -> dict[Any, str]:
    """Which metric to draw for each task (None: each task's first metric in row order).

    A string selects that metric (tasks without it are left out); a dict maps task -> metric.

    >>> df = pd.DataFrame({"task": ["qa", "qa", "nli"], "metric": ["f1", "em", "accuracy"]})
    >>> metric_per_task(df, None, "df"), metric_per_task(df, "em", "df")
    ({'qa': 'f1', 'nli': 'accuracy'}, {'qa': 'em'})
    """
    available = {t: unique_in_order(g["metric"]) for t, g in df.groupby("task", sort=False)}
    if metric is None:
        return {t: ms[0] for t, ms in available.items()}
    if isinstance(metric, str):
        chosen = {t: metric for t, ms in available.items() if metric in ms}
        if not chosen:
            raise DataValidationError(
                f"{name} has no rows with metric {metric!r}; metrics per task: {available}")
        return chosen
    chosen = {}
    for t, m in metric.items():
        if t not in available:
            raise DataValidationError(f"{name} has no task {t!r}; tasks: {list(available)}")
        if m not in available[t]:
            raise DataValidationError(
                f"{name}: task {t!r} has no metric {m!r}; it has {available[t]}")
        chosen[t] = m
    return chosen


def select_metric(df: pd.DataFrame, chosen: Mapping[Any, str]) -> pd.DataFrame:
    """The rows of ``df`` whose metric is the one ``chosen`` for their task.

    >>> df = pd.DataFrame({"task": ["qa", "qa", "nli"], "metric": ["f1", "em", "accuracy"]})
    >>> select_metric(df, {"qa": "em"})["metric"].tolist()
    ['em']
    """
    keep = df["task"].map(lambda t: chosen.get(t)) == df["metric"]
    return df[keep.fillna(False).astype(bool)]


def as_layer_neuron_array(a: Any, what: str) -> np.ndarray:
    """``a`` (numpy, nested lists or a torch tensor) as a 2-D float64 ``[layer, neuron]`` array.

    >>> as_layer_neuron_array([[0.1, 0.2]], "probs['en']").shape
    (1, 2)
    """
    if hasattr(a, "detach"):  # a torch tensor, without importing torch here
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise DataValidationError(f"{what} must be a 2-D [layer, neuron] array, got shape "
                                  f"{arr.shape}")
    return arr
