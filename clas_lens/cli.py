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

>>> build_parser().parse_args(["eval", "--layers", "0,3"]).layers
[0, 3]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
import warnings
from typing import Any, Callable, Iterator, Sequence

from clas_lens import checks
from clas_lens import __version__
from clas_lens.config import DEVICE_MAPS, allowed_values
from clas_lens.errors import ClasLensError, DataValidationError
from clas_lens.specs import LayerSpec, resolve_layers
from clas_lens.vocab import DEFAULT_STEER_LAYERS, UNSTEERED

INFO_PROMPTS = {
    "en": "The weather today is",
    "de": "Das Wetter heute ist",
    "sw": "Hali ya hewa leo ni",
}


_QUIET = False
#: Packages whose warnings the command line does not show (their FutureWarnings and
#: DeprecationWarnings concern their own next releases, not the user's results).
THIRD_PARTY = (
    "torch", "transformers", "transformer_lens", "accelerate", "datasets", "huggingface_hub", "tokenizers",
    "safetensors", "einops", "numpy", "pandas", "scipy", "sklearn", "umap", "pynndescent", "numba", "plotly",
    "kaleido", "tqdm",
)


def log(message: str) -> None:
    """A log line on stderr (nothing under ``--quiet``); results go to stdout."""
    if not _QUIET:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def cli_output(quiet: bool = False) -> Iterator[None]:
    """While the command runs: third-party warnings hidden (transformers' logging at error
    level too), and with ``quiet`` no log lines and no progress bars (tqdm's and
    transformers'). Everything is restored afterwards.

    >>> import warnings
    >>> with cli_output():
    ...     warnings.warn_explicit("old", FutureWarning, "x.py", 1, module="transformers.generation")
    """
    global _QUIET
    import tqdm.std
    from transformers.utils import logging as hf_logging

    before = (_QUIET, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), tqdm.std.tqdm.__init__)
    init = before[3]

    def silent_init(self, *a, **k):
        k["disable"] = True
        init(self, *a, **k)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(%s)(\.|$)" % "|".join(THIRD_PARTY))
        warnings.filterwarnings("ignore", message=r".*`past_key_values` is deprecated", category=FutureWarning)
        hf_logging.set_verbosity_error()
        _QUIET = bool(quiet)
        if quiet:
            hf_logging.disable_progress_bar()
            tqdm.std.tqdm.__init__ = silent_init
        try:
            yield
        finally:
            _QUIET = before[0]
            hf_logging.set_verbosity(before[1])
            if before[2]:
                hf_logging.enable_progress_bar()
            tqdm.std.tqdm.__init__ = init


def device_map_arg(text: str) -> str | dict:
    """The argparse type of ``--device-map``: a placement name or a JSON table {module: device}.

    >>> device_map_arg("auto"), device_map_arg('{"": 0}')
    ('auto', {'': 0})
    """
    if text in DEVICE_MAPS:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError(f"--device-map {text!r}: use one of {', '.join(DEVICE_MAPS)} or a JSON table")
    return value


def load_cli_model(args: argparse.Namespace, device: Any = None):
    """``load_model`` with the command's ``--model``, ``--device`` (or ``device``), ``--dtype``
    and ``--device-map``."""
    import clas_lens

    return clas_lens.load_model(args.model, device=device or args.device, dtype=args.dtype, device_map=args.device_map)


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


def split_list(values: Sequence[str] | None) -> list[str] | None:
    """``["en,de", "ru"]`` -> ``["en", "de", "ru"]`` (space- or comma-separated options); a
    language given twice is refused.

    >>> split_list(["en,de", "ru"])
    ['en', 'de', 'ru']
    """
    if not values:
        return None
    return checks.unique_langs([v for item in values for v in item.split(",") if v], "--langs")


def number(check: Callable[..., Any], option: str, *, integer: bool = True, **kw: Any) -> Callable[[str], Any]:
    """An argparse type: the text as an int (or float), then ``check`` from
    :mod:`clas_lens.checks` (its message, with the allowed range, becomes the usage error).

    >>> number(checks.positive_int, "--batch-size")("8")
    8
    >>> number(checks.positive_int, "--batch-size")("8.5")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --batch-size = '8.5' is not allowed: use a whole number >= 1
    """

    def parse(text: str) -> Any:
        try:
            value: Any = int(text) if integer else float(text)
        except ValueError:
            value = text
        try:
            return check(value, option, **kw)
        except DataValidationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = option.lstrip("-").replace("-", "_")
    return parse


