"""clas_lens.positive_control: the deactivation matrix, its diagonal-dominance test, the heatmap."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.lm_nll import sentence_nll
from clas_lens.metrics import t_interval
from clas_lens.models import model_info
from clas_lens.neurons import NeuronSet, identify_neurons
from clas_lens.positive_control import COLUMNS, deactivation_matrix, diagonal_dominance, figure
from clas_lens.stats import collect_stats
from clas_lens.steering import Deactivate, steer

CORPUS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday morning", "The dog sleeps.", "Red sky"],
    "de": ["Die Katze sass.", "Eins zwei drei", "Montag morgen", "Der Hund schläft.", "Roter Himmel"],
    "ru": ["Кошка сидит.", "Один два три", "Утро понедельника", "Собака спит.", "Красное небо"],
}


def _neurons(model, cols: dict, shape=(2, 64)):
    masks = {}
    for lang, (layer, c) in cols.items():
        m = torch.zeros(shape, dtype=torch.bool)
        m[layer, c] = True
        masks[lang] = m
    return NeuronSet(masks={"specific": masks}, langs=list(CORPUS), site="act", model_info=model_info(model).to_dict(),
                     method="hand", params={}, stats_ref=None, layers=[0, 1], shape=shape)


def _frame(M, langs=None):
    langs = langs or [chr(ord("a") + i) for i in range(len(M))]
    return pd.DataFrame([{"deactivated": d, "lang": l, "delta_nll": float(M[i][j])}
                         for i, d in enumerate(langs) for j, l in enumerate(langs)])


def test_matrix_equals_hand_computed_paired_differences(tiny_llama):
    ns = _neurons(tiny_llama, {"en": (1, slice(0, 20)), "de": (0, slice(10, 40)), "ru": (1, slice(30, 64))})
    ids = ["1", "2", "4"]
    df = deactivation_matrix(tiny_llama, CORPUS, ns, ids=ids, batch_size=2)
    assert list(df.columns) == list(COLUMNS) and len(df) == 9
    assert df.deactivated.tolist() == ["en"] * 3 + ["de"] * 3 + ["ru"] * 3 and df.lang.tolist() == list(CORPUS) * 3
    texts = {l: [CORPUS[l][int(i)] for i in ids] for l in CORPUS}
    for d in ("de", "ru"):
        with steer(tiny_llama, Deactivate(ns, target_lang=d, site="act")):
            steered = {l: sentence_nll(tiny_llama, texts[l], batch_size=2) for l in CORPUS}
        for l in CORPUS:
            diffs = (steered[l] - sentence_nll(tiny_llama, texts[l], batch_size=2)).numpy()
            row = df[(df.deactivated == d) & (df.lang == l)].iloc[0]
            assert row.n == 3 and row.n_neurons == {"de": 30, "ru": 34}[d]
            assert abs(row.delta_nll - diffs.mean()) < 1e-9
            assert np.allclose([row.ci_low, row.ci_high], t_interval(diffs), atol=1e-9)
            assert abs(row.nll_steered - row.nll_unsteered - row.delta_nll) < 1e-9
    assert (df.delta_nll.abs() > 0).all()


def test_zero_strength_gives_zero_deltas(tiny_gpt2):
    ns = _neurons(tiny_gpt2, {l: (1, slice(0, 50)) for l in CORPUS}, shape=(2, 128))
    df = deactivation_matrix(tiny_gpt2, CORPUS, ns, strength=0.0, langs=["en", "de"])
    assert len(df) == 4 and (df.delta_nll == 0).all() and (df.ci_low == 0).all()


def test_layers_and_missing_neurons(tiny_llama):
    ns = _neurons(tiny_llama, {"en": (0, slice(0, 8)), "de": (1, slice(0, 8))})  # ru has none
    with pytest.warns(UserWarning, match=r"\['ru'\]"):
        df = deactivation_matrix(tiny_llama, CORPUS, ns, ids=["0", "1"])
    assert df.deactivated.unique().tolist() == ["en", "de"] and set(df.lang) == set(CORPUS)
    with pytest.warns(UserWarning, match=r"\['en', 'ru'\]"):
        last = deactivation_matrix(tiny_llama, CORPUS, ns, ids=["0", "1"], layers="last:1")
    assert last.deactivated.unique().tolist() == ["de"]
    pd.testing.assert_frame_equal(last.reset_index(drop=True), df[df.deactivated == "de"].reset_index(drop=True))


@pytest.mark.filterwarnings("ignore:No 'specific' neurons")  # LAPE may find none for a language
def test_lape_neurons_end_to_end(tiny):
    stats = collect_stats(tiny, CORPUS, site="act")
    ns = identify_neurons(stats, "lape", top_rate=0.1)
    df = deactivation_matrix(tiny, CORPUS, ns, ids=["0", "3"])
    assert np.isfinite(df[["delta_nll", "nll_unsteered", "nll_steered"]].to_numpy()).all()
    assert (df.n == 2).all()


def test_argument_checks(tiny_llama, tiny_gpt2):
    ns = _neurons(tiny_llama, {"en": (1, slice(0, 8))})
    with pytest.raises(DataValidationError, match="Unknown id"):
        deactivation_matrix(tiny_llama, CORPUS, ns, ids=["0", "99"])
    with pytest.raises(DataValidationError, match="not in the corpus"):
        deactivation_matrix(tiny_llama, CORPUS, ns, langs=["en", "fr"])
    with pytest.raises(MismatchError):
        deactivation_matrix(tiny_gpt2, CORPUS, ns)


# -- diagonal_dominance -----------------------------------------------------------------------------


def test_score_and_exact_p_hand_worked():
    M = [[3.0, 1.0, 1.0], [1.0, 3.0, 1.0], [1.0, 1.0, 3.0]]
    r = diagonal_dominance(_frame(M))
    assert r["score"] == pytest.approx(2.0) and r["diag_mean"] == 3.0 and r["off_mean"] == 1.0
    assert r["method"] == "exact" and r["n_perm"] == 6 and r["p_value"] == pytest.approx(1 / 6)
    assert r["share_row_max"] == 1.0 and r["n_langs"] == 3
    flat = diagonal_dominance(_frame(np.ones((3, 3))))
    assert flat["score"] == 0.0 and flat["p_value"] == 1.0


def test_exact_p_matches_brute_force():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(4, 4))
    r = diagonal_dominance(_frame(M))

    def score(perm):
        d = np.mean([M[i, perm[i]] for i in range(4)])
        off = (M.sum() - 4 * d) / 12
        return d - off

    obs = score(range(4))
    brute = np.mean([score(p) >= obs - 1e-12 for p in itertools.permutations(range(4))])
    assert r["p_value"] == pytest.approx(brute) and r["score"] == pytest.approx(obs)


def test_monte_carlo_path_is_seeded_and_never_zero():
    M = np.eye(6) * 5 + 1
    r = diagonal_dominance(_frame(M), n_perm=200, seed=3)
    assert r["method"] == "monte-carlo" and r["n_perm"] == 200
    assert r["p_value"] == pytest.approx(1 / 201)
    rng = np.random.default_rng(1)
    noisy = _frame(rng.normal(size=(6, 6)))
    assert diagonal_dominance(noisy, n_perm=300, seed=5) == diagonal_dominance(noisy, n_perm=300, seed=5)
    assert 0 < diagonal_dominance(noisy, n_perm=300, seed=5)["p_value"] <= 1


def test_only_the_square_part_counts():
    df = _frame([[2.0, 0.0], [0.0, 2.0]], ["en", "de"])
    extra = pd.DataFrame({"deactivated": ["en", "de"], "lang": ["ru", "ru"], "delta_nll": [100.0, 100.0]})
    r = diagonal_dominance(pd.concat([df, extra], ignore_index=True))
    assert r["n_langs"] == 2 and r["score"] == 2.0


def test_dominance_checks():
    with pytest.raises(DataValidationError, match="at least 2"):
        diagonal_dominance(_frame([[1.0]]))
    bad = _frame([[1.0, 2.0], [3.0, 4.0]])
    bad.loc[1, "delta_nll"] = math.nan
    with pytest.raises(DataValidationError, match="non-finite"):
        diagonal_dominance(bad)
    with pytest.raises(DataValidationError, match="column"):
        diagonal_dominance(pd.DataFrame({"a": [1]}))


# -- figure -------------------------------------------------------------------------------------------


def test_figure_is_a_centred_heatmap():
    df = _frame([[1.0, 0.5], [0.25, 2.0]], ["en", "de"])
    fig = figure(df, title="t")
    hm = fig.data[0]
    assert hm.type == "heatmap" and list(hm.x) == ["en", "de"] and list(hm.y) == ["en", "de"]
    assert np.allclose(np.asarray(hm.z), [[1.0, 0.5], [0.25, 2.0]]) and hm.zmid == 0.0
    assert hm.text[1][0] == "0.250" and fig.layout.title.text == "t"
    with pytest.raises(DataValidationError):
        figure(df, value="nope")
