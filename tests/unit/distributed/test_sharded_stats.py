"""clas_lens.distributed.sharded_stats: two gloo processes give the one-process statistics (also
through ``clas-lens stats`` under torchrun); the plan reproduces collect_stats's batches."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from clas_lens.distributed import batch_plan, distributed_collect_stats, stats_plan
from distributed._launch import STATS_KW, TEXTS, WORLD, free_port, rel_diff


def test_stats_equal_one_process(launched):
    from clas_lens.stats import NeuronStats, collect_stats

    root, model = launched
    ref = collect_stats(model, TEXTS, **STATS_KW)
    got = NeuronStats.load(root / "stats.safetensors")
    assert got.langs == ref.langs and got.meta() == ref.meta()  # tokens, hashes, ids, versions ...
    worst = 0.0
    for lang in ref.langs:
        assert got.n_tokens(lang) == ref.n_tokens(lang)
        assert torch.equal(got.active_prob(lang), ref.active_prob(lang))
        for f in ("mean", "std"):
            worst = max(worst, rel_diff(getattr(got, f)(lang), getattr(ref, f)(lang)))
        assert torch.equal(got.sentence_means(lang).nan_to_num(), ref.sentence_means(lang).nan_to_num())
        assert got.sentence_ids(lang) == ref.sentence_ids(lang)
    print(f"distributed stats: max relative difference {worst:.2e}")
    assert worst <= 1e-9
    small = NeuronStats.load(root / "small.safetensors")
    ref_small = collect_stats(model, {"en": TEXTS["en"][:2]}, batch_size=2)
    assert small.n_tokens("en") == ref_small.n_tokens("en")
    assert rel_diff(small.mean("en"), ref_small.mean("en")) <= 1e-9


def test_errors_reach_every_rank(launched):
    import json

    root, _ = launched
    reports = [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert reports[0]["n_tokens"] == reports[1]["n_tokens"]
    for rep in reports:
        assert "Ranks disagree on the options" in rep["mismatch"]
    assert reports[1]["failure"] == "RuntimeError: boom on rank 1"
    assert reports[0]["failure"].startswith("DistributedError: collect_stats failed on rank 1 (RuntimeError: boom")


def test_cli_stats_under_torchrun(launched, tmp_path):
    from clas_lens.cli import main
    from clas_lens.data.corpus import ParallelCorpus
    from clas_lens.stats import NeuronStats

    root, _ = launched
    corpus = tmp_path / "corpus.jsonl"
    ParallelCorpus.from_dict(TEXTS, check_langid=False).to_jsonl(corpus)
    args = ["stats", "--model", str(root / "model"), "--corpus", str(corpus), "--langs", "en,ru", "--limit", "9",
            "--batch-size", "2", "--site", "post", "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "one.safetensors")]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD), "--master-addr",
           "127.0.0.1", "--master-port", str(free_port()), "-m", "clas_lens", *args, "--out", str(tmp_path / "two.safetensors")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # logs go to stderr (results-on-stdout convention); rank 0 only writes
    assert proc.stderr.count("wrote ") == 1 and "on 2 process(es)" in proc.stderr
    one, two = NeuronStats.load(tmp_path / "one.safetensors"), NeuronStats.load(tmp_path / "two.safetensors")
    assert one.langs == two.langs == ["en", "ru"] and one.meta() == two.meta()
    for lang in one.langs:
        assert rel_diff(two.mean(lang), one.mean(lang)) <= 1e-9
        assert rel_diff(two.std(lang), one.std(lang)) <= 1e-9
        assert torch.equal(two.active_prob(lang), one.active_prob(lang))


def test_plan_reproduces_collect_stats_batches(tiny_llama):
    from clas_lens.stats import sentence_batches

    texts = TEXTS["de"]
    got = [list(idx) for idx, _ in sentence_batches(tiny_llama, texts, batch_size=3, padding_side="right",
                                                    max_length=None, truncation="warn", keep_bos=False)]
    assert got == batch_plan(texts, 3)
    for world in (1, 2, 3, 5, 40):
        plan = stats_plan(TEXTS, 3, world)
        assert len(plan) == world
        for lang, t in TEXTS.items():
            assert sorted(i for p in plan for i in p.get(lang, [])) == list(range(len(t)))
            for p in plan:  # a rank's share is whole batches, in one-process order
                idx = p.get(lang, [])
                mine = [b for b in batch_plan(t, 3) if b[0] in idx]
                assert [i for b in mine for i in b] == idx
    assert stats_plan(TEXTS, 3, 2)[0]["en"][:3] == batch_plan(TEXTS["en"], 3)[0]
    with pytest.raises(ValueError, match="batch_size"):
        stats_plan(TEXTS, 0, 2)


def test_one_process_fallback(tiny_llama, monkeypatch):
    from clas_lens.stats import collect_stats

    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    a = distributed_collect_stats(tiny_llama, TEXTS, batch_size=3)
    b = collect_stats(tiny_llama, TEXTS, batch_size=3)
    assert a.meta() == b.meta() and all(torch.equal(a.mean(l), b.mean(l)) for l in TEXTS)
    with pytest.raises(TypeError, match="batchsize"):
        distributed_collect_stats(tiny_llama, TEXTS, batchsize=3)