def langs_arg(text: str) -> list[str]:
    """The argparse type of a comma-separated ``--langs``: each language once.

    >>> langs_arg("en,de")
    ['en', 'de']
    """
    try:
        return checks.unique_langs([v.strip() for v in text.split(",") if v.strip()], "--langs")
    except DataValidationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def layer_spec(text: str) -> Any:
    """The argparse type of every ``--layers``: a :class:`~clas_lens.specs.LayerSpec` in the
    form the API takes (``"all"``, ``"last:k"``, ``"first:k"`` or a list of ints).

    >>> layer_spec("last:2"), layer_spec("0,2,-1"), layer_spec("1-3")
    ('last:2', [0, 2, -1], [1, 2, 3])
    """
    try:
        return LayerSpec.parse(text).to_json()
    except DataValidationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
        langs = split_list(args.langs)
        corpus = load_corpus(args.corpus, langs=langs, drop_incomplete=args.drop_incomplete)
        if args.drop_incomplete and corpus.info["dropped"] and ctx.is_main:
            d = corpus.info["dropped"]
            log(f"dropped {len(d)} items missing a language (e.g. id {d[0]['id']!r}: {d[0]['reason']})")
        if args.limit:
            corpus = corpus.subset(ids=corpus.ids[: args.limit])
        model = load_cli_model(args, device=ctx.device)
        sites = clas_lens.neuron_sites(model)
        site = args.site or ("act" if sites.gated else "post")  # 'post' of a gated MLP mixes in up(x)
        layers = None if args.layers is None else resolve_layers(args.layers, sites.n_layers)
        t0 = time.perf_counter()
        stats = distributed_collect_stats(
            model,
            corpus,
            site=site,
            layers=layers,
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
            log(
                f"wrote {path}: {len(stats.langs)} languages x {len(corpus)} items, {tokens:,} tokens, "
                f"site {stats.site}, layers {stats.layers[0]}..{stats.layers[-1]}, "
                f"{seconds:.1f} s on {ctx.world_size} process(es)"
            )
    except BaseException:
        finish_distributed(ctx, wait=False)  # other ranks may never reach a barrier
        raise
    finish_distributed(ctx)
    return 0


def figure_formats(text: str) -> tuple[str, ...]:
    """The argparse type of ``--formats``: comma-separated figure formats the config allows.

    >>> figure_formats("html,png")
    ('html', 'png')
    """
    allowed = allowed_values()["figures.formats"]
    out = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in out if f not in allowed]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"--formats {text!r}: use a comma list of {', '.join(allowed)}.")
    return out


def _print_table(df) -> None:
    import pandas as pd

    with pd.option_context("display.max_columns", 20, "display.width", 140, "display.float_format", "{:.3f}".format):
        print(df.to_string(index=False))


def cmd_run(args: argparse.Namespace) -> int:
    """The whole pipeline into a run directory, then a summary."""
    import time

    from clas_lens.config import default_config_path, load
    from clas_lens.pipeline.inputs import device_status
    from clas_lens.pipeline import print_summary, run_pipeline
    from clas_lens.pipeline.run import check_config

    path = args.config or default_config_path()
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


def cmd_neurons(args: argparse.Namespace) -> int:
    """Identify neurons from saved statistics."""
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import NeuronStats

    params = dict(_parse_param(p) for p in args.param)
    neurons = identify_neurons(NeuronStats.load(args.stats), args.method, **params)
    neurons.save(args.out)
    counts = neurons.counts()
    _print_table(counts.groupby(["category", "lang"], dropna=False)["count"].sum().reset_index())
    log(f"wrote {args.out}")
    return 0


