"""The ``clas-lens`` program: its parser (:func:`build_parser`, the subcommands in the order
info, stats, run, figures, neurons, eval, clusters) and :func:`main`, which runs a command and
turns errors into one line and an exit status (``--debug``, ``--quiet``, ``--version``).

>>> build_parser().parse_args(["figures", "runs/demo"]).command
'figures'
"""
from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

from clas_lens import __version__
from clas_lens.cli.analysis import add_analysis_commands, add_stats_command
from clas_lens.cli.info import add_info_command
from clas_lens.cli.output import cli_output
from clas_lens.cli.run import add_run_commands
from clas_lens.errors import ClasLensError


def add_pipeline_commands(sub) -> None:
    """The ``run``, ``figures``, ``neurons``, ``eval`` and ``clusters`` subcommands on ``sub``."""
    add_run_commands(sub)
    add_analysis_commands(sub)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clas-lens",
        description="Cross-Lingual Activation Steering workbench (TransformerLens).",
    )
    p.add_argument("--version", action="version", version=f"clas-lens {__version__}")
    p.add_argument("--debug", action="store_true", help="on an error, print the traceback (also accepted after the subcommand)")
    p.add_argument("--quiet", action="store_true",
                   help="results only: no log lines, no progress bars (also accepted after the subcommand)")
    sub = p.add_subparsers(dest="command", required=True)
    add_info_command(sub)
    add_stats_command(sub)
    add_pipeline_commands(sub)
    return p


def one_line(error: BaseException) -> str:
    """An error's message on one line (its lines joined by ``"; "``).

    >>> one_line(ValueError("a\\n  - b\\nc"))
    'a; - b; c'
    """
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


#: Errors a user can fix from the message alone: one line, exit 2.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ClasLensError, FileNotFoundError, IsADirectoryError, NotADirectoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``clas-lens`` with ``argv``; return the exit status (0 fine, 2 an expected error or a
    usage error, 1 an unexpected error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:cut]
    quiet = "--quiet" in argv[:cut]
    argv = [a for i, a in enumerate(argv) if not (a in ("--debug", "--quiet") and i < cut)]
    args = build_parser().parse_args(argv)
    try:
        with cli_output(quiet):
            return int(args.func(args) or 0)
    except EXPECTED_ERRORS as e:
        if debug:
            traceback.print_exc()
        print(f"clas-lens: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clas-lens: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            traceback.print_exc()
        print(f"clas-lens: unexpected error: {type(e).__name__}: {one_line(e)}"
              + ("" if debug else " (rerun with --debug for the traceback)"), file=sys.stderr)
        return 1
