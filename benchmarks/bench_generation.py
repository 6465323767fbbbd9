"""Greedy generation throughput on the embedded model, with and without the KV cache.

Prints ``name: value`` lines measured in one run (torch.set_num_threads(1)); the ratio is the
number to compare across machines.
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="default")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda, ...)")
    ap.add_argument("--dtype", default="float32", help="parameter dtype: float32, bfloat16 or float16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import clas_lens
    from clas_lens.generation import generate_tokens

    model = clas_lens.load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
    prompts = [
        "The weather today is",
        "Die Hauptstadt von Frankreich ist",
        "Hali ya hewa leo ni",
        "La capital de España es",
    ] * (args.batch // 4 + 1)
    prompts = prompts[: args.batch]
    generate_tokens(model, prompts, 2)  # warm-up
    rates = {}
    outs = {}
    for use_cache in (True, False):
        t0 = time.perf_counter()
        outs[use_cache] = generate_tokens(model, prompts, args.new_tokens, use_cache=use_cache)
        dt = time.perf_counter() - t0
        n = sum(len(o) for o in outs[use_cache])
        rates[use_cache] = n / dt
    print(f"generation_tokens_per_s_cached: {rates[True]:.1f}")
    print(f"generation_tokens_per_s_uncached: {rates[False]:.1f}")
    print(f"generation_cache_speedup: {rates[True] / rates[False]:.2f}")
    print(f"generation_cached_equals_uncached: {outs[True] == outs[False]}")


if __name__ == "__main__":
    main()
