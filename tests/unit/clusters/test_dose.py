"""clas_lens.clusters.dose: per-language slopes of gain on cluster change across strengths
(known answers, compare_reps-shaped input with layer choice, a planted within-language
effect, the null, errors)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens.clusters import DOSE_COLUMNS, dose_response
from clas_lens.errors import DataValidationError
from clas_lens.metrics import sign_flip_test

BETAS = (0.0, 0.2, 0.5, 1.0)


def _tables(slopes, rng, noise=0.0, layers=(2,), before=None):
    """gains and compare_reps-like changes: delta grows with beta at a language's own rate,
    gain = intercept + slope * delta (+ noise)."""
    g_rows, d_rows = [], []
    for lang, slope in slopes.items():
        rate, icpt = rng.uniform(0.05, 0.3), rng.normal()
        for b in BETAS:
            delta = rate * b + 0.01 * rng.normal()
            g_rows.append((lang, b, icpt + slope * delta + noise * rng.normal()))
            for li, layer in enumerate(layers):
                bef = before[li] if before else 0.3
                d_rows.append((b, layer, lang, "silhouette_cosine", bef, delta * (li + 1)))
                d_rows.append((b, layer, lang, "parallel_cosine", 0.9, rng.normal()))
    for b in BETAS:
        for li, layer in enumerate(layers):
            d_rows.append((b, layer, "all", "silhouette_cosine", before[li] if before else 0.3, 0.0))
    gains = pd.DataFrame(g_rows, columns=["lang", "beta", "gain"])
    return gains, pd.DataFrame(d_rows, columns=["beta", "layer", "lang", "metric", "before", "delta"])


def test_known_slopes_and_summary():
    rng = np.random.default_rng(0)
    slopes = {"de": 1.0, "ru": 2.0, "zh": 3.0, "hi": 2.0}
    gains, deltas = _tables(slopes, rng)
    out = dose_response(gains, deltas)
    assert list(out.columns) == list(DOSE_COLUMNS)
    per = out[out.quantity == "slope"].set_index("lang").estimate
    np.testing.assert_allclose(per.reindex(list(slopes)).to_numpy(), list(slopes.values()), rtol=1e-9)
    summary = out[out.quantity == "mean slope"].iloc[0]
    ref = sign_flip_test(list(slopes.values()))
    assert summary.lang == "all" and summary.n == 4 and summary.estimate == pytest.approx(2.0)
    assert (summary.ci_low, summary.ci_high, summary.p_value) == pytest.approx((ref["ci_low"], ref["ci_high"], ref["p_value"]))
    assert (out[out.quantity == "slope"].n == 4).all() and set(out.metric) == {"silhouette_cosine"}
    assert set(out.layer) == {2} and out.attrs["layer_choice"] == "the only layer"


def test_planted_within_language_effect_and_null():
    rng = np.random.default_rng(1)
    langs = [f"x{i}" for i in range(11)]
    gains, deltas = _tables({l: 0.5 for l in langs}, rng, noise=0.005)
    s = dose_response(gains, deltas).set_index("quantity").loc["mean slope"]
    assert s.ci_low > 0 and s.p_value < 0.01 and s.p_value == pytest.approx(2 / 2**11)
    # gains unrelated to the change: 200 null datasets, the sign-flip test rejects 1-10 %
    p = []
    for i in range(200):
        g, d = _tables({l: 0.0 for l in langs}, np.random.default_rng(100 + i), noise=0.05)
        p.append(dose_response(g, d).set_index("quantity").loc["mean slope", "p_value"])
    assert 0.01 <= np.mean(np.array(p) <= 0.05) <= 0.10


def test_layer_choice_dicts_and_errors():
    rng = np.random.default_rng(2)
    gains, deltas = _tables({"de": 1.0, "ru": 2.0, "zh": 1.5}, rng, layers=(1, 4), before=(0.6, 0.2))
    out = dose_response(gains, deltas)  # rule: the larger unsteered separation, layer 1
    assert set(out.layer) == {1} and "layer 1" in out.attrs["layer_choice"]
    four = dose_response(gains, deltas, layer=4)
    np.testing.assert_allclose(four.estimate.to_numpy(), out.estimate.to_numpy() / 2)  # delta doubled at 4
    al = dose_response(gains, deltas, metric="parallel_cosine", layer=1)
    assert set(al.metric) == {"parallel_cosine"}
    # dict input, another strength column name
    g = {"de": {1: 0.1, 2: 0.3}, "ru": {1: 0.0, 2: 0.2}}
    d = {"de": {1: 0.1, 2: 0.2}, "ru": {1: 0.2, 2: 0.4}}
    t = dose_response(g, d, beta="setting")
    assert t.estimate.round(6).tolist() == [2.0, 1.0, 1.5] and t.layer.isna().all()
    with pytest.raises(DataValidationError, match="several rows"):
        dose_response(gains, deltas.drop(columns="metric"), layer=1)
    with pytest.raises(DataValidationError, match="Layer 9"):
        dose_response(gains, deltas, layer=9)
    with pytest.raises(DataValidationError, match="No per-language 'davies_bouldin'"):
        dose_response(gains, deltas, metric="davies_bouldin")
    with pytest.raises(DataValidationError, match="two strengths"):
        dose_response({"de": {1: 0.1}}, {"de": {1: 0.1}})
    with pytest.raises(DataValidationError, match="missing"):
        dose_response(gains.rename(columns={"beta": "b"}), deltas)
    with pytest.raises(DataValidationError, match="before"):
        dose_response(gains, deltas.drop(columns="before"))
