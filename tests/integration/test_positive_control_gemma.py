"""Positive control on the embedded Gemma-3-270M: zero each language's LAPE neurons (found on 16
sentences, last 4 layers) and measure the NLL change on 16 held-out sentences per language.

Only what must hold is asserted (shape, finite values); the matrix and the diagonal-dominance
score are printed (run with ``-s`` to see them).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from clas_lens.neurons import identify_neurons
from clas_lens.positive_control import deactivation_matrix, diagonal_dominance, figure
from clas_lens.stats import collect_stats

pytestmark = pytest.mark.integration

LANGS = ["en", "ru", "zh"]


@pytest.fixture(scope="module")
def corpus():
    from clas_lens.data.corpus import load_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # language-ID notes on single items
        return load_corpus("default", langs=LANGS)


def test_lape_deactivation_matrix_on_gemma(gemma, corpus):
    stats_ids, held_out = corpus.ids[:16], corpus.ids[16:32]
    stats = collect_stats(gemma, corpus.subset(ids=stats_ids), site="act", layers="last:4", progress=False)
    ns = identify_neurons(stats, "lape")
    df = deactivation_matrix(gemma, corpus, ns, ids=held_out, batch_size=8)
    with np.printoptions(precision=3, suppress=True):
        print()
        print(df.round(4).to_string())
        print(df.pivot(index="deactivated", columns="lang", values="delta_nll").round(4))
    r = diagonal_dominance(df)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
    assert len(df) == len(df.deactivated.unique()) * len(LANGS) and set(df.lang) == set(LANGS)
    assert len(df.deactivated.unique()) >= 2
    assert np.isfinite(df[["delta_nll", "ci_low", "ci_high", "nll_unsteered", "nll_steered"]].to_numpy()).all()
    assert (df.n == 16).all() and (df.n_neurons > 0).all()
    assert np.isfinite(r["score"]) and 0 < r["p_value"] <= 1
    assert figure(df).data[0].type == "heatmap"
