"""The demo end to end: wall time of ``clas-lens run`` on the demo config.

Runs, each as a fresh process with ``--threads`` torch threads (default 1: ``OMP_NUM_THREADS=1``,
``[model] threads = 1``; ``make bench`` passes 2, the cores the demo's time goal is set for) and
the same environment:

1. ``startup``: ``python -c "import transformer_lens, clas_lens.models"`` (interpreter + stack);
2. ``info``: ``clas-lens info`` (startup + loading the model + three short greedy generations);
3. ``run``: ``clas-lens run CONFIG`` into a temporary run directory -- every step of the
   pipeline (statistics, neurons, sweep, clusters, divergence test, figures). The pipeline's
   cross-run statistics cache points to an empty temporary cache (the converted model is
   linked in from the real cache), so statistics are really computed.

Prints ``name: value`` lines (``demo_cold_minutes``: step 3 in minutes); the ratios
(``demo_run_over_info``, ``demo_info_over_startup``)
are measured in one run and are the numbers to compare across machines. ``demo_command`` says
what step 3 ran: ``run`` (the CLI), ``run_pipeline`` (``clas_lens.pipeline.run_pipeline`` in a
fresh process, when the CLI has no ``run`` subcommand yet) or ``info`` (no pipeline at all:
step 3 skipped).

Usage: ``python benchmarks/bench_demo.py [--config FILE] [--model NAME] [--device cpu] [--formats html]``
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _set_toml(text: str, section: str, key: str, value) -> str:
    """Set ``key = value`` in ``[section]`` of a TOML text (replace the line, or add it)."""
    lines = text.splitlines()
    current, header_at, done = None, None, False
    rendered = f"{key} = {json.dumps(value)}"
    for i, line in enumerate(lines):
        m = re.match(r"^\s*\[([^\]]+)\]\s*(#.*)?$", line)
        if m:
            current = m.group(1).strip()
            if current == section:
                header_at = i
            continue
        if current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            lines[i] = rendered
            done = True
            break
    if not done:
        if header_at is None:
            lines += ["", f"[{section}]", rendered]
        else:
            lines.insert(header_at + 1, rendered)
    return "\n".join(lines) + "\n"


def _has_run_command() -> bool:
    import argparse as _ap

    from clas_lens.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, _ap._SubParsersAction):
            return "run" in action.choices
    return False


def _timed(cmd: list[str], env: dict, label: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_demo: `{' '.join(cmd)}` ({label}) failed with exit code {proc.returncode}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help="run config (default: the embedded demo.toml)")
    ap.add_argument("--model", default=None, help="override [model] name (default: the config's)")
    ap.add_argument("--device", default=None, help="override [model] device (default: the config's)")
    ap.add_argument("--dtype", default=None, help="override [model] dtype (default: the config's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--formats", default=None, help="override [figures] formats, e.g. 'html'")
    ap.add_argument("--keep", default=None, help="copy the finished run directory here")
    args = ap.parse_args()

    from clas_lens.config import RunConfig, default_config_path
    from clas_lens.models import cache_dir

    config = Path(args.config) if args.config else default_config_path()
    tmp = Path(tempfile.mkdtemp(prefix="clas_lens_bench_demo_"))
    try:
        # A fresh cache for the pipeline's statistics, with the (slow to convert) model linked in.
        cache = tmp / "cache"
        cache.mkdir()
        for sub in ("models", "gguf"):
            (cache_dir() / sub).mkdir(parents=True, exist_ok=True)  # a conversion here persists
            (cache / sub).symlink_to((cache_dir() / sub).resolve(), target_is_directory=True)
        env = dict(
            os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
            CLAS_LENS_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
            HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
        )
        text = config.read_text(encoding="utf-8")
        text = _set_toml(text, "run", "out_dir", str(tmp / "runs"))
        text = _set_toml(text, "model", "threads", args.threads)
        if args.model:
            text = _set_toml(text, "model", "name", args.model)
        if args.device:
            text = _set_toml(text, "model", "device", args.device)
        if args.dtype:
            text = _set_toml(text, "model", "dtype", args.dtype)
        if args.formats:
            text = _set_toml(text, "figures", "formats", [f for f in args.formats.split(",") if f])
        cfg_path = tmp / "bench_demo.toml"
        cfg_path.write_text(text, encoding="utf-8")
        cfg = RunConfig.from_toml(cfg_path)  # validates the rewritten config

        py = sys.executable
        t_start = _timed([py, "-c", "import transformer_lens, clas_lens.models"], env, "startup")
        info_cmd = [py, "-m", "clas_lens", "info", "--model", cfg.model.name, "--device", cfg.model.device]
        _timed(info_cmd, env, "info warm-up")  # converts the default model once, if needed
        t_info = _timed(info_cmd, env, "info")
        print(f"demo_startup_s: {t_start:.1f}")
        print(f"demo_info_s: {t_info:.1f}")
        print(f"demo_info_over_startup: {t_info / t_start:.2f}")
        if _has_run_command():
            command, run_cmd = "run", [py, "-m", "clas_lens", "run", str(cfg_path)]
        elif importlib.util.find_spec("clas_lens.pipeline") is not None:
            # the pipeline exists but the CLI does not expose it yet: what `clas-lens run` calls
            code = (
                "import sys; from clas_lens.config import RunConfig; from clas_lens.pipeline import run_pipeline; "
                "run_pipeline(RunConfig.from_toml(sys.argv[1]))"
            )
            command, run_cmd = "run_pipeline", [py, "-c", code, str(cfg_path)]
        else:
            print("demo_command: info")
            print("# no pipeline (clas_lens.pipeline / `clas-lens run`): timed `clas-lens info` only")
            return
        t_run = _timed(run_cmd, env, command)
        print(f"demo_command: {command}")
        print(f"demo_run_s: {t_run:.1f}")
        print(f"demo_cold_minutes: {t_run / 60:.2f} ({args.threads} threads)")
        timing = cfg.run_dir / "timing.json"
        if timing.exists():
            print(f"demo_pipeline_s: {json.loads(timing.read_text())['seconds']:.1f}")
        print(f"demo_run_over_info: {t_run / t_info:.2f}")
        if args.keep:
            shutil.copytree(cfg.run_dir, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
