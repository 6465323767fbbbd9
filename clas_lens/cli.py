"""The ``clas-lens`` command line. Every subcommand has ``--help``."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

INFO_PROMPTS = {
    "en": "The weather today is",
    "de": "Das Wetter heute ist",
    "sw": "Hali ya hewa leo ni",
}


def cmd_info(args: argparse.Namespace) -> int:
    """Print the model card and a greedy continuation in English, German and Swahili."""
    import time

    import clas_lens
    from clas_lens.generation import generate

    t0 = time.perf_counter()
    model = clas_lens.load_model(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    info = clas_lens.model_info(model)
    sites = clas_lens.neuron_sites(model)
    cfg = model.cfg
    rows = [
        ("model", info.model_id),
        ("source", f"{info.source}  {info.path or ''}".rstrip()),
        ("architecture", str(getattr(cfg, "architecture", "?"))),
        ("layers", str(sites.n_layers)),
        ("d_model", str(cfg.d_model)),
        ("d_mlp", str(sites.d_mlp)),
        ("MLP neurons", f"{sites.n_neurons:,}"),
        ("gated MLP", str(sites.gated)),
        ("sites", "post (blocks.{l}.mlp.hook_post), act (" + ("act_fn(gate) via hook_pre" if sites.gated else "= post") + ")"),
        ("context", str(getattr(cfg, "n_ctx", "?"))),
        ("weights sha256", info.weights_sha256),
        ("licence", info.licence or "see the model's own licence"),
        ("load time", f"{load_s:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print()
    outs = generate(model, list(INFO_PROMPTS.values()), args.max_new_tokens, stop="\n")
    for (lang, prompt), out in zip(INFO_PROMPTS.items(), outs):
        print(f"[{lang}] {prompt}|{out}")
    return 0


def _split_list(values: Sequence[str] | None) -> list[str] | None:
    """``["en,de", "ru"]`` -> ``["en", "de", "ru"]`` (space- or comma-separated options)."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def _parse_layers(text: str | None):
    """``None``/``"all"``/``"last:4"`` stay strings; ``"0,3,-1"`` becomes ints."""
    if text is None or text == "all" or text.startswith("last:"):
        return text
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--layers {text!r}: use 'all', 'last:K' or comma-separated layer indices.") from None


def cmd_stats(args: argparse.Namespace) -> int:
    """Collect per-language neuron statistics into a safetensors file (rank 0 writes it).

    Runs in one process, or data-parallel under ``torchrun --nproc-per-node N -m clas_lens stats``.
    """
    import time

    import torch

    import clas_lens
    from clas_lens.data.corpus import load_corpus
    from clas_lens.distributed import distributed_collect_stats, finish_distributed, init_distributed

    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = init_distributed(args.device)
    try:
        langs = _split_list(args.langs)
        corpus = load_corpus(args.corpus, langs=langs)
        if args.limit:
            corpus = corpus.subset(ids=corpus.ids[: args.limit])
        model = clas_lens.load_model(args.model, device=ctx.device)
        t0 = time.perf_counter()
        stats = distributed_collect_stats(
            model,
            corpus,
            site=args.site,
            layers=_parse_layers(args.layers),
            batch_size=args.batch_size,
            max_length=args.max_length,
            threshold=args.threshold,
            keep_bos=args.keep_bos,
            per_sentence=args.per_sentence,
            progress=None if ctx.is_main else False,
        )
        seconds = time.perf_counter() - t0
        if ctx.is_main:
            path = stats.save(args.out)
            tokens = sum(stats.n_tokens(lang) for lang in stats.langs)
            print(
                f"wrote {path}: {len(stats.langs)} languages x {len(corpus)} items, {tokens:,} tokens, "
                f"site {stats.site}, layers {stats.layers[0]}..{stats.layers[-1]}, "
                f"{seconds:.1f} s on {ctx.world_size} process(es)"
            )
    except BaseException:
        finish_distributed(ctx, wait=False)  # other ranks may never reach a barrier
        raise
    finish_distributed(ctx)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clas-lens",
        description="Cross-Lingual Activation Steering workbench (TransformerLens).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="model card and a greedy continuation in en/de/sw")
    info.add_argument("--model", default="default", help="'default', a local HF folder or a hub id")
    info.add_argument("--device", default="cpu")
    info.add_argument("--max-new-tokens", type=int, default=12)
    info.set_defaults(func=cmd_info)

    stats = sub.add_parser(
        "stats",
        help="per-language neuron statistics -> safetensors (also under torchrun)",
        description="Collect per-language MLP neuron statistics. Data-parallel when launched with "
        "`torchrun --nproc-per-node N -m clas_lens stats ...` (gloo on CPU, nccl on CUDA); "
        "rank 0 writes the file.",
    )
    stats.add_argument("--model", default="default", help="'default', a local HF folder or a hub id")
    stats.add_argument("--corpus", default="default", help="'default', 'flores' or a JSON-lines file/folder")
    stats.add_argument("--out", required=True, help="output file (.safetensors)")
    stats.add_argument("--langs", nargs="+", help="languages (space- or comma-separated; default: all)")
    stats.add_argument("--site", default="post", choices=["post", "act"])
    stats.add_argument("--layers", default=None, help="'all' (default), 'last:K' or e.g. '0,5,-1'")
    stats.add_argument("--limit", type=int, default=0, help="use the first N parallel items (0: all)")
    stats.add_argument("--batch-size", type=int, default=16)
    stats.add_argument("--max-length", type=int, default=None)
    stats.add_argument("--threshold", type=float, default=0.0)
    stats.add_argument("--keep-bos", action="store_true", help="count the BOS token too")
    stats.add_argument("--per-sentence", action="store_true", help="also store per-sentence means")
    stats.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (cuda:LOCAL_RANK under torchrun)")
    stats.add_argument("--threads", type=int, default=0, help="torch threads per process (0: default)")
    stats.set_defaults(func=cmd_stats)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
