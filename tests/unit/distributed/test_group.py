"""clas_lens.distributed.group: one-process fallbacks, environment checks and the round-robin deal
(the collectives themselves run in the two-process launch of the other modules' tests)."""
from __future__ import annotations

import pytest
import torch

from clas_lens.distributed import (
    DistributedError,
    backend_for,
    current_context,
    deal,
    finish_distributed,
    group_size_rank,
    init_distributed,
    is_active,
)


def test_deal_partitions():
    items = list(range(11))
    shares = [deal(items, r, 4) for r in range(4)]
    assert sorted(x for s in shares for x in s) == items and shares[0] == [0, 4, 8]
    assert deal(iter("abc"), 1, 2) == ["b"]
    with pytest.raises(ValueError, match="rank 4"):
        deal(items, 4, 4)


def test_one_process_context(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = init_distributed("cuda")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.device, ctx.initialised_here) == (1, 0, True, "cuda:0", False)
    assert not ctx.distributed and not is_active() and group_size_rank() == (1, 0)
    assert current_context("cuda:3").device == "cuda:3" and current_context(None).device == "cpu"
    finish_distributed(ctx)  # nothing to do
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="MASTER_ADDR"):
        init_distributed("cpu")
    assert backend_for("cpu") == "gloo" and backend_for(torch.device("cpu")) == "gloo"
