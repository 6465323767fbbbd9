"""The ``clas-lens`` command line. Every subcommand has ``--help``.

Errors: an expected one (a :class:`~clas_lens.errors.ClasLensError`, e.g. a bad config value or
a refused run directory, or a missing file) is printed as one line on stderr and exits with 2;
an unexpected one exits with 1 and a short message; ``--debug`` (anywhere on the line) prints
the traceback too. Every numeric option is checked where it enters (:mod:`clas_lens.checks`),
its allowed range in the message. ``clas-lens run --check CONFIG`` checks a run config and
everything it names without loading a model (exit 0: fine, 2: refused).

Output: results (tables, model cards, summaries, ``--check`` notes) go to stdout; logs ("wrote
...", pipeline steps) and progress bars to stderr. ``--quiet`` (anywhere on the line) drops the
logs and bars, ``--version`` prints the release. Warnings raised inside third-party packages
(e.g. transformers' FutureWarning that ``past_key_values`` goes away) are not shown by the
command line (:func:`cli_output`); the library filters nothing. GPU runs: ``--dtype`` and
``--device-map`` on every command that loads a model, ``--batch-size`` per step, and
``run CONFIG --set KEY=VALUE`` for any config key (:func:`clas_lens.config.load`).

Every subcommand that takes layers parses ``--layers`` with :func:`layer_spec` (the one layer
spec of :class:`clas_lens.specs.LayerSpec`), and offers as choices the values the run
configuration allows (:func:`clas_lens.config.allowed_values`, read from the consuming modules).

The package: :mod:`~clas_lens.cli.program` (the parser, :func:`main`, error printing),
:mod:`~clas_lens.cli.args` (argument types and shared options), :mod:`~clas_lens.cli.output`
(log lines, ``--quiet``, hidden third-party warnings), one module per group of subcommands:
:mod:`~clas_lens.cli.info` (``info``), :mod:`~clas_lens.cli.analysis` (``stats``, ``neurons``,
``eval``, ``clusters``) and :mod:`~clas_lens.cli.run` (``run``, ``figures``).

>>> build_parser().parse_args(["eval", "--layers", "0,3"]).layers
[0, 3]
"""
from clas_lens.cli.analysis import add_analysis_commands, add_stats_command, cmd_clusters, cmd_eval, cmd_neurons, cmd_stats
from clas_lens.cli.args import (
    add_model_args,
    add_steer_args,
    device_map_arg,
    figure_formats,
    langs_arg,
    layer_spec,
    load_cli_model,
    number,
    parse_param,
    split_list,
)
from clas_lens.cli.info import INFO_PROMPTS, add_info_command, cmd_info
from clas_lens.cli.output import THIRD_PARTY, cli_output, log, print_table
from clas_lens.cli.program import EXPECTED_ERRORS, add_pipeline_commands, build_parser, main, one_line
from clas_lens.cli.run import add_run_commands, cmd_figures, cmd_run

__all__ = [
    "EXPECTED_ERRORS", "INFO_PROMPTS", "THIRD_PARTY", "add_analysis_commands", "add_info_command", "add_model_args",
    "add_pipeline_commands", "add_run_commands", "add_stats_command", "add_steer_args", "build_parser", "cli_output",
    "cmd_clusters", "cmd_eval", "cmd_figures", "cmd_info", "cmd_neurons", "cmd_run", "cmd_stats", "device_map_arg",
    "figure_formats", "langs_arg", "layer_spec", "load_cli_model", "log", "main", "number", "one_line", "parse_param",
    "print_table", "split_list",
]
