"""Baseline (unsteered) scores of the default model on the embedded tasks, per language.

Evaluates ``nli``, ``qa`` and ``cloze`` on every language that has embedded data (or
``--langs``), prints one tidy table with bootstrap 95 % CIs and the seconds each task took.

    python benchmarks/eval_baseline.py --limit 5 --langs en,de
    python benchmarks/eval_baseline.py                     # full size: slow on 2 CPU cores
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="model name or folder (default: embedded Gemma-3-270M)")
    parser.add_argument("--limit", type=int, default=None, help="items per language (default: all)")
    parser.add_argument("--langs", default=None, help="comma-separated ISO codes (default: all embedded)")
    parser.add_argument("--tasks", default="nli,qa,cloze", help="comma-separated task names")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from clas_lens import load_model, load_task
    from clas_lens.data.corpus import embedded_languages
    from clas_lens.evaluation import score_task

    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    requested = [lang.strip() for lang in args.langs.split(",")] if args.langs else None

    t0 = time.perf_counter()
    model = load_model(args.model)
    print(f"model loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    tables = []
    timings = []
    for name in tasks:
        available = embedded_languages(name) if name in ("nli", "qa") else embedded_languages("corpus")
        langs = [lang for lang in requested if lang in available] if requested else available
        skipped = sorted(set(requested or []) - set(langs))
        if skipped:
            print(f"{name}: no embedded data for {', '.join(skipped)}; skipped", file=sys.stderr)
        if not langs:
            continue
        task = load_task(name, langs=langs)
        start = time.perf_counter()
        with torch.no_grad():
            df = score_task(model, task, limit=args.limit, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        df.attrs.pop("predictions", None)  # pandas cannot concat frames holding frames in attrs
        df["task_seconds"] = round(seconds, 1)
        tables.append(df)
        timings.append((name, len(langs), int(df["n"].iloc[0]) if len(df) else 0, seconds))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)

    if not tables:
        print("nothing to evaluate", file=sys.stderr)
        return 1
    table = pd.concat(tables, ignore_index=True)
    table["ci95"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(table["ci_low"], table["ci_high"])]
    show = table[["task", "lang", "metric", "value", "ci95", "n", "task_seconds"]].copy()
    show["task_seconds"] = show["task_seconds"].map("{:.1f}".format)
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    for name, n_langs, n_items, seconds in timings:
        print(f"{name:6s} {n_langs:2d} langs x {n_items:4d} items: {seconds:7.1f} s")
    if args.csv:
        table.drop(columns=["ci95"]).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
