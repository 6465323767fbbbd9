"""clas_lens.neurons.mean: top fraction by mean activation, with and without contrast."""
from __future__ import annotations

import pytest

from clas_lens.neurons import identify_neurons

from ._neuron_toys import idx, make_stats


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
