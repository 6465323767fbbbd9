"""clas_lens.neurons.clas: hand-worked category tables, partition property, parameter checks."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.errors import DataValidationError
from clas_lens.neurons import identify_neurons

from ._neuron_toys import CLAS_P, N_TOK, idx, make_stats


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
