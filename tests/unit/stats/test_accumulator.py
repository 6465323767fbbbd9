"""clas_lens.stats.accumulator: folding batches, exact merge of shards, state dict round trip."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clas_lens.stats import KINDS, Accumulator


def _fold(acc: Accumulator, v: torch.Tensor, threshold: float) -> None:
    """Fold a [token, row, neuron] block into ``acc`` row by row, as collect_stats does."""
    for row in range(v.shape[1]):
        acc.add(row, v[:, row], threshold)
    acc.count_tokens(v.shape[0])


def test_add_known_answer():
    acc = Accumulator.zeros(2, 3)
    v = torch.tensor([[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], [[2.0, 1.0, -0.5], [4.0, 0.0, 1.0]]])
    _fold(acc, v, 0.0)
    assert int(acc.count) == 2
    assert acc.active.tolist() == [[2, 1, 1], [1, 1, 1]] and acc.active.dtype == torch.int64
    assert acc.sum.tolist() == [[3.0, -1.0, 0.0], [4.0, 3.0, 0.0]] and acc.sum.dtype == torch.float64
    assert acc.sumsq.tolist() == [[5.0, 5.0, 0.5], [16.0, 9.0, 2.0]]


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 20), min_size=1, max_size=5), seed=st.integers(0, 2**16),
       threshold=st.sampled_from([0.0, 0.25, -1.0]))
def test_merged_shards_equal_one_pass(sizes, seed, threshold):
    """Merging the accumulators of shards equals one accumulator over all the tokens, bit for bit
    (values are multiples of 1/8, so every float64 sum is exact whatever the order)."""
    g = torch.Generator().manual_seed(seed)
    blocks = [torch.randint(-40, 40, (n, 2, 4), generator=g).double() / 8 for n in sizes]
    one = Accumulator.zeros(2, 4)
    for b in blocks:
        _fold(one, b, threshold)
    shards = []
    for b in blocks:
        acc = Accumulator.zeros(2, 4)
        _fold(acc, b, threshold)
        shards.append(acc)
    merged = shards[0]
    for s in shards[1:]:
        merged = merged.merge(s)
    for k in KINDS:
        assert torch.equal(getattr(merged, k), getattr(one, k)), k


def test_state_dict_round_trip_and_errors():
    acc = Accumulator.zeros(1, 2)
    acc.add(0, torch.tensor([[1.5, -1.0]]))
    acc.count_tokens(1)
    state = acc.state_dict()
    assert list(state) == list(KINDS)
    back = Accumulator.zeros(3, 3)
    back.load_state_dict({k: v.clone() for k, v in state.items()})
    assert all(torch.equal(getattr(back, k), getattr(acc, k)) for k in KINDS)
    fresh = Accumulator.from_state_dict({k: v.float() for k, v in state.items()})  # cast back
    assert fresh.count.dtype == torch.int64 and fresh.sum.dtype == torch.float64
    with pytest.raises(KeyError, match="sumsq"):
        back.load_state_dict({k: state[k] for k in KINDS[:3]})
    with pytest.raises(ValueError, match="shapes"):
        acc.merge(Accumulator.zeros(2, 2))
    with pytest.raises(TypeError):
        acc.merge(state)
