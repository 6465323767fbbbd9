"""The step-by-step subcommands: ``stats`` (neuron statistics, also under torchrun),
``neurons`` (identify neurons from them), ``eval`` (a task per language, unsteered and steered)
and ``clusters`` (residual-stream cluster metrics per layer)."""
from __future__ import annotations

import argparse

from clas_lens import checks
from clas_lens.cli.args import (
    add_model_args,
    add_steer_args,
    langs_arg,
    layer_spec,
    load_cli_model,
    number,
    parse_param,
    split_list,
)
from clas_lens.cli.output import log, print_table
from clas_lens.config import allowed_values
from clas_lens.specs import resolve_layers
from clas_lens.vocab import UNSTEERED


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


def cmd_neurons(args: argparse.Namespace) -> int:
    """Identify neurons from saved statistics."""
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import NeuronStats

    params = dict(parse_param(p) for p in args.param)
    neurons = identify_neurons(NeuronStats.load(args.stats), args.method, **params)
    neurons.save(args.out)
    counts = neurons.counts()
    print_table(counts.groupby(["category", "lang"], dropna=False)["count"].sum().reset_index())
    log(f"wrote {args.out}")
    return 0


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
    print_table(df[["task", "lang", "condition", "metric", "value", "ci_low", "ci_high", "n", "diff", "p_value"]])
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
    print_table(sil.pivot_table(index="layer", columns="condition", values="value").reset_index())
    if args.out:
        atomic_write_text(args.out, metrics.to_csv(index=False))
        log(f"wrote {args.out}")
    return 0


def add_stats_command(sub) -> None:
    """The ``stats`` subcommand on the subparsers ``sub``."""
    stats = sub.add_parser(
        "stats",
        help="per-language neuron statistics -> safetensors (also under torchrun)",
        description="Collect per-language MLP neuron statistics. Data-parallel when launched with "
        "`torchrun --nproc-per-node N -m clas_lens stats ...` (gloo on CPU, nccl on CUDA); "
        "rank 0 writes the file.",
    )
    add_model_args(stats, device_help="'cpu' or 'cuda' (cuda:LOCAL_RANK under torchrun)")
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


def add_analysis_commands(sub) -> None:
    """The ``neurons``, ``eval`` and ``clusters`` subcommands on the subparsers ``sub``."""
    neu = sub.add_parser("neurons", help="identify neurons from saved statistics")
    neu.add_argument("stats", help="a stats.safetensors written by `clas-lens stats`")
    neu.add_argument("--method", default="clas", choices=list(allowed_values()["neurons.method"]))
    neu.add_argument("--param", action="append", default=[], help="method parameter NAME=VALUE (repeatable)")
    neu.add_argument("--out", default="neurons.safetensors")
    neu.set_defaults(func=cmd_neurons)

    ev = sub.add_parser("eval", help="evaluate a task per language, unsteered and steered")
    add_model_args(ev)
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
    add_steer_args(ev)
    ev.set_defaults(func=cmd_eval)

    cl = sub.add_parser("clusters", help="residual-stream language cluster metrics per layer")
    add_model_args(cl)
    cl.add_argument("--corpus", default="default")
    cl.add_argument("--langs", type=langs_arg, help="comma-separated languages (default: all of the corpus)")
    cl.add_argument("--limit", type=number(checks.positive_int, "--limit"), default=48, help="parallel sentences per language")
    cl.add_argument("--pooling", default="mean", choices=list(allowed_values()["clusters.pooling"]))
    cl.add_argument("--neurons", help="a neurons.safetensors: adds the after-CLAS condition")
    cl.add_argument("--out", help="write the metrics as CSV")
    cl.add_argument("--batch-size", type=number(checks.positive_int, "--batch-size"), default=16,
                    help="sentences per forward pass (default 16)")
    cl.add_argument("--drop-incomplete", action="store_true", help="drop (and report) items missing a language")
    add_steer_args(cl)
    cl.set_defaults(func=cmd_clusters)
