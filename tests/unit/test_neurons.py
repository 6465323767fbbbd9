"""clas_lens.neurons: hand-worked category tables, LAPE against its reference code, AP against
sklearn, NeuronSet persistence and checks."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.neurons import NeuronSet, average_precision, identify_neurons
from clas_lens.stats import NeuronStats, _LangState, collect_stats

N_TOK = 1000


def make_stats(probs: dict, means: dict | None = None, layers=None, shape=None, sentences=None, site="act"):
    """Synthetic NeuronStats whose active_prob(lang) equals ``probs[lang]`` ([mlayer, neuron])."""
    state = {}
    for lang, p in probs.items():
        p = torch.as_tensor(p, dtype=torch.float64)
        mu = torch.as_tensor(means[lang], dtype=torch.float64) if means else torch.zeros_like(p)
        state[lang] = _LangState(
            torch.tensor(N_TOK), (p * N_TOK).round().to(torch.int64), mu * N_TOK, (mu * mu + 1) * N_TOK
        )
    p0 = torch.as_tensor(next(iter(probs.values())))
    layers = layers if layers is not None else list(range(p0.shape[0]))
    shape = shape or (len(layers), p0.shape[1])
    sids = {l: [f"{l}{i}" for i in range(len(t))] for l, t in sentences.items()} if sentences else None
    return NeuronStats(site=site, threshold=0.0, layers=layers, shape=shape,
                       model_info={"model_id": "synthetic", "weights_sha256": "f" * 64}, state=state,
                       corpus_hashes=["c0"], sentences=sentences, sentence_ids=sids)


def idx(mask):
    return mask.nonzero().tolist()


# ---------------------------------------------------------------------------------------------
# CLAS categories
# ---------------------------------------------------------------------------------------------

CLAS_P = {
    "en": [[0.9, 0.9, 0.9, 0.1, 0.0, 0.6]],
    "de": [[0.8, 0.7, 0.2, 0.1, 0.0, 0.4]],
    "tr": [[0.6, 0.2, 0.1, 0.7, 0.0, 0.5]],  # 0.5 does not pass "> 0.5"
}


def test_clas_prob_categories_hand_worked():
    ns = identify_neurons(make_stats(CLAS_P), "clas")
    assert ns.params == {"criterion": "prob", "langs": ["en", "de", "tr"], "prob_threshold": 0.5}
    assert idx(ns.mask("all_shared")) == [[0, 0]]
    assert idx(ns.mask("partial_shared")) == [[0, 1]]
    assert idx(ns.mask("specific", "en")) == [[0, 2], [0, 5]]
    assert idx(ns.mask("specific", "de")) == []
    assert idx(ns.mask("specific", "tr")) == [[0, 3]]
    assert idx(ns.mask("specific")) == [[0, 2], [0, 3], [0, 5]]
    assert idx(ns.mask("non_activated")) == [[0, 4]]
    # partial-shared neurons restricted to a language: those active in it
    assert idx(ns.mask("partial_shared", "de")) == [[0, 1]]
    assert idx(ns.mask("partial_shared", "tr")) == []
    assert idx(ns.mask("all_shared", "tr")) == [[0, 0]]
    assert idx(ns.mask("active", "tr")) == [[0, 0], [0, 3]]


def test_clas_quantile_categories_hand_worked():
    # top third per language (2 of 6; ties at the cut are all kept):
    # en cut 0.9 -> n0,n1,n2; de cut 0.7 -> n0,n1; tr cut 0.6 -> n0,n3
    ns = identify_neurons(make_stats(CLAS_P), "clas", criterion="quantile", top_quantile=1 / 3)
    assert idx(ns.mask("all_shared")) == [[0, 0]]
    assert idx(ns.mask("partial_shared")) == [[0, 1]]
    assert idx(ns.mask("specific", "en")) == [[0, 2]]
    assert idx(ns.mask("specific", "tr")) == [[0, 3]]
    assert idx(ns.mask("non_activated")) == [[0, 4], [0, 5]]


def test_clas_lower_threshold_moves_neurons_to_shared():
    ns = identify_neurons(make_stats(CLAS_P), "clas", prob_threshold=0.15)
    # n1 (0.9, 0.7, 0.2) and n5 (0.6, 0.4, 0.5) become all-shared; n2 (tr 0.1) stays partial
    assert idx(ns.mask("all_shared")) == [[0, 0], [0, 1], [0, 5]]
    assert idx(ns.mask("partial_shared")) == [[0, 2]]
    assert idx(ns.mask("specific")) == [[0, 3]]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_lang=st.integers(2, 5), thr=st.floats(0.05, 0.95))
def test_clas_categories_partition_the_neurons(seed, n_lang, thr):
    g = torch.Generator().manual_seed(seed)
    probs = {f"l{i}": torch.randint(0, N_TOK + 1, (3, 7), generator=g).double() / N_TOK for i in range(n_lang)}
    ns = identify_neurons(make_stats(probs), "clas", prob_threshold=thr)
    cats = [ns.mask("all_shared"), ns.mask("partial_shared"), ns.mask("specific"), ns.mask("non_activated")]
    assert torch.equal(sum(c.int() for c in cats), torch.ones(3, 7, dtype=torch.int32))
    per_lang = sum(ns.mask("specific", l).int() for l in probs)
    assert per_lang.max() <= 1  # specific neurons belong to exactly one language
    for l in probs:
        active = make_stats(probs).active_prob(l) > thr
        assert torch.equal(ns.mask("active", l), active)
        assert not (ns.mask("specific", l) & ~active).any()
    counts = ns.counts()
    tot = counts[counts.category.isin(["all_shared", "partial_shared", "specific", "non_activated"])]["count"].sum()
    assert tot == 21


def test_clas_needs_two_languages_and_valid_params():
    with pytest.raises(DataValidationError, match="at least 2 languages"):
        identify_neurons(make_stats({"en": CLAS_P["en"]}), "clas")
    with pytest.raises(ValueError, match="criterion"):
        identify_neurons(make_stats(CLAS_P), "clas", criterion="median")
    with pytest.raises(ValueError, match="prob_threshold"):
        identify_neurons(make_stats(CLAS_P), "clas", prob_threshold=1.5)
    with pytest.raises(TypeError, match="unknown parameter.*top_rate"):
        identify_neurons(make_stats(CLAS_P), "clas", top_rate=0.1)
    with pytest.raises(ValueError, match="Unknown method"):
        identify_neurons(make_stats(CLAS_P), "magic")
    with pytest.raises(DataValidationError, match="no statistics"):
        identify_neurons(make_stats(CLAS_P), "clas", langs=["en", "fr"])


def test_clas_language_subset():
    ns = identify_neurons(make_stats(CLAS_P), "clas", langs=["en", "de"])
    assert ns.langs == ["en", "de"]
    assert idx(ns.mask("all_shared")) == [[0, 0], [0, 1]]
    assert idx(ns.mask("specific", "en")) == [[0, 2], [0, 5]]


# ---------------------------------------------------------------------------------------------
# LAPE
# ---------------------------------------------------------------------------------------------


def test_lape_hand_worked_two_languages():
    probs = {
        "en": [[0.95, 0.05, 0.5, 0.9, 0.0], [0.3, 0.2, 0.97, 0.1, 0.4]],
        "de": [[0.05, 0.96, 0.5, 0.92, 0.0], [0.3, 0.2, 0.1, 0.1, 0.4]],
    }
    # filter_rate 0.8 -> bar = 16th smallest of 20 = 0.9; candidates (p > 0.9): n0, n1, n3, l1n2.
    # entropies: n0 0.199, n1 0.196, l1n2 0.311, n3 0.693; top_rate 0.2 -> 2 neurons: n1, n0.
    ns = identify_neurons(make_stats(probs), "lape", top_rate=0.2, filter_rate=0.8)
    assert ns.params["activation_bar"] == pytest.approx(0.9)
    assert idx(ns.mask("specific", "en")) == [[0, 0]]
    assert idx(ns.mask("specific", "de")) == [[0, 1]]
    ns3 = identify_neurons(make_stats(probs), "lape", top_rate=0.3, filter_rate=0.8)
    assert idx(ns3.mask("specific", "en")) == [[0, 0], [1, 2]]
    h = ns.scores["entropy"][None]
    assert h[0, 0].item() == pytest.approx(-(0.95 * math.log(0.95) + 0.05 * math.log(0.05)), rel=1e-6)
    assert ns.categories == ["specific"]


def test_lape_hand_worked_neuron_in_two_languages():
    probs = {"en": [[0.9, 0.9, 0.3, 0.0]], "de": [[0.9, 0.1, 0.3, 0.0]], "tr": [[0.0, 0.1, 0.3, 0.0]]}
    # bar = 9th of 12 = 0.3 (strictly above: n0 en/de, n1 en); both kept (top_rate 0.5 -> 2)
    ns = identify_neurons(make_stats(probs), "lape", top_rate=0.5, filter_rate=0.75)
    assert idx(ns.mask("specific", "en")) == [[0, 0], [0, 1]]
    assert idx(ns.mask("specific", "de")) == [[0, 0]]
    assert idx(ns.mask("specific", "tr")) == []
    ov = ns.overlap()
    assert ov.loc["en", "de"] == 0.5 and ov.loc["en", "tr"] == 0.0 and ov.loc["en", "en"] == 1.0
    assert math.isnan(ov.loc["tr", "tr"])


def _lape_reference(activation_probs, top_rate, filter_rate):
    """Transcription of RUCAIBox/Language-Specific-Neurons identify.py (layer x inter x lang)."""
    normed = activation_probs / activation_probs.sum(dim=-1, keepdim=True)
    normed[torch.isnan(normed)] = 0
    log_probs = torch.where(normed > 0, normed.log(), 0)
    entropy = -torch.sum(normed * log_probs, dim=-1)
    flattened_probs = activation_probs.flatten()
    top_prob_value = flattened_probs.kthvalue(round(len(flattened_probs) * filter_rate)).values.item()
    top_position = (activation_probs > top_prob_value).sum(dim=-1)
    entropy[top_position == 0] = torch.inf
    flattened_entropy = entropy.flatten()
    top_entropy_value = round(len(flattened_entropy) * top_rate)
    _, index = flattened_entropy.topk(top_entropy_value, largest=False)
    row_index = index // entropy.size(1)
    col_index = index % entropy.size(1)
    selected_probs = activation_probs[row_index, col_index].transpose(0, 1)
    lang, indice = torch.where(selected_probs > top_prob_value)
    out = {}
    for li in range(activation_probs.shape[-1]):
        sel = indice[lang == li]
        out[li] = sorted([r, c] for r, c in zip(row_index[sel].tolist(), col_index[sel].tolist()))
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_lang=st.integers(2, 6))
def test_lape_matches_reference_code(seed, n_lang):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(4, 50, n_lang, generator=g, dtype=torch.float64) ** 3  # skewed, no ties
    langs = [f"l{i}" for i in range(n_lang)]
    stats = make_stats({l: P[..., i] for i, l in enumerate(langs)})
    # make_stats rounds p to 1/N_TOK: feed the reference the same numbers
    P = torch.stack([stats.active_prob(l) for l in langs], dim=-1)
    ns = identify_neurons(stats, "lape", top_rate=0.05, filter_rate=0.9)
    ref = _lape_reference(P.clone(), 0.05, 0.9)
    for i, l in enumerate(langs):
        assert idx(ns.mask("specific", l)) == ref[i]


# ---------------------------------------------------------------------------------------------
# AP (Kojima et al.)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), levels=st.sampled_from([3, 10, 1000]))
def test_average_precision_matches_sklearn_with_ties(seed, n, levels):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    y[0] = True
    scores = rng.integers(0, levels, size=(n, 6)).astype(np.float64)  # many ties when levels=3
    got = average_precision(torch.tensor(scores), torch.tensor(y), chunk=4)
    ref = [average_precision_score(y, scores[:, j]) for j in range(6)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_ap_method_selects_top_and_bottom_by_sklearn_ap():
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(1)
    langs = ["en", "de", "tr"]
    sents = {l: torch.randn(6, 2, 5, generator=g).to(torch.float16) for l in langs}
    sents["de"][:, 1, 3] += 4  # a clear German neuron
    probs = {l: torch.full((2, 5), 0.5) for l in langs}
    stats = make_stats(probs, sentences=sents)
    ns = identify_neurons(stats, "ap", top_k=2, bottom_k=1)
    X = torch.cat([sents[l].flatten(1).double() for l in langs]).numpy()
    for i, l in enumerate(langs):
        y = np.repeat(np.arange(3), 6) == i
        ap = np.array([average_precision_score(y, X[:, j]) for j in range(10)])
        np.testing.assert_allclose(ns.scores["ap"][l].flatten().double().numpy(), ap, rtol=1e-6)
        order = np.argsort(-ap, kind="stable")
        top = sorted(order[:2].tolist())
        assert sorted(ns.mask("top", l).flatten().nonzero().squeeze(1).tolist()) == top
        assert ns.mask("bottom", l).flatten().nonzero().squeeze(1).tolist() == [int(order[-1])]
        assert torch.equal(ns.mask("specific", l), ns.mask("top", l) | ns.mask("bottom", l))
    assert ns.scores["ap"]["de"][1, 3] == 1.0 and ns.mask("top", "de")[1, 3]


def test_ap_needs_per_sentence_values():
    with pytest.raises(DataValidationError, match="per_sentence=True"):
        identify_neurons(make_stats(CLAS_P), "ap", top_k=1, bottom_k=1)
    sents = {l: torch.zeros(2, 1, 6, dtype=torch.float16) for l in CLAS_P}
    with pytest.raises(ValueError, match="exceeds"):
        identify_neurons(make_stats(CLAS_P, sentences=sents), "ap", top_k=4, bottom_k=3)


# ---------------------------------------------------------------------------------------------
# mean (Mondal et al.)
# ---------------------------------------------------------------------------------------------


def test_mean_top_fraction_hand_worked():
    probs = {"en": [[0.5] * 5, [0.5] * 5], "de": [[0.5] * 5, [0.5] * 5]}
    means = {"en": [[1.0, 5.0, 0.0, 2.0, 0.0], [0.0, 4.0, 3.0, 0.0, 0.0]],
             "de": [[1.0, 5.0, 9.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 8.0]]}
    ns = identify_neurons(make_stats(probs, means), "mean", top_fraction=0.2)  # 2 of 10
    assert idx(ns.mask("specific", "en")) == [[0, 1], [1, 1]]
    assert idx(ns.mask("specific", "de")) == [[0, 2], [1, 4]]
    con = identify_neurons(make_stats(probs, means), "mean", top_fraction=0.2, contrast=True)
    # en minus de: [0,0,-9,2,0],[0,4,3,0,-8] -> l1n1 (4), l1n2 (3)
    assert idx(con.mask("specific", "en")) == [[1, 1], [1, 2]]
    with pytest.raises(ValueError, match="no category 'all_shared'.*only picks language-specific"):
        ns.mask("all_shared")


# ---------------------------------------------------------------------------------------------
# NeuronSet: frames, persistence, model checks, real stats
# ---------------------------------------------------------------------------------------------


def test_counts_and_to_frame():
    ns = identify_neurons(make_stats(CLAS_P), "clas")
    c = ns.counts()
    assert list(c.columns) == ["layer", "category", "lang", "count"]
    got = {(r.category, None if pd.isna(r.lang) else r.lang): r.count for r in c.itertuples()}
    assert got[("all_shared", None)] == 1 and got[("specific", "en")] == 2 and got[("specific", "de")] == 0
    assert got[("non_activated", None)] == 1 and got[("active", "en")] == 4
    f = ns.to_frame()
    assert list(f.columns) == ["layer", "neuron", "category", "lang"]
    spec = f[f.category == "specific"].sort_values("neuron")
    assert spec[["neuron", "lang"]].values.tolist() == [[2, "en"], [3, "tr"], [5, "en"]]
    assert f[f.category == "all_shared"].lang.isna().all()


def test_masks_keep_model_shape_for_layer_subsets():
    p = {l: [[0.9, 0.1, 0.6]] for l in ("en", "de")}
    p["de"] = [[0.9, 0.1, 0.2]]
    ns = identify_neurons(make_stats(p, layers=[2], shape=(4, 3)), "clas")
    assert ns.mask("all_shared").shape == (4, 3)
    assert idx(ns.mask("all_shared")) == [[2, 0]] and idx(ns.mask("specific", "en")) == [[2, 2]]
    assert ns.counts().layer.unique().tolist() == [2]


@pytest.mark.parametrize("method,params", [("clas", {}), ("lape", {"top_rate": 0.3, "filter_rate": 0.5}),
                                           ("ap", {"top_k": 2, "bottom_k": 1}), ("mean", {"top_fraction": 0.5})])
def test_save_load_round_trip(tmp_path, method, params):
    sents = {l: torch.randn(3, 1, 6).to(torch.float16) for l in CLAS_P}
    ns = identify_neurons(make_stats(CLAS_P, sentences=sents), method, **params)
    path = ns.save(tmp_path / "n.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["n.safetensors"]
    back = NeuronSet.load(path)
    assert back.meta() == ns.meta()
    assert back.categories == ns.categories
    for cat in ns.categories:
        for lang in [None] + ns.langs:
            assert torch.equal(back.mask(cat, lang), ns.mask(cat, lang))
    for name, entries in ns.scores.items():
        for lang, t in entries.items():
            assert torch.equal(back.scores[name][lang], t)
    assert back.stats_ref["corpus_hash"] == "c0" and back.stats_ref["weights_sha256"] == "f" * 64
    assert back.counts().equals(ns.counts())


def test_real_stats_check_model_and_warning(tiny_llama, tiny_gpt2):
    texts = {"en": ["The cat sat.", "One two three"], "de": ["Die Katze.", "Eins zwei drei"]}
    with pytest.warns(UserWarning, match="site='act'"):
        identify_neurons(collect_stats(tiny_llama, texts), "clas")
    stats = collect_stats(tiny_llama, texts, site="act", per_sentence=True)
    ns = identify_neurons(stats, "clas")
    ns.check_model(tiny_llama, site="act")
    with pytest.raises(MismatchError, match="model"):
        ns.check_model(tiny_gpt2)
    with pytest.raises(MismatchError, match="'act'.*'post'"):
        ns.check_model(tiny_llama, site="post")
    assert ns.model_info == stats.model_info and ns.site == "act" and ns.method == "clas"
    assert ns.stats_ref["n_tokens"] == {l: stats.n_tokens(l) for l in texts}
    with pytest.raises(ValueError, match="Language 'fr'"):
        ns.mask("specific", "fr")
    ap = identify_neurons(stats, "ap", top_k=3, bottom_k=3)
    assert int(ap.mask("specific", "de").sum()) == 6
