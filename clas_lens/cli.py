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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
