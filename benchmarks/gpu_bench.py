"""Statistics and steering throughput on a Llama-architecture model (GPU or CPU).

Builds a Llama model with random weights from a config (no hub; ``--size 1b``: hidden 2048,
16 layers, intermediate 8192, 32 heads / 8 KV heads, vocab 32000, ~1.1B parameters; ``--size
tiny`` for a CPU check), saves it with the small byte-level tokenizer of
``clas_lens.testing`` into a folder, loads it with ``clas_lens.load_model(folder,
device=..., dtype=...)`` and measures, on the embedded multilingual corpus:

* ``stats``: ``collect_stats`` (every layer, float64 sums) against a plain forward over the same
  batches, and ``per_sentence=True`` on top;
* ``steer``: a forward and greedy generation under ``ClasSteering`` (random masks, last 4
  layers) against the same without steering.

Each ratio is measured in one run (the number to compare across machines); absolute
figures are printed for context. ``--model FOLDER`` skips the build and uses that folder.
Run by ``benchmarks/gpu_check.sh``; on CPU: ``python benchmarks/gpu_bench.py --size tiny``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

SIZES: dict[str, dict] = {
    "1b": dict(
        hidden_size=2048, num_hidden_layers=16, intermediate_size=8192, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=32000, max_position_embeddings=2048,
    ),
    "tiny": dict(
        hidden_size=64, num_hidden_layers=4, intermediate_size=256, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=512, max_position_embeddings=256,
    ),
}
LANGS = ["en", "de", "ru", "zh", "hi", "sw"]


def build_model_folder(size: str, folder: Path, *, device: str, dtype: torch.dtype, seed: int = 0) -> Path:
    """A random Llama of ``size`` (seeded) and the clas_lens test tokenizer, saved to ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from clas_lens.testing import _tokenizer  # the byte-level BPE tokenizer of the tiny models

    folder.mkdir(parents=True, exist_ok=True)
    n_tok = _tokenizer(folder)
    spec = SIZES[size]
    if n_tok > spec["vocab_size"]:
        raise ValueError(f"tokenizer has {n_tok} tokens > vocab {spec['vocab_size']}")
    cfg = LlamaConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, **spec)
    cfg.architectures = ["LlamaForCausalLM"]
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    model.to(dtype)
    model.save_pretrained(folder)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return folder, n_params


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls (after the caller's warm-up)."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="1b")
    ap.add_argument("--model", default=None, help="existing model folder (skips the build)")
    ap.add_argument("--out", default=None, help="where to write the built model (default: a temp dir, removed)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="bfloat16 (default on cuda) or float32 (default on cpu)")
    ap.add_argument("--items", type=int, default=64, help="parallel items per language")
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prefix", default=None, help="name prefix of the printed lines")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)

    import clas_lens
    from clas_lens.batching import encode
    from clas_lens.distributed import batch_plan as _batch_plan
    from clas_lens.generation import generate_tokens
    from clas_lens.stats import collect_stats
    from clas_lens.steering import ClasSteering, MaskSet, steer

    prefix = args.prefix or f"llama_{args.size if args.model is None else 'model'}_{device.type}"
    tmp = None
    t0 = time.perf_counter()
    if args.model is None:
        folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="clas_lens_gpu_bench_")) / "model"
        tmp = None if args.out else folder.parent
        folder, n_params = build_model_folder(args.size, folder, device=str(device), dtype=dtype)
        print(f"{prefix}_build_s: {time.perf_counter() - t0:.1f}")
    else:
        folder, n_params = Path(args.model), None
    try:
        t0 = time.perf_counter()
        model = clas_lens.load_model(folder, device=device, dtype=dtype)
        print(f"{prefix}_load_s: {time.perf_counter() - t0:.1f}")
        n_params = n_params or sum(p.numel() for p in model.parameters())
        print(f"{prefix}_params_millions: {n_params / 1e6:.1f}")
        sites = clas_lens.neuron_sites(model)

        langs = [l for l in args.langs.split(",") if l]
        corpus = clas_lens.load_corpus("default", langs=langs, check_langid=False)
        corpus = corpus.subset(ids=corpus.ids[: args.items])
        texts = {l: corpus.texts(l) for l in langs}

        # --- statistics vs a plain forward over the very same batches ---------------------
        import warnings

        warnings.filterwarnings("ignore", message="Truncated")  # texts cut to --max-length
        warnings.filterwarnings("ignore", message=".*past_key_values.*")
        batches = [
            encode(model, [texts[l][i] for i in b], max_length=args.max_length, truncation="warn")
            for l in langs
            for b in _batch_plan(texts[l], args.batch_size)
        ]
        n_tokens = sum(int(e.attention_mask.sum()) for e in batches)

        def plain():
            with torch.no_grad():
                for e in batches:
                    model(e.input_ids, attention_mask=e.attention_mask)

        def stats(per_sentence=False):
            return collect_stats(
                model, corpus, batch_size=args.batch_size, max_length=args.max_length,
                per_sentence=per_sentence, progress=False,
            )

        plain()
        stats()  # warm-up
        t_plain = _timed(plain, device, args.repeats)
        t_stats = _timed(stats, device, args.repeats)
        t_sent = _timed(lambda: stats(True), device, args.repeats)
        print(f"{prefix}_forward_tokens_per_s: {n_tokens / t_plain:.0f}")
        print(f"{prefix}_stats_tokens_per_s: {n_tokens / t_stats:.0f}")
        print(f"{prefix}_stats_over_forward: {t_stats / t_plain:.3f}")
        print(f"{prefix}_stats_per_sentence_over_stats: {t_sent / t_stats:.3f}")

        # --- steering: forward and greedy generation, steered vs not ----------------------
        g = torch.Generator().manual_seed(0)
        masks = MaskSet(
            langs=langs,
            specific={l: torch.rand(sites.shape, generator=g) < 0.01 for l in langs},
            categories={"partial_shared": torch.rand(sites.shape, generator=g) < 0.05},
        )
        clas = ClasSteering(masks, target_lang=langs[0], beta=0.5, gamma=0.5)
        fwd = batches[: max(1, len(batches) // 4)]

        def forward_batches():
            with torch.no_grad():
                for e in fwd:
                    model(e.input_ids, attention_mask=e.attention_mask)

        def steered_forward():
            with steer(model, clas):
                forward_batches()

        prompts = [texts[l][i][:40] for i in range(2) for l in langs][: args.batch_size]
        counts = {}

        def gen(steered: bool):
            if steered:
                with steer(model, clas):
                    out = generate_tokens(model, prompts, args.new_tokens)
            else:
                out = generate_tokens(model, prompts, args.new_tokens)
            counts[steered] = sum(len(o) for o in out)

        forward_batches()
        steered_forward()
        gen(False)
        gen(True)  # warm-up
        t_f = _timed(forward_batches, device, args.repeats)
        t_fs = _timed(steered_forward, device, args.repeats)
        t_g = _timed(lambda: gen(False), device, args.repeats)
        t_gs = _timed(lambda: gen(True), device, args.repeats)
        print(f"{prefix}_steer_forward_over_plain: {t_fs / t_f:.3f}")
        print(f"{prefix}_generate_tokens_per_s: {counts[False] / t_g:.1f}")
        print(f"{prefix}_steer_generate_tokens_per_s: {counts[True] / t_gs:.1f}")
        print(f"{prefix}_steer_generate_over_plain: {(t_gs / max(counts[True], 1)) / (t_g / max(counts[False], 1)):.3f}")
        if device.type == "cuda":
            print(f"{prefix}_peak_memory_gib: {torch.cuda.max_memory_allocated(device) / 2**30:.1f}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
