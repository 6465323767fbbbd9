"""clas_lens.clusters.scores: silhouette, Davies-Bouldin and Calinski-Harabasz equal scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clas_lens.clusters import calinski_harabasz, davies_bouldin, silhouette_samples

from ._toys import blobs


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_silhouette_samples_equal_sklearn(metric):
    from sklearn.metrics import silhouette_samples as sk

    data = blobs(k=3, n=25, d=8, spread=2.0, sep=2.0)
    X = np.concatenate(list(data.values()))
    labels = [l for l, v in data.items() for _ in range(len(v))]
    np.testing.assert_allclose(silhouette_samples(X, labels, metric), sk(X, labels, metric=metric), atol=1e-9)
    # a singleton cluster gets 0, as in sklearn
    labels2 = labels[:-1] + ["single"]
    np.testing.assert_allclose(silhouette_samples(X, labels2, metric), sk(X, labels2, metric=metric), atol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(4, 14),
    d=st.integers(1, 4),
    k=st.integers(2, 3),
    seed=st.integers(0, 2**16),
)
def test_metrics_equal_sklearn_on_random_small_inputs(n, d, k, seed):
    """Small integer grids make ties, duplicate points and zero vectors likely."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
    from sklearn.metrics import silhouette_samples as sk

    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, d)).astype(float)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    if len(set(labels)) >= n:
        return
    for metric in ("euclidean", "cosine"):
        np.testing.assert_allclose(silhouette_samples(X, labels, metric), sk(X, labels, metric=metric), atol=1e-9)
    assert davies_bouldin(X, labels) == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9, abs=1e-12)
    assert calinski_harabasz(X, labels) == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
