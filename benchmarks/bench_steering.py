"""Cost of steering hooks on the embedded model: forward throughput and steered generation.

Prints ``name: value`` lines measured in one run with ``torch.set_num_threads(1)``:

* forward tokens/s unsteered and under CLAS (default settings: last 4 layers, beta = gamma =
  0.2, neurons identified on a small slice of the embedded corpus), on the same left-padded
  batches, steered and unsteered runs interleaved, median over repeats; once with only the
  last position unembedded (``logits_to_keep=1``: the blocks dominate, the hard case for the
  overhead) and once with full logits (what choice scoring does; the 262k-word unembedding
  dominates). The ratios (steered / unsteered, target >= 0.95) are the numbers to compare
  across machines.
* steered greedy generation tokens/s, cached and uncached, with the unsteered cached rate
  for reference.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch


def _median_rates(fns: dict, tokens: int, repeats: int) -> tuple[dict[str, float], float]:
    """Median tokens/s of each function, and the median of the per-repeat ratios
    (second / first): each pair runs back to back, so load drift cancels."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for i in range(repeats):
        # interleaved, order alternating (ABBA...): drift and warm caches hit both alike
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    paired = statistics.median(a / b for a, b in zip(times[names[0]], times[names[1]]))
    return {k: tokens / statistics.median(v) for k, v in times.items()}, paired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of the model (cpu, cuda, ...)")
    ap.add_argument("--dtype", default="float32", help="parameter dtype: float32, bfloat16 or float16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import clas_lens
    from clas_lens.batching import encode
    from clas_lens.data.corpus import load_corpus
    from clas_lens.generation import generate_tokens
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats
    from clas_lens.steering import ClasSteering, steer

    model = clas_lens.load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        corpus = load_corpus("default", langs=["en", "de", "sw"])
    stats = collect_stats(model, corpus.subset(ids=corpus.ids[:8]), site="act", layers="last:4", progress=False)
    ns = identify_neurons(stats, "clas")
    clas = ClasSteering(ns, "sw")
    shared, spec = clas.masks()
    texts = (corpus.texts("sw") + corpus.texts("de"))[: args.batch]
    enc = encode(model, texts, padding_side="left")
    tokens = int(enc.attention_mask.sum())
    print(f"model: {clas_lens.model_info(model).model_id}")
    print(f"batch: {enc.input_ids.shape[0]}x{enc.input_ids.shape[1]} ({tokens} real tokens)")
    from clas_lens.steering.checks import model_layers as _resolve_layers

    layers = _resolve_layers(model, clas.layers)
    print(f"clas_layers: {layers}")
    print(f"clas_neurons_steered: {int((shared | spec)[layers].sum())} of {len(layers) * shared.shape[1]}")

    @torch.no_grad()
    def fwd(keep):
        kw = {"logits_to_keep": 1} if keep else {}
        return lambda: model(enc.input_ids, attention_mask=enc.attention_mask, **kw)

    def steered(fn):
        def run():
            with steer(model, clas):
                fn()

        return run

    unsteered_ms = {}
    for label, keep in (("last_logits", True), ("full_logits", False)):
        base = fwd(keep)
        base()  # warm-up
        steered(base)()
        r, paired = _median_rates({"unsteered": base, "steered": steered(base)}, tokens, args.repeats)
        print(f"forward_{label}_tokens_per_s_unsteered: {r['unsteered']:.1f}")
        print(f"forward_{label}_tokens_per_s_steered: {r['steered']:.1f}")
        print(f"forward_{label}_steered_ratio: {r['steered'] / r['unsteered']:.3f}")
        print(f"forward_{label}_steered_ratio_paired_median: {paired:.3f}")
        unsteered_ms[label] = tokens / r["unsteered"] * 1e3

    # The steering cost itself, free of load noise: building/removing the hooks (steer's
    # enter + exit) and running the hook functions on this batch's activations.
    t0 = time.perf_counter()
    for _ in range(20):
        with steer(model, clas):
            pass
    print(f"steer_context_ms: {(time.perf_counter() - t0) / 20 * 1e3:.2f}")
    fns = [fn for _, fn in clas.hooks(model)]
    h = torch.randn(enc.input_ids.shape[0], enc.input_ids.shape[1], shared.shape[1])
    t0 = time.perf_counter()
    for _ in range(20):
        for fn in fns:
            fn(h, None)
    hook_ms = (time.perf_counter() - t0) / 20 * 1e3
    print(f"steering_hooks_ms_per_forward: {hook_ms:.2f}")
    print(f"steering_hooks_share_of_forward_last_logits: {hook_ms / unsteered_ms['last_logits']:.4f}")

    prompts = ["Die Hauptstadt von Frankreich ist", "Jumatatu, Jumanne,", "The capital of France is", "Lundi, mardi, mercredi,"]
    generate_tokens(model, prompts, 2)
    rates, outs = {}, {}
    for name, use_cache, ivs in (("steered_cached", True, [clas]), ("steered_uncached", False, [clas]), ("unsteered_cached", True, [])):
        with steer(model, *ivs):
            t0 = time.perf_counter()
            outs[name] = generate_tokens(model, prompts, args.new_tokens, use_cache=use_cache)
            dt = time.perf_counter() - t0
        rates[name] = sum(len(o) for o in outs[name]) / dt
    for name, rate in rates.items():
        print(f"generation_tokens_per_s_{name}: {rate:.1f}")
    print(f"generation_steered_cached_equals_uncached: {outs['steered_cached'] == outs['steered_uncached']}")
    print(f"generation_steered_cached_ratio: {rates['steered_cached'] / rates['unsteered_cached']:.3f}")


if __name__ == "__main__":
    main()
