"""Prefix reuse on the embedded Gemma-3-270M: a small cloze sweep (en + de; unsteered, CLAS on
the last 4 of 18 layers, Int-mu) gives the same predictions, and scores within 1e-5, with and
without replaying the first 14 blocks; the replay is actually used (every steered cell hits)."""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import clas_lens.sweep.run as run_mod
from clas_lens.io import read_jsonl
from clas_lens.neurons import identify_neurons
from clas_lens.stats import collect_stats
from clas_lens.sweep import SweepGrid, run_sweep

pytestmark = pytest.mark.integration

LANGS = ["en", "de"]


@pytest.fixture(scope="module")
def inputs(gemma):
    from clas_lens.data.corpus import load_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # language-ID notes on single items
        corpus = load_corpus("default", langs=LANGS)
    stats = collect_stats(gemma, corpus.subset(ids=corpus.ids[:8]), site="act", progress=False)
    return dict(neurons=identify_neurons(stats, "clas"), stats=stats)


def _items(run_dir):
    return {r["key"]: r["items"] for p in (Path(run_dir) / "sweep").glob("cells*.jsonl") for r in read_jsonl(p)}


def test_cloze_sweep_same_with_and_without_prefix_reuse(gemma, inputs, tmp_path, monkeypatch):
    grid = SweepGrid(langs=["de"], tasks=["cloze"], methods=["clas", "int_mu"], betas=[0.5], gammas=[0.2],
                     layers=["last:4"], n_boot=50, limit=19)  # 19 items, as many as the task had before it grew
    memos = []
    real = run_mod.reuse_prefix

    @contextlib.contextmanager
    def spy(model, start, **kw):
        with real(model, start, **kw) as memo:
            yield memo
        memos.append(memo)

    monkeypatch.setattr(run_mod, "reuse_prefix", spy)
    t0 = time.perf_counter()
    fast = run_sweep(gemma, tmp_path / "fast", grid, progress=False, **inputs)
    t1 = time.perf_counter()
    full = run_sweep(gemma, tmp_path / "full", grid, progress=False, reuse=False, **inputs)
    t2 = time.perf_counter()
    print(f"\nsweep with reuse {t1 - t0:.1f} s, without {t2 - t1:.1f} s; memos {memos}")
    assert [m.start for m in memos] == [14, 14]  # one scope per language
    assert all(m.fallbacks == 0 and m.hits == 2 * m.misses > 0 for m in memos)
    a, b = _items(tmp_path / "fast"), _items(tmp_path / "full")
    assert set(a) == set(b) and len(a) == len(grid.cells()) == 6
    for key in a:
        assert a[key]["item_id"] == b[key]["item_id"]
        assert a[key]["accuracy"] == b[key]["accuracy"], key  # the same predictions
        for m in ("margin", "gold_logprob"):
            np.testing.assert_allclose(a[key][m], b[key][m], atol=1e-5, rtol=0, err_msg=f"{key} {m}")
    fast, full = (df.sort_values(["key", "metric"]).reset_index(drop=True) for df in (fast, full))
    np.testing.assert_allclose(fast["value"], full["value"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast["diff"], full["diff"], atol=1e-5, rtol=0)


def test_qa_generation_sweep_same_with_and_without_prefix_reuse(gemma, inputs, tmp_path):
    """Greedy generation replays the prompt pass's first blocks and their KV cache (Gemma-3's
    sliding and global layers): the answers and their scores are the same."""
    grid = SweepGrid(langs=["de"], tasks=["qa"], methods=["clas"], betas=[0.5], gammas=[0.2],
                     layers=["last:4"], n_boot=50, limit=3)
    t0 = time.perf_counter()
    fast = run_sweep(gemma, tmp_path / "fast", grid, progress=False, **inputs)
    t1 = time.perf_counter()
    full = run_sweep(gemma, tmp_path / "full", grid, progress=False, reuse=False, **inputs)
    print(f"\nqa sweep with reuse {t1 - t0:.1f} s, without {time.perf_counter() - t1:.1f} s")
    a, b = _items(tmp_path / "fast"), _items(tmp_path / "full")
    assert set(a) == set(b) and len(a) == len(grid.cells())
    for key in a:
        for m in a[key]:
            if m == "item_id":
                assert a[key][m] == b[key][m]
            else:
                np.testing.assert_allclose(a[key][m], b[key][m], atol=1e-5, rtol=0, err_msg=f"{key} {m}")
