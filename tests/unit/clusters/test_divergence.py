"""clas_lens.clusters.divergence: separation vs alignment on planted data, per-setting units,
clear errors. (The correlation core is tested in tests/unit/metrics/test_correlation.py.)"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens.clusters import divergence_test
from clas_lens.errors import DataValidationError


def _deltas(langs, layers, sep, align):
    rows = []
    for li, layer in enumerate(layers):
        for lang, s, a in zip(langs, sep, align):
            rows.append((layer, lang, "silhouette_cosine", s * (li + 1)))
            rows.append((layer, lang, "parallel_cosine", a))
        rows.append((layer, "all", "silhouette_cosine", 99.0))
    return pd.DataFrame(rows, columns=["layer", "lang", "metric", "delta"])


def test_divergence_test_separation_vs_alignment():
    rng = np.random.default_rng(0)
    langs = [f"x{i}" for i in range(12)]
    sep = rng.normal(size=12)
    align = rng.normal(size=12)
    gains = 2.0 * sep + 0.2 * rng.normal(size=12)
    deltas = _deltas(langs + ["en"], [2, 5], list(sep) + [0.0], list(align) + [np.nan])
    out = divergence_test(pd.DataFrame({"lang": langs, "gain": gains}), deltas, n_boot=300, n_perm=300)
    assert list(out.columns) == ["hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n"]
    assert set(out.hypothesis) == {"separation", "alignment"} and set(out.method) == {"spearman", "pearson"}
    assert set(out.layer) == {5}  # larger mean |delta| of silhouette at layer 5
    assert "max mean |delta" in out.attrs["layer_choice"]
    sep_rows, al_rows = out[out.hypothesis == "separation"], out[out.hypothesis == "alignment"]
    assert (sep_rows.r > 0.8).all() and (sep_rows.p_value < 0.01).all() and (sep_rows.ci_low > 0).all()
    assert (al_rows.p_value > 0.01).all()
    assert (out.n == 12).all()
    # the same through a Series / dict of gains, and a chosen layer
    s = pd.Series(gains, index=langs)
    out2 = divergence_test(s, deltas, layer=2, n_boot=300, n_perm=300)
    assert set(out2.layer) == {2} and out2.attrs["layer_choice"] == "given"
    np.testing.assert_allclose(out2.r.to_numpy(), out.r.to_numpy())  # rank/scale-free in layer
    assert len(divergence_test(dict(zip(langs, gains)), deltas, layer="all", n_boot=50, n_perm=50)) == 8
    # gains including the anchor: it lacks an alignment delta and drops out of BOTH tests
    g_en = pd.DataFrame({"lang": langs + ["en"], "gain": list(gains) + [0.0]})
    assert (divergence_test(g_en, deltas, n_boot=50, n_perm=50).n == 12).all()


def test_divergence_test_per_setting_and_errors():
    rng = np.random.default_rng(1)
    langs = ["de", "ru", "zh", "hi"]
    tables, gains = [], []
    for strength in (0.5, 1.0, 2.0):
        sep = rng.normal(size=4) * strength
        t = _deltas(langs, [3], sep, rng.normal(size=4))
        tables.append(t.assign(setting=strength))
        gains.append(pd.DataFrame({"setting": strength, "lang": langs, "gain": sep + 0.1 * rng.normal(size=4)}))
    deltas, gains = pd.concat(tables), pd.concat(gains)
    out = divergence_test(gains, deltas, n_boot=200, n_perm=200)
    assert (out.n == 12).all() and out.attrs["keys"] == ["setting", "lang"]
    assert out[out.hypothesis == "separation"].r.min() > 0.8
    with pytest.raises(DataValidationError, match="several"):
        divergence_test(gains[gains.setting == 1.0].drop(columns="setting"), deltas)
    with pytest.raises(DataValidationError, match="no per-language deltas"):
        divergence_test(gains, deltas, x="davies_bouldin")
    with pytest.raises(DataValidationError, match="Layer 7"):
        divergence_test(gains, deltas, layer=7)
    with pytest.raises(DataValidationError, match="lacks"):
        divergence_test(gains, deltas.drop(columns="setting"))
    one = divergence_test(gains, deltas, alignment=None, methods=("spearman",), n_boot=50, n_perm=50)
    assert list(one.hypothesis) == ["separation"]
