"""Neuron-statistics collection on the embedded model: speed and memory.

Prints ``name: value`` lines measured in one run (torch.set_num_threads(1)):

* throughput of ``collect_stats`` vs a bare full forward (logits included) and vs
  ``run_with_cache`` of every ``mlp.hook_post`` with the same statistics computed from the
  cache, on the same batches (the same length-sorted batches collect_stats uses), interleaved
  and repeated, best time kept; ratios are the numbers to compare across machines;
* peak RSS above the post-load baseline while each of the three runs (one subprocess each,
  RSS sampled every 2 ms);
* peak RSS while collecting statistics on a corpus and on one 4x larger (subprocesses):
  statistics stream, so the growth should stay under 5 %.

Memory note: transformers maps the safetensors weights into memory lazily, so a forward pass
pages in the embedding rows of the token ids it meets (file-backed RSS). Left alone, a larger
corpus "grows" RSS by touching more of Gemma's 671 MB embedding, whatever the statistics code
does. Every memory worker therefore pages in all weights before its baseline, and anonymous
memory (``RssAnon``, what the process allocates) is reported beside the total.

Usage: ``python benchmarks/bench_stats.py [--langs en,de,ru,zh] [--n-time 16] [--n-mem 50]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _corpus(langs, n):
    import warnings

    from clas_lens.data.corpus import load_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = load_corpus("default", langs=langs)
    if n > len(c):
        raise SystemExit(f"The embedded corpus has {len(c)} sentences per language; asked for {n}.")
    return c.subset(ids=c.ids[:n])


def _batches(model, corpus, batch_size):
    from clas_lens.stats import sentence_batches as stats_batches
    from clas_lens.stats import corpus_langs_texts

    langs, _, texts = corpus_langs_texts(corpus, None)
    out = []
    for lang in langs:
        for _, enc in stats_batches(model, texts[lang], batch_size=batch_size, padding_side="right",
                                    max_length=None, truncation="warn", keep_bos=False):
            out.append(enc)
    return out


def _runners(model, corpus, batches, batch_size):
    from clas_lens.sites import neuron_sites
    from clas_lens.stats import collect_stats

    sites = neuron_sites(model)

    def full():
        with torch.no_grad():
            for enc in batches:
                model(enc.input_ids, attention_mask=enc.attention_mask)

    def stats():
        collect_stats(model, corpus, batch_size=batch_size, progress=False)

    def cache():
        L, d = sites.shape
        s = torch.zeros(L, d, dtype=torch.float64)
        ss = torch.zeros_like(s)
        act = torch.zeros(L, d, dtype=torch.int64)
        with torch.no_grad():
            for enc in batches:
                _, c = model.run_with_cache(
                    enc.input_ids, attention_mask=enc.attention_mask,
                    names_filter=lambda n: n.endswith("mlp.hook_post"),
                )
                for l in range(L):
                    v = c[f"blocks.{l}.mlp.hook_post"][enc.real_mask].double()
                    s[l] += v.sum(0)
                    ss[l] += (v * v).sum(0)
                    act[l] += (v > 0).sum(0)
                del c

    return {"stats": stats, "full_forward": full, "run_with_cache": cache}


def _rss() -> dict[str, float]:
    """VmRSS and RssAnon of this process in MiB (Linux /proc; psutil RSS elsewhere)."""
    try:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    out[key] = int(val.split()[0]) / 1024
        return out
    except OSError:  # pragma: no cover - not Linux
        import psutil

        r = psutil.Process().memory_info().rss / 2**20
        return {"VmRSS": r, "RssAnon": r}


class _RssSampler:
    def __init__(self, interval=0.002):
        self.interval = interval
        self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        now = _rss()
        self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()


def worker(args) -> dict:
    torch.set_num_threads(1)
    import clas_lens

    model = clas_lens.load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
    langs = args.langs.split(",")
    if args.worker == "time":
        corpus = _corpus(langs, args.n_time)
        batches = _batches(model, corpus, args.batch_size)
        run = _runners(model, corpus, batches, args.batch_size)
        n_real = sum(int(b.real_mask.sum()) for b in batches)
        n_all = sum(int(b.attention_mask.sum()) for b in batches)
        small = _corpus(langs, 2)
        warm = _runners(model, small, _batches(model, small, args.batch_size), args.batch_size)
        for f in warm.values():
            f()
        times = {k: [] for k in run}
        for _ in range(args.repeats):
            for name, f in run.items():
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in times.items()}
        return {"best_s": best, "n_real_tokens": n_real, "n_tokens": n_all, "n_batches": len(batches),
                "n_sentences": len(corpus) * len(langs)}
    # memory workers: "mem:<runner>:<n per language>"
    _, name, n = args.worker.split(":")
    corpus = _corpus(langs, int(n))
    batches = _batches(model, corpus, args.batch_size) if name != "stats" else []
    small = _corpus(langs, 2)
    _runners(model, small, _batches(model, small, args.batch_size), args.batch_size)[name]()  # warm-up
    with torch.no_grad():  # page in every (lazily mapped) weight before the baseline
        for p in model.parameters():
            float(p.sum())
    base = _rss()
    run = _runners(model, corpus, batches, args.batch_size)[name]
    with _RssSampler() as s:
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
    lengths = [len(model.tokenizer(t)["input_ids"]) for l in langs for t in corpus.texts(l)]
    longest, n_real = max(lengths), sum(lengths) - len(lengths)  # BOS excluded
    return {"baseline_mb": base["VmRSS"], "peak_mb": s.peak["VmRSS"],
            "above_baseline_mb": s.peak["VmRSS"] - base["VmRSS"],
            "anon_peak_mb": s.peak["RssAnon"], "anon_above_baseline_mb": s.peak["RssAnon"] - base["RssAnon"],
            "seconds": dt, "n_sentences": len(corpus) * len(langs), "longest_tokens": longest,
            "real_tokens_per_s": n_real / dt}


def _spawn(args, mode) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--model", args.model, "--device", args.device,
           "--dtype", args.dtype, "--langs", args.langs,
           "--n-time", str(args.n_time), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"worker {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--langs", default="en,de,ru,zh")
    ap.add_argument("--n-time", type=int, default=16, help="sentences per language for the timing run")
    ap.add_argument("--n-mem", type=int, default=50, help="sentences per language of the 1x memory corpus")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda, ...)")
    ap.add_argument("--dtype", default="float32", help="parameter dtype: float32, bfloat16 or float16")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    t = _spawn(args, "time")
    best = t["best_s"]
    n = t["n_real_tokens"]
    print(f"stats_timing_sentences: {t['n_sentences']}")
    print(f"stats_timing_batches: {t['n_batches']}")
    print(f"stats_timing_real_tokens: {n}")
    for k in ("stats", "full_forward", "run_with_cache"):
        print(f"{k}_seconds: {best[k]:.2f}")
        print(f"{k}_real_tokens_per_s: {n / best[k]:.1f}")
    print(f"stats_speedup_vs_full_forward: {best['full_forward'] / best['stats']:.2f}")
    print(f"stats_speedup_vs_run_with_cache: {best['run_with_cache'] / best['stats']:.2f}")
    for name in ("stats", "full_forward", "run_with_cache"):
        m = _spawn(args, f"mem:{name}:{args.n_time}")
        print(f"{name}_peak_rss_above_baseline_mb: {m['above_baseline_mb']:.1f}")
        print(f"{name}_peak_anon_above_baseline_mb: {m['anon_above_baseline_mb']:.1f}")
    one = _spawn(args, f"mem:stats:{args.n_mem}")
    four = _spawn(args, f"mem:stats:{4 * args.n_mem}")
    print(f"stats_1x_sentences: {one['n_sentences']}")
    print(f"stats_4x_sentences: {four['n_sentences']}")
    print(f"stats_1x_longest_tokens: {one['longest_tokens']}")
    print(f"stats_4x_longest_tokens: {four['longest_tokens']}")
    print(f"stats_1x_peak_rss_mb: {one['peak_mb']:.1f}")
    print(f"stats_4x_peak_rss_mb: {four['peak_mb']:.1f}")
    print(f"stats_1x_peak_above_baseline_mb: {one['above_baseline_mb']:.1f}")
    print(f"stats_4x_peak_above_baseline_mb: {four['above_baseline_mb']:.1f}")
    print(f"stats_1x_peak_anon_mb: {one['anon_peak_mb']:.1f}")
    print(f"stats_4x_peak_anon_mb: {four['anon_peak_mb']:.1f}")
    print(f"stats_4x_peak_rss_growth_pct: {100 * (four['peak_mb'] - one['peak_mb']) / one['peak_mb']:.2f}")
    print(f"stats_4x_peak_anon_growth_pct: {100 * (four['anon_peak_mb'] - one['anon_peak_mb']) / one['anon_peak_mb']:.2f}")
    # separate processes: noisier than the interleaved timing above
    print(f"stats_1x_real_tokens_per_s_separate_process: {one['real_tokens_per_s']:.1f}")
    print(f"stats_4x_real_tokens_per_s_separate_process: {four['real_tokens_per_s']:.1f}")


if __name__ == "__main__":
    main()
