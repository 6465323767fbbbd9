"""The run-directory subcommands: ``run`` (the whole pipeline from a TOML config, or only its
checks with ``--check``) and ``figures`` (rebuild a run's figures from its saved files)."""
from __future__ import annotations

import argparse

from clas_lens import checks
from clas_lens.cli.args import figure_formats
from clas_lens.cli.output import log


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline into a run directory, then a summary."""
    import time

    from clas_lens.config import config_path, load
    from clas_lens.pipeline.inputs import device_status
    from clas_lens.pipeline import print_summary, run_pipeline
    from clas_lens.pipeline.run import check_config

    path = config_path(args.config)
    cfg = load(path, args.set)
    if args.out_dir:
        cfg.run.out_dir = checks.text(args.out_dir, "--out-dir", nonempty=True)
    if args.check:  # the device is reported, not required: a GPU config checks on any machine
        for note in check_config(cfg, restart=args.restart, devices=False) + [device_status(cfg)]:
            print(note)
        print(f"config OK: {path}")
        return 0
    t0 = time.perf_counter()
    run_dir = run_pipeline(cfg, restart=args.restart, figures=not args.no_figures, log=log)
    print(f"\nrun directory: {run_dir.resolve()}  ({time.perf_counter() - t0:.0f} s)")
    print_summary(run_dir)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """Rebuild every figure of a run directory from its saved files (no model)."""
    from clas_lens.pipeline import make_figures

    written = make_figures(args.run_dir, formats=args.formats)
    for name, files in written.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in files.items()))
    return 0


def add_run_commands(sub) -> None:
    """The ``run`` and ``figures`` subcommands on the subparsers ``sub``."""
    run = sub.add_parser("run", help="the whole pipeline (stats, neurons, sweep, clusters, divergence test, figures)")
    run.add_argument("config", nargs="?", help="a TOML run config, or a packaged config's name (demo, paper_llama31_8b, paper_qwen25_7b; default: demo)")
    run.add_argument("--out-dir", help="override [run] out_dir")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, the value in TOML syntax (repeatable), e.g. --set model.dtype=bfloat16 "
                     "--set \"eval.langs.xquad=['en','de']\"")
    run.add_argument("--restart", action="store_true",
                     help="empty an existing run directory (only one clas_lens made) and start again")
    run.add_argument("--check", action="store_true",
                     help="only check the config and what it names (no model is loaded, nothing is written); exit 0 or 2")
    run.add_argument("--no-figures", action="store_true", help="skip figure export")
    run.set_defaults(func=cmd_run)

    fig = sub.add_parser("figures", help="rebuild every figure of a run directory (no model needed)")
    fig.add_argument("run_dir")
    fig.add_argument("--formats", type=figure_formats, default=("html", "png", "svg"),
                     help="comma-separated: html,png,svg,pdf ... (default html,png,svg)")
    fig.set_defaults(func=cmd_figures)
