"""clas_lens.neurons.stability (resampling, weighted stats, Jaccard tables, stability selection)
and the ``margin`` band of the CLAS criterion (clas_lens.neurons.clas), which stability studies use."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.neurons import NeuronSet, identify_neurons
from clas_lens.neurons.stability import (
    category_langs, neuron_stability, resample_weights, resampled_sets, set_jaccard, stability_selection,
    stability_table, weighted_stats,
)
from clas_lens.stats import collect_stats

from ._neuron_toys import CLAS_P, idx, make_stats

CORPUS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps.", "Red sky at night", "Hello"],
    "de": ["Die Katze sass.", "Eins zwei drei", "Montag", "Der Hund schläft.", "Roter Himmel", "Hallo"],
    "ru": ["Кошка сидит.", "Один два три", "Понедельник", "Собака спит.", "Красное небо", "Привет"],
}


def _set(cols_by_layer, lang="en", langs=("en",), cat="specific", shape=(2, 4), method="m"):
    m = torch.zeros(shape, dtype=torch.bool)
    for layer, cols in cols_by_layer.items():
        m[layer, cols] = True
    key = lang if cat == "specific" else None
    return NeuronSet(masks={cat: {key: m}}, langs=list(langs), site="act", model_info={}, method=method,
                     params={}, stats_ref=None, layers=list(range(shape[0])), shape=shape)


# -- resample_weights -----------------------------------------------------------------------------


def test_half_splits_are_disjoint_halves_and_seeded():
    w = resample_weights(7, split="half", n_boot=4, seed=3)
    assert w.shape == (9, 7) and w.dtype == torch.int64
    assert torch.equal(w[0], torch.ones(7, dtype=torch.int64))
    for r in range(4):
        a, b = w[1 + 2 * r], w[2 + 2 * r]
        assert torch.equal(a + b, torch.ones(7, dtype=torch.int64))
        assert (int(a.sum()), int(b.sum())) == (3, 4)
    assert torch.equal(w, resample_weights(7, split="half", n_boot=4, seed=3))
    assert not torch.equal(w, resample_weights(7, split="half", n_boot=4, seed=4))


def test_bootstrap_draws_n_with_replacement():
    w = resample_weights(10, split="bootstrap", n_boot=50, seed=0)
    assert w.shape == (51, 10) and (w.sum(1) == 10).all()
    assert (w[1:] == 0).any() and (w[1:] >= 2).any()  # some sentences left out, some repeated
    share_out = float((w[1:] == 0).double().mean())
    assert 0.25 < share_out < 0.5  # (1 - 1/n)^n = 0.35


def test_resample_weights_checks():
    with pytest.raises(ValueError, match="split"):
        resample_weights(5, split="thirds")
    with pytest.raises(ValueError, match="n_boot"):
        resample_weights(5, n_boot=0)
    with pytest.raises(DataValidationError, match="at least 2"):
        resample_weights(1)


# -- weighted_stats --------------------------------------------------------------------------------


def test_full_replicate_equals_collect_stats(tiny):
    W = resample_weights(6, split="half", n_boot=1)
    full = weighted_stats(tiny, CORPUS, W, site="act", batch_size=4)[0]
    ref = collect_stats(tiny, CORPUS, site="act", batch_size=4)
    for lang in CORPUS:
        assert full.n_tokens(lang) == ref.n_tokens(lang)
        assert torch.equal(full.active_prob(lang), ref.active_prob(lang))
        torch.testing.assert_close(full.mean(lang), ref.mean(lang), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(full.std(lang), ref.std(lang), rtol=1e-8, atol=1e-10)
    assert full.site == "act" and full.layers == ref.layers and full.model_info == ref.model_info


def test_weights_equal_collect_stats_on_the_drawn_multiset(tiny_llama):
    W = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 2, 0, 1, 0, 3]])
    full, drawn = weighted_stats(tiny_llama, CORPUS, W, layers="last:1", batch_size=1, per_sentence=True)
    multiset = {l: [t for t, k in zip(texts, W[1].tolist()) for _ in range(k)] for l, texts in CORPUS.items()}
    ref = collect_stats(tiny_llama, multiset, layers="last:1", batch_size=1, per_sentence=True)
    for lang in CORPUS:
        assert drawn.n_tokens(lang) == ref.n_tokens(lang)
        assert torch.equal(drawn.active_prob(lang).nan_to_num(-1), ref.active_prob(lang).nan_to_num(-1))
        torch.testing.assert_close(drawn.mean(lang), ref.mean(lang), rtol=1e-10, atol=1e-12, equal_nan=True)
        assert torch.equal(drawn.sentence_means(lang).nan_to_num(), ref.sentence_means(lang).nan_to_num())
        assert drawn.sentence_ids(lang) == ["1", "1", "3", "5", "5", "5"]
    assert drawn.corpus_hashes and drawn.corpus_hashes != full.corpus_hashes


def test_weighted_stats_checks(tiny_llama):
    with pytest.raises(DataValidationError, match="weights"):
        weighted_stats(tiny_llama, CORPUS, torch.ones(2, 5, dtype=torch.int64))
    with pytest.raises(DataValidationError, match="weights"):
        weighted_stats(tiny_llama, CORPUS, torch.ones(2, 6))  # floats
    with pytest.raises(DataValidationError, match="weights"):
        weighted_stats(tiny_llama, CORPUS, -torch.ones(1, 6, dtype=torch.int64))


# -- Jaccard tables ---------------------------------------------------------------------------------


def test_set_jaccard_hand_worked():
    a = _set({0: [0, 1, 2], 1: []})
    b = _set({0: [1, 2, 3], 1: []})
    df = set_jaccard(a, b)
    assert df[["layer", "n_a", "n_b", "n_both"]].values.tolist() == [[0, 3, 3, 2], [1, 0, 0, 0]]
    assert df.jaccard[0] == 0.5 and math.isnan(df.jaccard[1])
    assert df.category.tolist() == ["specific"] * 2 and df.lang.tolist() == ["en", "en"]


def test_language_agnostic_categories_have_no_lang():
    a = _set({0: [0]}, cat="all_shared")
    assert category_langs(a, "all_shared") == [None]
    df = set_jaccard(a, a)
    assert df.lang.isna().all() and df.jaccard.tolist()[0] == 1.0


def test_set_jaccard_refuses_other_shapes():
    with pytest.raises(DataValidationError, match="shape"):
        set_jaccard(_set({0: [0]}), _set({0: [0]}, shape=(2, 5)))


def test_stability_table_pairs():
    s = [_set({0: [0, 1]}), _set({0: [1]}), _set({0: [0, 1]}), _set({0: [2]})]
    full = _set({0: [0, 1]})
    half = stability_table(full, s, "half")
    assert half.replicate.unique().tolist() == [0, 1]
    assert half[half.layer == 0].jaccard.tolist() == [0.5, 0.0]
    boot = stability_table(full, s, "bootstrap")
    assert boot[boot.layer == 0].jaccard.tolist() == [1.0, 0.5, 1.0, 0.0]
    assert boot.method.unique().tolist() == ["m"]
    with pytest.raises(DataValidationError, match="pairs"):
        stability_table(full, s[:3], "half")


# -- end to end -------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["half", "bootstrap"])
def test_neuron_stability_columns_and_ranges(tiny_llama, split):
    df = neuron_stability(tiny_llama, CORPUS, "clas", n_boot=3, split=split, site="act", batch_size=4)
    assert list(df.columns) == ["method", "category", "lang", "layer", "jaccard", "n_a", "n_b", "n_both", "replicate"]
    assert sorted(df.replicate.unique()) == [0, 1, 2]
    assert set(df.category) == {"all_shared", "partial_shared", "specific", "non_activated", "active"}
    assert df.jaccard.dropna().between(0, 1).all()
    assert (df.n_both <= df[["n_a", "n_b"]].min(axis=1)).all()
    spec = df[df.category == "specific"]
    assert set(spec.lang) == set(CORPUS) and df[df.category == "all_shared"].lang.isna().all()
    # 3 replicates x (3 lang-free + 2 per-lang categories x 3 languages) x 2 layers
    assert len(df) == 3 * (3 + 2 * 3) * 2


def test_identical_sentences_give_perfectly_stable_sets(tiny_gpt2):
    corpus = {"en": ["the cat sat"] * 4, "de": ["die Katze sass"] * 4}
    df = neuron_stability(tiny_gpt2, corpus, "clas", n_boot=4, split="bootstrap", seed=1)
    assert set(df.jaccard.dropna()) == {1.0}


def test_resampled_sets_ap_uses_per_sentence_store(tiny_llama):
    full, sets = resampled_sets(tiny_llama, CORPUS, "ap", n_boot=2, split="bootstrap", top_k=3, bottom_k=3, site="act")
    assert len(sets) == 2 and full.method == "ap"
    assert int(full.mask("specific", "de").sum()) == 6 and all(int(s.mask("top", "ru").sum()) == 3 for s in sets)


def test_identify_kwargs_reach_the_method(tiny_llama):
    full, sets = resampled_sets(tiny_llama, CORPUS, "clas", n_boot=1, site="act", prob_threshold=0.3, margin=0.1)
    assert full.params["prob_threshold"] == 0.3 and full.params["margin"] == 0.1
    assert "uncertain" in sets[0].categories
    with pytest.raises(TypeError, match="unknown parameter"):
        resampled_sets(tiny_llama, CORPUS, "clas", n_boot=1, top_rate=0.1)


# -- stability_selection ----------------------------------------------------------------------------


def test_stability_selection_votes():
    sets = [_set({0: [0, 1], 1: [3]}), _set({0: [0]}), _set({0: [0, 2], 1: [3]}), _set({0: [0, 1]})]
    sel = stability_selection(sets, min_share=0.75)
    assert idx(sel.mask("specific", "en")) == [[0, 0]]
    assert idx(stability_selection(sets, min_share=0.5).mask("specific", "en")) == [[0, 0], [0, 1], [1, 3]]
    assert idx(stability_selection(sets, min_share=1.0).mask("specific", "en")) == [[0, 0]]
    assert sel.params["stability_selection"] == {"min_share": 0.75, "n_sets": 4}
    assert sel.method == "m" and sel.langs == ["en"]


def test_stability_selection_keeps_language_agnostic_categories(tiny_llama):
    _, sets = resampled_sets(tiny_llama, CORPUS, "clas", n_boot=2, site="act")
    sel = stability_selection(sets, min_share=1.0)
    assert sel.categories == sets[0].categories
    inter = sets[0].mask("all_shared")
    for s in sets[1:]:
        inter &= s.mask("all_shared")
    assert torch.equal(sel.mask("all_shared"), inter)
    for lang in CORPUS:
        inter = torch.stack([s.mask("specific", lang) for s in sets]).all(0)
        assert torch.equal(sel.mask("specific", lang), inter)


def test_stability_selection_checks():
    with pytest.raises(DataValidationError, match="at least one"):
        stability_selection([])
    with pytest.raises(ValueError, match="min_share"):
        stability_selection([_set({0: [0]})], min_share=0.0)
    with pytest.raises(DataValidationError, match="one method"):
        stability_selection([_set({0: [0]}), _set({0: [0]}, method="other")])


# -- the CLAS margin band ---------------------------------------------------------------------------


def _all_masks(ns):
    return {(c, l): ns.mask(c, l) for c in ns.categories for l in category_langs(ns, c)}


def test_margin_zero_is_bit_identical_on_random_probabilities():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        probs = {l: torch.rand(3, 40, generator=g).mul(1000).round().div(1000) for l in ("en", "de", "tr", "sw")}
        probs["de"][0, :10] = 0.5  # values on the threshold
        stats = make_stats(probs)
        for thr in (0.5, 0.2):
            a = identify_neurons(stats, "clas", prob_threshold=thr)
            b = identify_neurons(stats, "clas", prob_threshold=thr, margin=0)
            assert a.categories == b.categories and a.params == b.params
            ma, mb = _all_masks(a), _all_masks(b)
            assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


def test_margin_zero_is_bit_identical_on_a_model(tiny):
    stats = collect_stats(tiny, CORPUS, site="act")
    a, b = identify_neurons(stats, "clas"), identify_neurons(stats, "clas", margin=0.0)
    ma, mb = _all_masks(a), _all_masks(b)
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


def test_margin_band_hand_worked():
    # threshold 0.5, margin 0.15: active p > 0.65, inactive p <= 0.35, undecided in between
    ns = identify_neurons(make_stats(CLAS_P), "clas", margin=0.15)
    assert ns.params["margin"] == 0.15
    assert idx(ns.mask("all_shared")) == []  # n0 (0.9, 0.8, 0.6): tr undecided
    assert idx(ns.mask("partial_shared")) == [[0, 1]]
    assert idx(ns.mask("specific", "en")) == [[0, 2]]
    assert idx(ns.mask("specific", "tr")) == [[0, 3]]
    assert idx(ns.mask("non_activated")) == [[0, 4]]
    assert idx(ns.mask("uncertain", "tr")) == [[0, 0], [0, 5]]
    assert idx(ns.mask("uncertain", "en")) == [[0, 5]] and idx(ns.mask("uncertain", "de")) == [[0, 5]]
    assert idx(ns.mask("active", "tr")) == [[0, 3]]
    # the four categories and "uncertain" partition the neurons
    parts = [ns.mask(c) for c in ("all_shared", "partial_shared", "specific", "non_activated", "uncertain")]
    assert torch.equal(sum(p.int() for p in parts), torch.ones(1, 6, dtype=torch.int32))


def test_margin_shrinks_the_decided_categories_monotonically():
    g = torch.Generator().manual_seed(1)
    stats = make_stats({l: torch.rand(2, 50, generator=g) for l in ("en", "de", "tr")})
    prev = None
    for m in (0.0, 0.05, 0.1, 0.2):
        ns = identify_neurons(stats, "clas", margin=m)
        decided = ns.mask("all_shared") | ns.mask("partial_shared") | ns.mask("specific") | ns.mask("non_activated")
        if prev is not None:
            assert not (decided & ~prev).any()
        prev = decided
    assert int(prev.sum()) < 100


def test_margin_checks():
    stats = make_stats(CLAS_P)
    with pytest.raises(ValueError, match="margin"):
        identify_neurons(stats, "clas", margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        identify_neurons(stats, "clas", margin=1.0)
    with pytest.raises(ValueError, match="criterion='prob'"):
        identify_neurons(stats, "clas", criterion="quantile", margin=0.1)
    assert np.isclose(identify_neurons(stats, "clas", criterion="quantile", margin=0).params["top_quantile"], 0.1)
