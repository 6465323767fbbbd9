"""clas_lens.clusters: known answers against sklearn / scipy / plain HF hooks, calibration of the
permutation test, invariances of the residual representations."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clas_lens.clusters import (
    Reps,
    _stratified_subsample,
    calinski_harabasz,
    cluster_metrics,
    compare_reps,
    correlation_test,
    davies_bouldin,
    divergence_test,
    project,
    residual_reps,
    silhouette_samples,
)
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.testing import hf_reference
from _steering_toys import DuckCorpus

TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps in the garden today.", "Hello"],
    "de": ["Der Hund schläft im Garten.", "Die Katze", "Eins zwei drei vier fünf", "Hallo", "Montag ist heute"],
    "ru": ["Привет, как дела?", "Мир", "Кошка сидит на коврике.", "Один два три", "Понедельник"],
}




CORPUS = DuckCorpus(TEXTS)


def make_reps(X_by_lang: dict[str, np.ndarray], layer: int = 0, condition: str = "base", ids=None) -> Reps:
    """Reps of one layer from {lang: [n, d]} arrays (ids 0..n-1 unless given)."""
    langs, rows, id_list = [], [], []
    for lang, X in X_by_lang.items():
        n = len(X)
        langs += [lang] * n
        id_list += list(ids) if ids is not None else [str(i) for i in range(n)]
        rows.append(np.asarray(X, dtype=np.float32))
    vec = torch.tensor(np.concatenate(rows))[None]
    return Reps(vectors=vec, langs=langs, ids=id_list, layers=[layer], pooling="mean", condition=condition)


def blobs(k=4, n=30, d=16, spread=1.0, sep=4.0, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, sep, (k, d))
    return {f"l{c}": centers[c] + rng.normal(0, spread, (n, d)) for c in range(k)}


def _value(df, metric, lang="all", layer=None):
    sel = (df.metric == metric) & (df.lang == lang)
    if layer is not None:
        sel &= df.layer == layer
    vals = df[sel].value.to_numpy()
    assert len(vals) == 1, (metric, lang, layer, len(vals))
    return float(vals[0])


# ---------------------------------------------------------------------------------------------
# cluster metrics == sklearn
# ---------------------------------------------------------------------------------------------
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


def test_cluster_metrics_equal_sklearn():
    from sklearn.metrics import (
        calinski_harabasz_score,
        davies_bouldin_score,
        silhouette_samples as sk_samples,
        silhouette_score,
    )

    data = blobs(k=4, n=30, d=16, spread=3.0, sep=2.0, seed=1)
    reps = make_reps(data, layer=7)
    df = cluster_metrics(reps, metrics=("silhouette_cosine", "silhouette_euclidean", "davies_bouldin", "calinski_harabasz"))
    X = reps.vectors[0].double().numpy()
    labels = np.asarray(reps.langs)
    assert set(df.columns) == {"condition", "layer", "lang", "metric", "value"}
    assert set(df.layer) == {7} and set(df.condition) == {"base"}
    for metric in ("cosine", "euclidean"):
        m = f"silhouette_{metric}"
        assert _value(df, m) == pytest.approx(silhouette_score(X, labels, metric=metric), abs=1e-9)
        samples = sk_samples(X, labels, metric=metric)
        for lang in data:
            assert _value(df, m, lang) == pytest.approx(samples[labels == lang].mean(), abs=1e-9)
    assert _value(df, "davies_bouldin") == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert _value(df, "calinski_harabasz") == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)
    assert davies_bouldin(X, labels) == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)
    assert calinski_harabasz(X, labels) == pytest.approx(calinski_harabasz_score(X, labels), rel=1e-9)


def test_subsample_is_stratified_seeded_and_equals_sklearn_on_it():
    from sklearn.metrics import silhouette_score

    data = {"a": np.random.default_rng(0).normal(size=(60, 6)), "b": np.random.default_rng(1).normal(1, 1, (30, 6)),
            "c": np.random.default_rng(2).normal(-1, 1, (10, 6))}
    reps = make_reps(data)
    codes = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = _stratified_subsample(codes, 3, 50, seed=3)
    assert len(idx) == 50 and np.bincount(codes[idx]).tolist() == [30, 15, 5]
    assert np.array_equal(idx, _stratified_subsample(codes, 3, 50, seed=3))
    assert not np.array_equal(idx, _stratified_subsample(codes, 3, 50, seed=4))
    df = cluster_metrics(reps, metrics=("silhouette_euclidean",), max_samples=50, seed=3)
    X = reps.vectors[0].double().numpy()
    expected = silhouette_score(X[idx], np.asarray(reps.langs)[idx], metric="euclidean")
    assert _value(df, "silhouette_euclidean") == pytest.approx(expected, abs=1e-9)
    assert df.attrs["n_silhouette_points"] == 50
    full = cluster_metrics(reps, metrics=("silhouette_euclidean",), max_samples=None)
    assert full.attrs["n_silhouette_points"] == 100


def test_separated_clusters_score_better_than_overlapping():
    well = make_reps(blobs(spread=0.5, sep=5.0, seed=0))
    mixed = make_reps(blobs(spread=5.0, sep=0.5, seed=0))
    m = ("silhouette_cosine", "silhouette_euclidean", "davies_bouldin", "calinski_harabasz")
    a, b = cluster_metrics(well, metrics=m), cluster_metrics(mixed, metrics=m)
    for s in ("silhouette_cosine", "silhouette_euclidean", "calinski_harabasz"):
        assert _value(a, s) > _value(b, s), s
    assert _value(a, "davies_bouldin") < _value(b, "davies_bouldin")
    assert _value(a, "silhouette_euclidean") > 0.8 and abs(_value(b, "silhouette_euclidean")) < 0.1
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
    plain = cluster_metrics(moved).set_index(["lang", "metric"]).value
    assert plain["de", "parallel_cosine"] > 0.99 > b["de", "parallel_cosine"]  # offset saturates cosine
    for m in ("silhouette_euclidean", "davies_bouldin", "calinski_harabasz"):
        assert plain["all", m] == pytest.approx(b["all", m], rel=1e-4)


# ---------------------------------------------------------------------------------------------
# alignment: parallel cosine and retrieval
# ---------------------------------------------------------------------------------------------
def test_retrieval_on_identical_vectors_is_perfect():
    X = np.random.default_rng(0).normal(size=(25, 12))
    reps = make_reps({"en": X, "de": X.copy(), "ru": X * 3.0})
    df = cluster_metrics(reps, metrics=("parallel_cosine", "retrieval"))
    for lang in ("de", "ru"):
        assert _value(df, "parallel_cosine", lang) == pytest.approx(1.0, abs=1e-6)
        for m in ("acc", "mrr"):
            for suffix in ("_a2l", "_l2a", ""):
                assert _value(df, f"retrieval_{m}{suffix}", lang) == 1.0
    assert not (df.lang == "en").any()  # the anchor is not compared with itself


def test_retrieval_known_answer_and_ties_count_against():
    en = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    # de sentence 0 is closest to en 1 and vice versa; sentence 2 is exact.
    de = np.array([[0.1, 1.0, 0], [1.0, 0.1, 0], [0, 0, 1.0]])
    df = cluster_metrics(make_reps({"en": en, "de": de}), metrics=("retrieval",))
    assert _value(df, "retrieval_acc_a2l", "de") == pytest.approx(1 / 3)
    assert _value(df, "retrieval_mrr_a2l", "de") == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert _value(df, "retrieval_acc_l2a", "de") == pytest.approx(1 / 3)
    # all-equal vectors are not "perfectly retrieved": every candidate ties
    same = np.ones((4, 3))
    df2 = cluster_metrics(make_reps({"en": same, "de": same}), metrics=("retrieval",))
    assert _value(df2, "retrieval_acc", "de") == 0.0
    assert _value(df2, "retrieval_mrr", "de") == pytest.approx(0.25)


def test_parallel_pairs_matched_by_id_not_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5))
    ids = ["a", "b", "c", "d", "e", "f"]
    order = [3, 0, 5, 1, 4, 2]
    vec = torch.tensor(np.concatenate([X, X[order]]), dtype=torch.float32)[None]
    reps = Reps(vectors=vec, langs=["en"] * 6 + ["de"] * 6, ids=ids + [ids[i] for i in order], layers=[0], pooling="mean")
    df = cluster_metrics(reps, metrics=("parallel_cosine", "retrieval"))
    assert _value(df, "parallel_cosine", "de") == pytest.approx(1.0, abs=1e-6)
    assert _value(df, "retrieval_acc", "de") == 1.0


def test_clear_errors():
    reps = make_reps(blobs(k=2, n=5, d=3))
    with pytest.raises(DataValidationError, match="anchor"):
        cluster_metrics(reps, anchor="en")
    with pytest.raises(DataValidationError, match="Layer 3"):
        reps.layer(3)
    with pytest.raises(ValueError, match="Unknown cluster metric"):
        cluster_metrics(reps, metrics=("silhouette",))
    with pytest.raises(DataValidationError, match="at least 2 languages"):
        cluster_metrics(make_reps({"en": np.ones((4, 3))}), metrics=("silhouette_cosine",))
    with pytest.raises(DataValidationError, match="twice"):
        Reps(vectors=torch.zeros(1, 2, 3), langs=["en", "en"], ids=["a", "a"], layers=[0], pooling="mean")
    with pytest.raises(DataValidationError, match="rows"):
        Reps(vectors=torch.zeros(1, 3, 3), langs=["en", "en"], ids=["a", "b"], layers=[0], pooling="mean")
    # silhouette-only metrics do not need the anchor
    assert len(cluster_metrics(reps, anchor="xx", metrics=("silhouette_cosine",))) == 3


# ---------------------------------------------------------------------------------------------
# compare_reps
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# correlation_test / divergence_test
# ---------------------------------------------------------------------------------------------
def test_correlation_equals_scipy_and_exact_permutation():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    s = correlation_test(x, y, "spearman", n_boot=500, n_perm=500, seed=1)
    p = correlation_test(x, y, "pearson", n_boot=500, n_perm=500, seed=1)
    assert s["r"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert p["r"] == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)
    for res in (s, p):
        assert res["ci_low"] <= res["r"] <= res["ci_high"] and res["n"] == 12
        assert 0 < res["p_value"] <= 1
    assert correlation_test(x, y, "pearson", n_boot=100, n_perm=100, seed=1) == correlation_test(
        x, y, "pearson", n_boot=100, n_perm=100, seed=1
    )
    # n = 5: 120 permutations <= n_perm, so the p-value is exact (brute force)
    import itertools

    xs, ys = np.array([0.1, 0.5, 0.2, 0.9, 0.4]), np.array([1.0, 2.5, 0.5, 3.0, 2.0])
    r = pearsonr(xs, ys).statistic
    perm_r = [pearsonr(xs, ys[list(q)]).statistic for q in itertools.permutations(range(5))]
    exact = np.mean(np.abs(perm_r) >= abs(r) - 1e-12)
    assert correlation_test(xs, ys, "pearson", n_perm=200)["p_value"] == pytest.approx(exact)
    # degenerate inputs give NaN, not an exception
    assert math.isnan(correlation_test([1, 2], [3, 4])["r"])
    assert math.isnan(correlation_test([1, 1, 1, 1], [1, 2, 3, 4])["p_value"])
    nan_dropped = correlation_test([1, 2, 3, np.nan, 5], [2, 1, 4, 3, 6], "pearson", n_boot=50, n_perm=50)
    assert nan_dropped["n"] == 4


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_permutation_test_is_calibrated_on_null_data(method):
    t0 = time.perf_counter()
    rng = np.random.default_rng(12345)
    ps = []
    for sim in range(200):
        x, y = rng.normal(size=15), rng.normal(size=15)
        ps.append(correlation_test(x, y, method, n_boot=1, n_perm=200, seed=sim)["p_value"])
    frac = float(np.mean(np.asarray(ps) < 0.05))
    assert 0.02 <= frac <= 0.08, frac
    # and it has power against a real association
    x = rng.normal(size=15)
    assert correlation_test(x, x + 0.3 * rng.normal(size=15), method, n_boot=1, n_perm=200)["p_value"] < 0.01
    assert time.perf_counter() - t0 < 20


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


# ---------------------------------------------------------------------------------------------
# residual_reps on tiny models == pooled HF decoder-layer outputs
# ---------------------------------------------------------------------------------------------
def _hf_layer_outputs(ref, input_ids):
    """{layer: [pos, d_model]}: the output of every decoder block of the plain HF model for ONE
    unpadded sentence (before any final norm), by forward hooks on the blocks themselves."""
    blocks = ref.transformer.h if hasattr(ref, "transformer") else ref.model.layers
    got = {}
    handles = [
        blk.register_forward_hook(lambda m, a, o, l=l: got.__setitem__(l, (o[0] if isinstance(o, tuple) else o).detach()))
        for l, blk in enumerate(blocks)
    ]
    with torch.no_grad():
        ref(input_ids=torch.tensor([input_ids]))
    for h in handles:
        h.remove()
    return {l: v[0] for l, v in got.items()}


def test_residual_reps_equal_hf_reference(tiny):
    """Independent reference: HF tokenizer and model, one sentence at a time, no padding;
    mean over every token but the leading BOS, or the last token."""
    ref = hf_reference(tiny)
    tok = tiny.tokenizer
    n_layers = tiny.cfg.n_layers
    expected = {"mean": {}, "last": {}}
    for lang, texts in TEXTS.items():
        for i, text in enumerate(texts):
            ids = tok(text)["input_ids"]
            assert ids[0] == tok.bos_token_id and len(ids) > 1
            outs = _hf_layer_outputs(ref, ids)
            for layer in range(n_layers):
                h = outs[layer].double()
                expected["mean"][lang, i, layer] = h[1:].mean(0)
                expected["last"][lang, i, layer] = h[-1]
    for pooling in ("mean", "last"):
        reps = residual_reps(tiny, CORPUS, pooling=pooling, batch_size=4)
        assert reps.vectors.dtype == torch.float32 and reps.layers == list(range(n_layers))
        assert reps.langs == [l for l in TEXTS for _ in range(5)] and reps.ids == CORPUS.ids * 3
        for row, (lang, id_) in enumerate(zip(reps.langs, reps.ids)):
            i = CORPUS.ids.index(id_)
            for layer in range(n_layers):
                torch.testing.assert_close(
                    reps.vectors[layer, row].double(), expected[pooling][lang, i, layer], atol=2e-5, rtol=1e-4,
                    msg=lambda m: f"{pooling} {lang} {id_} layer {layer}: {m}",
                )
    # HF's hidden_states agree where no final norm is applied (all but the last one)
    from clas_lens.batching import encode

    enc = encode(tiny, TEXTS["de"])
    with torch.no_grad():
        hs = ref(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True).hidden_states
    first = residual_reps(tiny, CORPUS, layers=[0], langs=["de"], pooling="last")
    torch.testing.assert_close(first.vectors[0].double(), hs[1][torch.arange(5), enc.last_index].double(), atol=2e-5, rtol=1e-4)


def test_residual_reps_padding_and_batching_invariance(tiny_llama):
    for pooling in ("mean", "last"):
        right = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=3, padding_side="right")
        left = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=3, padding_side="left")
        single = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=1)
        torch.testing.assert_close(left.vectors, right.vectors, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(single.vectors, right.vectors, atol=1e-5, rtol=1e-5)
    with_bos = residual_reps(tiny_llama, CORPUS, keep_bos=True, layers=[0])
    assert not torch.allclose(with_bos.vectors, right.vectors[:1])


def test_model_is_left_clean_after_early_stops(tiny_llama):
    """The forward is cut short (stop_at_layer / the last block's hook): afterwards the model
    runs as before, with no hook left behind, with and without steering."""
    from clas_lens.batching import encode

    enc = encode(tiny_llama, TEXTS["ru"])
    with torch.no_grad():
        before = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
    residual_reps(tiny_llama, CORPUS, layers=[0])
    residual_reps(tiny_llama, CORPUS, layers=[1])
    steering = pytest.importorskip("clas_lens.steering")
    mask = torch.ones(2, 64, dtype=torch.bool)
    residual_reps(tiny_llama, CORPUS, intervention=steering.Deactivate(mask))
    with torch.no_grad():
        after = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
    assert torch.equal(before, after)


def test_residual_reps_options_and_errors(tiny_llama):
    r = residual_reps(tiny_llama, CORPUS, layers="last:1", langs=["ru", "en"], pooling="last")
    assert r.layers == [1] and r.lang_set == ["ru", "en"] and r.pooling == "last"
    assert r.meta["corpus_hash"] == CORPUS.hash() and r.model_info["weights_sha256"]
    assert r.condition == "base" and r.meta["interventions"] == []
    # a stop before the last block gives the same early layers as a full forward
    full = residual_reps(tiny_llama, CORPUS)
    early = residual_reps(tiny_llama, CORPUS, layers=[0])
    torch.testing.assert_close(early.vectors[0], full.vectors[0], atol=1e-6, rtol=1e-6)
    X, langs, ids = full.layer(1)
    assert X.shape == (15, tiny_llama.cfg.d_model) and list(langs[:5]) == ["en"] * 5 and ids[5] == "x0"
    assert np.array_equal(full.layer(-1)[0], X)
    with pytest.raises(DataValidationError, match="not in the corpus"):
        residual_reps(tiny_llama, CORPUS, langs=["fr"])
    with pytest.raises(ValueError, match="out of range"):
        residual_reps(tiny_llama, CORPUS, layers=[5])
    with pytest.raises(DataValidationError, match="no token besides BOS"):
        residual_reps(tiny_llama, {"en": ["a", ""], "de": ["b", "c"]})
    with pytest.raises(DataValidationError, match="same number"):
        residual_reps(tiny_llama, {"en": ["a", "b"], "de": ["b"]})
    d = residual_reps(tiny_llama, {"en": TEXTS["en"], "de": TEXTS["de"]}, layers=[0])
    torch.testing.assert_close(d.vectors[0], full.vectors[0, :10], atol=1e-6, rtol=1e-6)


def test_residual_reps_with_parallel_corpus(tiny_llama):
    corpus_mod = pytest.importorskip("clas_lens.data.corpus")
    corpus = corpus_mod.ParallelCorpus.from_dict({"en": TEXTS["en"], "de": TEXTS["de"]}, check_langid=False)
    r = residual_reps(tiny_llama, corpus, layers=[0])
    assert r.ids == corpus.ids * 2 and r.meta["corpus_hash"] == corpus.hash()


def test_save_load_round_trip(tmp_path, tiny_llama):
    reps = residual_reps(tiny_llama, CORPUS, pooling="last").with_condition("clas")
    path = reps.save(tmp_path / "reps")
    back = Reps.load(path)
    assert torch.equal(back.vectors, reps.vectors)
    for f in ("langs", "ids", "layers", "pooling", "condition", "model_info", "meta"):
        assert getattr(back, f) == getattr(reps, f), f
    reps.save(tmp_path / "reps")  # replacing a saved Reps is fine
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        reps.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").exists()
    with pytest.raises(DataValidationError, match="not a saved Reps"):
        Reps.load(tmp_path / "other")
    assert not list(tmp_path.glob(".*partial*"))


# ---------------------------------------------------------------------------------------------
# under steering
# ---------------------------------------------------------------------------------------------
def test_residual_reps_under_intervention(tiny_llama):
    steering = pytest.importorskip("clas_lens.steering")
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, :32] = True
    base = residual_reps(tiny_llama, CORPUS)
    steered = residual_reps(tiny_llama, CORPUS, intervention=steering.Deactivate(mask))
    assert steered.condition == "steered" and steered.meta["interventions"][0]["type"] == "Deactivate"
    assert (steered.vectors - base.vectors).abs().amax(dim=(1, 2)).min() > 1e-4  # both layers moved
    zero = residual_reps(tiny_llama, CORPUS, intervention=[steering.Deactivate(mask, alpha=0.0)], condition="zero")
    assert torch.equal(zero.vectors, base.vectors) and zero.condition == "zero"
    # a per-language template is bound to each language: only English is edited here
    per_lang = steering.Deactivate({"en": mask, "de": torch.zeros_like(mask), "ru": torch.zeros_like(mask)})
    r = residual_reps(tiny_llama, CORPUS, intervention=per_lang)
    en = torch.tensor([l == "en" for l in r.langs])
    assert torch.equal(r.vectors[:, ~en], base.vectors[:, ~en])
    assert not torch.allclose(r.vectors[:, en], base.vectors[:, en])
    assert r.meta["per_lang_interventions"] is True
    d = compare_reps(base, steered, metrics=("silhouette_cosine", "parallel_cosine"))
    assert (d.delta.abs() > 0).any()


class AddToResidual:
    """A duck-typed residual-stream intervention (like DiffMean): add ``v`` at one layer."""

    def __init__(self, layer, v):
        self.layer, self.v = layer, v

    def hooks(self, model):
        return [(f"blocks.{self.layer}.hook_resid_post", lambda t, hook: t + self.v)]


def test_residual_edits_at_the_read_layer_are_seen(tiny_llama):
    """An intervention on hook_resid_post of layer l shows in the reps of layer l itself."""
    pytest.importorskip("clas_lens.steering")
    v = torch.linspace(-1, 1, tiny_llama.cfg.d_model)
    base = residual_reps(tiny_llama, CORPUS, layers=[0])
    for pooling in ("mean", "last"):
        b = residual_reps(tiny_llama, CORPUS, layers=[0], pooling=pooling)
        r = residual_reps(tiny_llama, CORPUS, layers=[0], pooling=pooling, intervention=AddToResidual(0, v))
        torch.testing.assert_close(r.vectors, b.vectors + v, atol=1e-5, rtol=1e-5)
    assert base.vectors.shape[1] == 15


# ---------------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------------
def test_project_pca_joint_axes_and_texts():
    data = blobs(k=3, n=10, d=6)
    before = make_reps({"en": data["l0"], "de": data["l1"], "ru": data["l2"]})
    after = before.with_condition("clas")
    p = project([before, after], method="pca", texts={"en": {"0": "zero"}})
    assert list(p.columns) == ["x", "y", "lang", "condition", "id", "text", "layer"]
    assert len(p) == 60 and set(p.condition) == {"base", "clas"}
    a, b = p[p.condition == "base"], p[p.condition == "clas"]
    np.testing.assert_allclose(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())  # same vectors, same axes
    assert p.text.iloc[0] == "zero" and p.text.isna().sum() == 58
    assert len(p.attrs["explained_variance_ratio"]) == 2
    single = project(before, method="pca")
    assert len(single) == 30 and set(single.condition) == {"base"} and set(single.layer) == {0}
    with pytest.raises(DataValidationError, match="condition"):
        project([before, before], method="pca")
    with pytest.raises(ValueError, match="method"):
        project(before, method="tsne")
    with pytest.raises(DataValidationError, match="Layer 4"):
        project(before, method="pca", layer=4)
    corpus = DuckCorpus({"en": ["a"] * 10, "de": ["b"] * 10, "ru": ["c"] * 10}, ids=[str(i) for i in range(10)])
    assert set(project(before, method="pca", texts=corpus).text) == {"a", "b", "c"}


@pytest.mark.slow
def test_project_umap_is_seeded():
    pytest.importorskip("umap")
    data = blobs(k=3, n=20, d=6, spread=0.3)
    reps = make_reps({"en": data["l0"], "de": data["l1"], "ru": data["l2"]})
    p1 = project(reps, method="umap", seed=3, n_neighbors=10)
    p2 = project(reps, method="umap", seed=3, n_neighbors=10)
    np.testing.assert_allclose(p1[["x", "y"]].to_numpy(), p2[["x", "y"]].to_numpy())
    # well separated blobs stay separated: each point's nearest neighbour has its language
    Y = p1[["x", "y"]].to_numpy()
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    assert (p1.lang.to_numpy()[D.argmin(1)] == p1.lang.to_numpy()).mean() > 0.95
