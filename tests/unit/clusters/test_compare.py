"""clas_lens.clusters.compare: cluster_metrics against scikit-learn and known answers
(separation, centring, parallel cosine, retrieval), compare_reps alignment of rows and refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clas_lens.clusters import (
    Reps,
    calinski_harabasz,
    cluster_metrics,
    compare_reps,
    davies_bouldin,
    stratified_subsample,
)
from clas_lens.errors import DataValidationError, MismatchError

from ._toys import blobs, make_reps, metric_value


def test_cluster_metrics_equal_sklearn():
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_samples as sk_samples,
        silhouette_score,
    )

    data = blobs(k=4, n=30, d=16, spread=3.0, sep=2.0, seed=1)
    reps = make_reps(data, layer=7)
    df = cluster_metrics(reps, metrics=("silhouette_cosine", "silhouette_euclidean", "davies_bouldin", "calinski_harabasz"),
                         center=False)
    X = reps.vectors[0].double().numpy()
    labels = np.asarray(reps.langs)
    assert set(df.columns) == {"condition", "layer", "lang", "metric", "value"}
    assert set(df.layer) == {7} and set(df.condition) == {"base"}
    for metric in ("cosine", "euclidean"):
        m = f"silhouette_{metric}"
        assert metric_value(df, m) == pytest.approx(silhouette_score(X, labels, metric=metric), abs=1e-9)
        samples = sk_samples(X, labels, metric=metric)
        for lang in data:
            assert metric_value(df, m, lang) == pytest.approx(samples[labels == lang].mean(), abs=1e-9)
    assert metric_value(df, "davies_bouldin") == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert metric_value(df, "calinski_harabasz") == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
    # the default centres first: the same as sklearn on the mean-subtracted points
    centred = cluster_metrics(reps, metrics=("silhouette_cosine",))
    assert centred.attrs["center"] is True
    Xc = X - X.mean(0)
    assert metric_value(centred, "silhouette_cosine") == pytest.approx(silhouette_score(Xc, labels, metric="cosine"), abs=1e-9)
    assert davies_bouldin(X, labels) == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert calinski_harabasz(X, labels) == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)


def test_subsample_is_stratified_seeded_and_equals_sklearn_on_it():
    from sklearn.metrics import silhouette_score

    data = {"a": np.random.default_rng(0).normal(size=(60, 6)), "b": np.random.default_rng(1).normal(1, 1, (30, 6)),
            "c": np.random.default_rng(2).normal(-1, 1, (10, 6))}
    reps = make_reps(data)
    codes = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = stratified_subsample(codes, 3, 50, seed=3)
    assert len(idx) == 50 and np.bincount(codes[idx]).tolist() == [30, 15, 5]
    assert np.array_equal(idx, stratified_subsample(codes, 3, 50, seed=3))
    assert not np.array_equal(idx, stratified_subsample(codes, 3, 50, seed=4))
    df = cluster_metrics(reps, metrics=("silhouette_euclidean",), max_samples=50, seed=3)
    X = reps.vectors[0].double().numpy()
    expected = silhouette_score(X[idx], np.asarray(reps.langs)[idx], metric="euclidean")
    assert metric_value(df, "silhouette_euclidean") == pytest.approx(expected, abs=1e-9)
    assert df.attrs["n_silhouette_points"] == 50
    full = cluster_metrics(reps, metrics=("silhouette_euclidean",), max_samples=None)
    assert full.attrs["n_silhouette_points"] == 100


def test_separated_clusters_score_better_than_overlapping():
    well = make_reps(blobs(spread=0.5, sep=5.0, seed=0))
    mixed = make_reps(blobs(spread=5.0, sep=0.5, seed=0))
    m = ("silhouette_cosine", "silhouette_euclidean", "davies_bouldin", "calinski_harabasz")
    a, b = cluster_metrics(well, metrics=m), cluster_metrics(mixed, metrics=m)
    for s in ("silhouette_cosine", "silhouette_euclidean", "calinski_harabasz"):
        assert metric_value(a, s) > metric_value(b, s), s
    assert metric_value(a, "davies_bouldin") < metric_value(b, "davies_bouldin")
    assert metric_value(a, "silhouette_euclidean") > 0.8 and abs(metric_value(b, "silhouette_euclidean")) < 0.1
    # per-language silhouette: a language moved away from the others gains the most
    data = blobs(k=3, n=30, d=8, spread=1.0, sep=1.0, seed=2)
    moved = dict(data, l0=data["l0"] + 6.0)
    d = compare_reps(make_reps(data), make_reps(moved, condition="moved"), metrics=("silhouette_euclidean",))
    per = d[d.lang != "all"].set_index("lang").delta
    assert per.idxmax() == "l0" and per["l0"] > 0


def test_center_removes_a_common_offset_and_keeps_euclidean_metrics():
    data = blobs(k=3, n=20, d=8, spread=1.0, sep=2.0, seed=4)
    data = {"en": data["l0"], "de": data["l1"], "ru": data["l2"]}
    shifted = {k: v + 50.0 for k, v in data.items()}
    raw, moved = make_reps(data), make_reps(shifted)
    a = cluster_metrics(raw, center=True).set_index(["lang", "metric"]).value
    b = cluster_metrics(moved, center=True).set_index(["lang", "metric"]).value
    np.testing.assert_allclose(a.to_numpy(), b.reindex(a.index).to_numpy(), atol=1e-4)
    plain = cluster_metrics(moved, center=False).set_index(["lang", "metric"]).value
    default = cluster_metrics(moved).set_index(["lang", "metric"]).value
    np.testing.assert_allclose(default.to_numpy(), b.to_numpy())  # centring is the default
    assert plain["de", "parallel_cosine"] > 0.99 > b["de", "parallel_cosine"]  # offset saturates cosine
    for m in ("silhouette_euclidean", "davies_bouldin", "calinski_harabasz"):
        assert plain["all", m] == pytest.approx(b["all", m], rel=1e-4)


def test_centring_unsaturates_parallel_cosine_under_a_large_shared_offset():
    """A residual stream with a large offset shared by every language: raw parallel cosine is
    ~1 for a close and a loose translation alike; centred, it lies in a meaningful range and
    orders them."""
    rng = np.random.default_rng(5)
    n, d = 40, 32
    offset = np.zeros(d)
    offset[0] = 200.0
    content = rng.normal(size=(n, d))
    data = {"en": offset + content,
            "de": offset + content + 0.5 * rng.normal(size=(n, d)),  # close translation
            "ru": offset + content + 1.5 * rng.normal(size=(n, d))}  # loose translation
    reps = make_reps(data)
    raw = cluster_metrics(reps, metrics=("parallel_cosine",), center=False)
    cen = cluster_metrics(reps, metrics=("parallel_cosine",))
    r_de, r_ru = metric_value(raw, "parallel_cosine", "de"), metric_value(raw, "parallel_cosine", "ru")
    c_de, c_ru = metric_value(cen, "parallel_cosine", "de"), metric_value(cen, "parallel_cosine", "ru")
    assert min(r_de, r_ru) > 0.99 and abs(r_de - r_ru) < 0.01  # saturated: says nothing
    assert 0.8 < c_de < 0.95 and 0.3 < c_ru < 0.7  # centred: ~1/sqrt(1 + noise variance)
    assert c_de - c_ru > 0.2


# -- alignment: parallel cosine and retrieval --------------------------------------------------
def test_retrieval_on_identical_vectors_is_perfect():
    X = np.random.default_rng(0).normal(size=(25, 12))
    reps = make_reps({"en": X, "de": X.copy(), "ru": X * 3.0})
    df = cluster_metrics(reps, metrics=("parallel_cosine", "retrieval"), center=False)
    for lang in ("de", "ru"):
        assert metric_value(df, "parallel_cosine", lang) == pytest.approx(1.0, abs=1e-6)
        for m in ("acc", "mrr"):
            for suffix in ("_a2l", "_l2a", ""):
                assert metric_value(df, f"retrieval_{m}{suffix}", lang) == 1.0
    assert not (df.lang == "en").any()  # the anchor is not compared with itself


def test_retrieval_known_answer_and_ties_count_against():
    en = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    # de sentence 0 is closest to en 1 and vice versa; sentence 2 is exact.
    de = np.array([[0.1, 1.0, 0], [1.0, 0.1, 0], [0, 0, 1.0]])
    df = cluster_metrics(make_reps({"en": en, "de": de}), metrics=("retrieval",), center=False)
    assert metric_value(df, "retrieval_acc_a2l", "de") == pytest.approx(1 / 3)
    assert metric_value(df, "retrieval_mrr_a2l", "de") == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert metric_value(df, "retrieval_acc_l2a", "de") == pytest.approx(1 / 3)
    # all-equal vectors are not "perfectly retrieved": every candidate ties
    same = np.ones((4, 3))
    df2 = cluster_metrics(make_reps({"en": same, "de": same}), metrics=("retrieval",), center=False)
    assert metric_value(df2, "retrieval_acc", "de") == 0.0
    assert metric_value(df2, "retrieval_mrr", "de") == pytest.approx(0.25)


def test_parallel_pairs_matched_by_id_not_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5))
    ids = ["a", "b", "c", "d", "e", "f"]
    order = [3, 0, 5, 1, 4, 2]
    vec = torch.tensor(np.concatenate([X, X[order]]), dtype=torch.float32)[None]
    reps = Reps(vectors=vec, langs=["en"] * 6 + ["de"] * 6, ids=ids + [ids[i] for i in order], layers=[0], pooling="mean")
    df = cluster_metrics(reps, metrics=("parallel_cosine", "retrieval"))
    assert metric_value(df, "parallel_cosine", "de") == pytest.approx(1.0, abs=1e-6)
    assert metric_value(df, "retrieval_acc", "de") == 1.0


def test_clear_errors():
    # (the errors of the Reps container itself: tests/unit/clusters/test_reps.py)
    reps = make_reps(blobs(k=2, n=5, d=3))
    with pytest.raises(DataValidationError, match="anchor"):
        cluster_metrics(reps, anchor="en")
    with pytest.raises(ValueError, match="Unknown cluster metric"):
        cluster_metrics(reps, metrics=("silhouette",))
    with pytest.raises(DataValidationError, match="at least 2 languages"):
        cluster_metrics(make_reps({"en": np.ones((4, 3))}), metrics=("silhouette_cosine",))
    # silhouette-only metrics do not need the anchor
    assert len(cluster_metrics(reps, anchor="xx", metrics=("silhouette_cosine",))) == 3


# -- compare_reps ------------------------------------------------------------------------------
def test_compare_reps_aligns_rows_and_refuses_mismatches():
    data = blobs(k=3, n=8, d=5)
    before = make_reps({"en": data["l0"], "de": data["l1"], "ru": data["l2"]})
    # the same vectors in another row order: every delta is zero
    perm = list(range(len(before)))[::-1]
    shuffled = Reps(vectors=before.vectors[:, perm], langs=[before.langs[i] for i in perm],
                    ids=[before.ids[i] for i in perm], layers=[0], pooling="mean", condition="after")
    d = compare_reps(before, shuffled)
    assert list(d.columns) == ["layer", "lang", "metric", "before", "after", "delta"]
    assert d.delta.abs().max() < 1e-6
    assert d.attrs["before"] == "base" and d.attrs["after"] == "after"
    assert {"silhouette_cosine", "parallel_cosine", "retrieval_acc", "davies_bouldin"} <= set(d.metric)
    fewer = before.select(langs=["en", "de"])
    with pytest.raises(MismatchError, match="different sentences"):
        compare_reps(before, fewer)
    other_ids = Reps(vectors=before.vectors, langs=before.langs, ids=[i + "x" for i in before.ids], layers=[0], pooling="mean")
    with pytest.raises(MismatchError, match="different sentences"):
        compare_reps(before, other_ids)
    with pytest.raises(MismatchError, match="layers"):
        compare_reps(before, Reps(vectors=before.vectors, langs=before.langs, ids=before.ids, layers=[1], pooling="mean"))
    with pytest.raises(MismatchError, match="pooling"):
        compare_reps(before, Reps(vectors=before.vectors, langs=before.langs, ids=before.ids, layers=[0], pooling="last"))
