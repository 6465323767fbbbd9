"""clas_lens.plotting.checks, through every table-taking figure function: one clear error that
names the missing columns (one module covers them all, since the checks are shared)."""
from __future__ import annotations

import pandas as pd
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError
from clas_lens.plotting import checks


CASES = [
    ("neuron_categories", "counts_df", "count", {}),
    ("top_attributed_neurons", "attr_df", "score", {}),
    ("sweep_curves", "sweep_df", "ci_high", {}),
    ("sweep_curves", "sweep_df", "beta", {}),
    ("language_gains", "eval_df", "diff_ci_low", {}),
    ("cluster_by_layer", "metrics_df", "value", {}),
    ("projection_scatter", "proj_df", "text", {}),
    ("divergence_scatter", "points_df", "delta_alignment", {}),
]


@pytest.mark.parametrize("func,fixture,column,kwargs", CASES)
def test_missing_columns_are_named(request, func, fixture, column, kwargs):
    df = request.getfixturevalue(fixture).drop(columns=[column])
    with pytest.raises(DataValidationError) as err:
        getattr(plotting, func)(df, **kwargs)
    msg = str(err.value)
    assert fixture in msg and f"missing column(s) ['{column}']" in msg


def test_missing_test_columns_and_non_frames(points_df, test_df):
    with pytest.raises(DataValidationError, match=r"test_df is missing column\(s\) \['p_value'\]"):
        plotting.divergence_scatter(points_df, test_df.drop(columns="p_value"))
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
        plotting.neuron_categories([{"layer": 0}])
    with pytest.raises(DataValidationError, match="no rows"):
        plotting.projection_scatter(pd.DataFrame(columns=["x", "y", "lang", "condition", "id",
                                                          "text"]))




def test_metric_choice_errors_name_what_exists():
    df = pd.DataFrame({"task": ["qa", "qa", "nli"], "metric": ["f1", "em", "accuracy"]})
    with pytest.raises(DataValidationError, match="no rows with metric 'bleu'"):
        checks.metric_per_task(df, "bleu", "df")
    with pytest.raises(DataValidationError, match=r"no task 'xnli'; tasks: \['qa', 'nli'\]"):
        checks.metric_per_task(df, {"xnli": "accuracy"}, "df")
    with pytest.raises(DataValidationError, match=r"task 'qa' has no metric 'accuracy'"):
        checks.metric_per_task(df, {"qa": "accuracy"}, "df")
    assert checks.hashable(("a", 1)) == "a,1"
    with pytest.raises(DataValidationError, match="2-D"):
        checks.as_layer_neuron_array([1.0, 2.0], "x")