def _parse_param(text: str):
    if "=" not in text:
        raise DataValidationError(f"--param {text!r}: use NAME=VALUE, e.g. --param prob_threshold=0.5")
    k, v = text.split("=", 1)
    for cast in (int, float):
        try:
            return k, cast(v)
        except ValueError:
            pass
    return k, v


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a task per language, unsteered and under CLAS / Int-mu."""
    import clas_lens
    from clas_lens.io import atomic_write_text
    from clas_lens.neurons import NeuronSet
    from clas_lens.stats import NeuronStats

    langs = args.langs
    options = {k: getattr(args, k) for k in ("dataset", "hub_config", "hub_split", "data_files") if getattr(args, k)}
    task = clas_lens.load_task(args.task, langs=langs, **options)  # before the model: bad data fails first
    model = load_cli_model(args)
    conditions = {UNSTEERED: None}
    if args.neurons:
        neurons = NeuronSet.load(args.neurons)
        conditions["clas"] = clas_lens.ClasSteering(neurons, layers=args.layers, beta=args.beta, gamma=args.gamma)
        if args.stats:
            conditions["int_mu"] = clas_lens.SetNeurons.int_mu(neurons, NeuronStats.load(args.stats), layers=args.layers)
    df = clas_lens.evaluate(model, task, langs, conditions, limit=args.limit, batch_size=args.batch_size)
    df.attrs = {}
    _print_table(df[["task", "lang", "condition", "metric", "value", "ci_low", "ci_high", "n", "diff", "p_value"]])
    if args.out:
        atomic_write_text(args.out, df.to_csv(index=False))
        log(f"wrote {args.out}")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    """Residual-stream cluster metrics per layer (and after CLAS, with --neurons)."""
    import pandas as pd

    import clas_lens
    from clas_lens.io import atomic_write_text
    from clas_lens.neurons import NeuronSet

    corpus = clas_lens.load_corpus(args.corpus, langs=args.langs, drop_incomplete=args.drop_incomplete)
    if args.drop_incomplete and corpus.info["dropped"]:
        d = corpus.info["dropped"]
        log(f"dropped {len(d)} items missing a language (e.g. id {d[0]['id']!r}: {d[0]['reason']})")
    if args.limit:
        corpus = corpus.subset(ids=corpus.ids[: args.limit])
    model = load_cli_model(args)
    kw = {"pooling": args.pooling, "batch_size": args.batch_size}
    reps = [clas_lens.residual_reps(model, corpus, condition=UNSTEERED, **kw)]
    if args.neurons:
        clas = clas_lens.ClasSteering(NeuronSet.load(args.neurons), layers=args.layers, beta=args.beta, gamma=args.gamma)
        reps.append(clas_lens.residual_reps(model, corpus, intervention=clas, condition="clas", **kw))
    metrics = pd.concat([clas_lens.cluster_metrics(r) for r in reps], ignore_index=True)
    sil = metrics[(metrics.metric == "silhouette_cosine") & (metrics.lang == "all")]
    _print_table(sil.pivot_table(index="layer", columns="condition", values="value").reset_index())
    if args.out:
        atomic_write_text(args.out, metrics.to_csv(index=False))
        log(f"wrote {args.out}")
    return 0


def _model_args(p: argparse.ArgumentParser, *, device_help: str = "'cpu', 'cuda', 'cuda:1', 'mps'") -> None:
    p.add_argument("--model", default="default", help="'default', a local HF folder or a hub id")
    p.add_argument("--device", default="cpu", help=device_help)
    p.add_argument("--dtype", default="float32", choices=list(allowed_values()["model.dtype"]),
                   help="parameter dtype (default float32; bfloat16 for large models on a GPU)")
    p.add_argument("--device-map", type=device_map_arg, default=None,
                   help=f"place the model with an HF device map instead of --device: {', '.join(DEVICE_MAPS)} or a JSON table")


def _steer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=layer_spec, default=DEFAULT_STEER_LAYERS,
                   help=f"steered layers: 'last:k', 'first:k', 'a-b', '0,3,-1' or 'all' (default {DEFAULT_STEER_LAYERS})")
    p.add_argument("--beta", type=number(checks.finite_float, "--beta", integer=False), default=0.2,
                   help="boost of shared neurons (default 0.2)")
    p.add_argument("--gamma", type=number(checks.finite_float, "--gamma", integer=False), default=0.2,
                   help="suppression of specific neurons (default 0.2)")


def add_pipeline_commands(sub) -> None:
    run = sub.add_parser("run", help="the whole pipeline (stats, neurons, sweep, clusters, divergence test, figures)")
    run.add_argument("config", nargs="?", help="a TOML run config (default: the embedded demo config)")
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

    neu = sub.add_parser("neurons", help="identify neurons from saved statistics")
    neu.add_argument("stats", help="a stats.safetensors written by `clas-lens stats`")
    neu.add_argument("--method", default="clas", choices=list(allowed_values()["neurons.method"]))
    neu.add_argument("--param", action="append", default=[], help="method parameter NAME=VALUE (repeatable)")
    neu.add_argument("--out", default="neurons.safetensors")
    neu.set_defaults(func=cmd_neurons)

    ev = sub.add_parser("eval", help="evaluate a task per language, unsteered and steered")
    _model_args(ev)
    ev.add_argument("--task", default="cloze", choices=list(allowed_values()["eval.tasks"]))
    ev.add_argument("--langs", type=langs_arg, default="en,de,sw")
    ev.add_argument("--neurons", help="a neurons.safetensors: adds the CLAS condition")
    ev.add_argument("--stats", help="a stats.safetensors: with --neurons adds Int-mu")
    ev.add_argument("--limit", type=number(checks.positive_int, "--limit"), help="first N items per language")
    ev.add_argument("--out", help="write the tidy table as CSV")
    ev.add_argument("--batch-size", type=number(checks.positive_int, "--batch-size"), default=32,
                    help="sequences per forward pass (default 32)")
    ev.add_argument("--dataset", help="xnli / xquad: the hub dataset id (default facebook/xnli, google/xquad)")
    ev.add_argument("--hub-config", help="xnli / xquad: the dataset config per language, with {lang} (e.g. 'xquad.{lang}')")
    ev.add_argument("--hub-split", help="xnli / xquad: the hub split (default test / validation)")
    ev.add_argument("--data-files", help="local files in the task's schema instead: a path with {lang}, e.g. 'xnli/{lang}.jsonl'")
    _steer_args(ev)
    ev.set_defaults(func=cmd_eval)

    cl = sub.add_parser("clusters", help="residual-stream language cluster metrics per layer")
    _model_args(cl)
    cl.add_argument("--corpus", default="default")
    cl.add_argument("--langs", type=langs_arg, help="comma-separated languages (default: all of the corpus)")
    cl.add_argument("--limit", type=number(checks.positive_int, "--limit"), default=48, help="parallel sentences per language")
    cl.add_argument("--pooling", default="mean", choices=list(allowed_values()["clusters.pooling"]))
    cl.add_argument("--neurons", help="a neurons.safetensors: adds the after-CLAS condition")
    cl.add_argument("--out", help="write the metrics as CSV")
    cl.add_argument("--batch-size", type=number(checks.positive_int, "--batch-size"), default=16,
                    help="sentences per forward pass (default 16)")
    cl.add_argument("--drop-incomplete", action="store_true", help="drop (and report) items missing a language")
    _steer_args(cl)
    cl.set_defaults(func=cmd_clusters)


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
    info = sub.add_parser("info", help="model card and a greedy continuation in en/de/sw")
    _model_args(info)
    info.add_argument("--max-new-tokens", type=number(checks.positive_int, "--max-new-tokens"), default=12)
    info.set_defaults(func=cmd_info)

    stats = sub.add_parser(
        "stats",
        help="per-language neuron statistics -> safetensors (also under torchrun)",
        description="Collect per-language MLP neuron statistics. Data-parallel when launched with "
        "`torchrun --nproc-per-node N -m clas_lens stats ...` (gloo on CPU, nccl on CUDA); "
        "rank 0 writes the file.",
    )
    _model_args(stats, device_help="'cpu' or 'cuda' (cuda:LOCAL_RANK under torchrun)")
    stats.add_argument("--corpus", default="default", help="'default', 'flores' or a JSON-lines file/folder")
    stats.add_argument("--drop-incomplete", action="store_true", help="drop (and report) items missing a language")
    stats.add_argument("--out", required=True, help="output file (.safetensors)")
    stats.add_argument("--langs", nargs="+", help="languages (space- or comma-separated, each once; default: all)")
    stats.add_argument("--site", default=None, choices=list(allowed_values()["stats.site"]),
                       help="neuron site (default: act for a gated MLP, as Llama / Gemma / Qwen have, else post)")
    stats.add_argument("--layers", type=layer_spec, default=None, help="'all' (default), 'last:k', 'a-b' or e.g. '0,5,-1'")
    stats.add_argument("--limit", type=number(checks.non_negative_int, "--limit", zero_means="all"), default=0,
                       help="use the first N parallel items (0: all)")
    stats.add_argument("--batch-size", type=number(checks.positive_int, "--batch-size"), default=16)
    stats.add_argument("--max-length", type=number(checks.positive_int, "--max-length"), default=None,
                       help="cut texts to N tokens (default: the model context)")
    stats.add_argument("--threshold", type=number(checks.finite_float, "--threshold", integer=False), default=0.0)
    stats.add_argument("--keep-bos", action="store_true", help="count the BOS token too")
    stats.add_argument("--per-sentence", action="store_true", help="also store per-sentence means")
    stats.add_argument("--threads", type=number(checks.non_negative_int, "--threads", zero_means="default"), default=0,
                       help="torch threads per process (0: default)")
    stats.set_defaults(func=cmd_stats)

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
