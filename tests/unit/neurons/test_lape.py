"""clas_lens.neurons.lape: hand-worked tables and agreement with the authors' reference code."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.neurons import identify_neurons

from ._neuron_toys import idx, make_stats


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
