"""clas_lens.neurons.ap: average precision against sklearn (with ties), the AP method's selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.errors import DataValidationError
from clas_lens.neurons import average_precision, identify_neurons

from ._neuron_toys import CLAS_P, make_stats


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
