"""``clas-lens info``: the model card and a greedy continuation in English, German and Swahili."""
from __future__ import annotations

import argparse

from clas_lens import checks
from clas_lens.cli.args import add_model_args, load_cli_model, number


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
    model = load_cli_model(args)
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


def add_info_command(sub) -> None:
    """The ``info`` subcommand on the subparsers ``sub``."""
    info = sub.add_parser("info", help="model card and a greedy continuation in en/de/sw")
    add_model_args(info)
    info.add_argument("--max-new-tokens", type=number(checks.positive_int, "--max-new-tokens"), default=12)
    info.set_defaults(func=cmd_info)
