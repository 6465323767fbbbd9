"""Data-parallel statistics and sweeps on ``torch.distributed`` (gloo on CPU, nccl on GPU).

Neuron statistics are sums and sweep cells are independent, so both scale out by plain data
parallelism over the processes of a ``torch.distributed`` group (one model replica per
process). Nothing here starts processes: launch them with ``torchrun`` (or any launcher that
initialises the default process group); outside a process group every function falls back to
its single-process counterpart, so the same script runs either way.

Statistics (:func:`distributed_collect_stats`)
    The work is the single-process batch plan of :func:`clas_lens.collect_stats` -- per
    language, sentences sorted by length (longest first) and cut into batches of
    ``batch_size`` -- and whole batches are dealt round-robin to the ranks (batch ``k`` of the
    language-major list goes to rank ``k % world_size``). Every batch is therefore run with
    exactly the same sentences, padding and row order as in one process, so the activations
    are bit-identical; sharding by sentence id instead changes the padded batch shapes and with
    them the float32 activations (relative differences ~1e-7 on CPU, more on GPUs), which
    would defeat an exact comparison with the single-process result. Each rank folds its
    batches into float64 sums (int64 counts), the raw sums of
    :meth:`~clas_lens.stats.NeuronStats.state_tensors` are all-reduced with SUM in two flat
    buffers, and every rank rebuilds the same :class:`~clas_lens.stats.NeuronStats` with
    :meth:`~clas_lens.stats.NeuronStats.from_state`. The only difference from one process is
    the order of float64 additions (relative differences ~1e-16). Per-sentence stores
    (``per_sentence=True``) are gathered with ``all_gather_object`` and put back in corpus id
    order. Metadata (corpus hash, ``n_truncated``, versions) equal the single-process ones.

Sweeps (:func:`distributed_run_sweep`)
    The cells of a :class:`~clas_lens.sweep.SweepGrid` that the run directory does not hold
    yet are dealt round-robin to the ranks; each rank computes its cells, rank 0 gathers the
    results and appends them to ``run_dir/sweep/cells.jsonl`` in grid order (only rank 0
    writes). Finished cells are recognised by their key whatever rank -- or world size --
    computed them, so a run resumes after a crash on any number of processes.

Launching
    ``torchrun --nproc-per-node 4 -m clas_lens stats --model default --corpus default --out
    stats.safetensors`` (see ``clas-lens stats --help``); in your own script call
    :func:`init_distributed` once (it reads torchrun's environment, picks nccl for CUDA
    devices and gloo otherwise, and pins each process to ``cuda:LOCAL_RANK``), then the
    functions below, then :func:`finish_distributed`::

        ctx = init_distributed("cuda")
        model = clas_lens.load_model("default", device=ctx.device)
        stats = distributed_collect_stats(model, corpus, site="act")
        if ctx.is_main:
            stats.save("stats.safetensors")
        finish_distributed()

    Set ``torch.set_num_threads`` per process on CPU (``torchrun`` sets
    ``OMP_NUM_THREADS=1`` by default): several processes each using every core slow each
    other down.

One large model on several GPUs
    Data parallelism needs a whole model per process. A model too large for one GPU is split
    over several GPUs of one process instead (pipeline style, layers placed on successive
    devices) by :func:`clas_lens.load_model`, which passes the placement to the
    TransformerBridge / Hugging Face loader::

        model = clas_lens.load_model("meta-llama/Llama-3.1-70B", n_devices=4,
                                     dtype=torch.bfloat16)       # layers over cuda:0..3
        model = clas_lens.load_model(folder, device_map="auto")  # accelerate's placement
        model = clas_lens.load_model(folder, device_map={"": 1})  # all on cuda:1

    Everything else (statistics, steering hooks, generation) works unchanged: hooks receive
    activations on whatever device their layer lives on, and statistics are accumulated on the
    device of the first parameter (float64; MPS falls back to the CPU). The two can be
    combined: with 8 GPUs and ``n_devices=2``, run 4 processes and give process ``r`` the
    devices ``2r`` and ``2r+1`` (``device_map`` with explicit indices); pass
    ``comm_device="cpu"`` (gloo) or the process's first device (nccl) to the functions here.
    Untested here (no GPU on the development machines); ``benchmarks/gpu_check.sh`` exercises
    the single-GPU path.

>>> ctx = init_distributed()          # no torchrun environment: one process, nothing started
>>> ctx.world_size, ctx.rank, ctx.is_main, ctx.initialised_here
(1, 0, True, False)
>>> deal(list("abcde"), rank=1, world_size=2)
['b', 'd']
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from datetime import timedelta
from typing import Any, Mapping, Sequence, TypeVar

import torch

from clas_lens.errors import ClasLensError, DataValidationError, MismatchError

__all__ = [
    "DistContext",
    "DistributedError",
    "init_distributed",
    "finish_distributed",
    "current_context",
    "backend_for",
    "deal",
    "stats_plan",
    "distributed_collect_stats",
    "distributed_run_sweep",
]

T = TypeVar("T")


class DistributedError(ClasLensError, RuntimeError):
    """A collective step failed on some rank (the message names the rank and its error)."""


# ---------------------------------------------------------------------------------------------
# process group
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device and backend.

    ``initialised_here`` is True when :func:`init_distributed` created the process group (so
    :func:`finish_distributed` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that writes files)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group of more than one process is active."""
        return self.world_size > 1


def _dist():
    import torch.distributed as dist

    return dist


def _active() -> bool:
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def backend_for(device: str | torch.device | None) -> str:
    """``"nccl"`` for CUDA devices (when NCCL is available), ``"gloo"`` for everything else.

    >>> backend_for("cpu"), backend_for(None)
    ('gloo', 'gloo')
    """
    if device is not None and torch.device(device).type == "cuda":
        dist = _dist()
        if dist.is_available() and dist.is_nccl_available():
            return "nccl"
    return "gloo"


def _rank_device(device: str | torch.device | None, local_rank: int) -> str:
    """Pin a bare ``"cuda"`` to ``cuda:LOCAL_RANK``; keep explicit indices and other devices."""
    if device is None:
        return "cpu"
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        return f"cuda:{local_rank}"
    return str(d)


def current_context(device: str | torch.device | None = None) -> DistContext:
    """The :class:`DistContext` of an already initialised group (or of one process)."""
    if not _active():
        return DistContext(device=_rank_device(device, 0))
    dist = _dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local,
        backend=str(dist.get_backend()),
        device=_rank_device(device, local),
    )


def init_distributed(
    device: str | torch.device | None = "cpu",
    *,
    backend: str | None = None,
    timeout_s: float = 1800.0,
) -> DistContext:
    """Initialise the default process group from the launcher's environment (``env://``).

    Under ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` set) this
    creates the group -- ``nccl`` for a CUDA ``device``, ``gloo`` otherwise, unless
    ``backend`` is given -- and, for CUDA, pins the process to ``cuda:LOCAL_RANK`` (a bare
    ``"cuda"`` becomes that device in the returned ``ctx.device``). Without that environment
    it starts nothing and returns a one-process context. An already initialised group is
    reused as is.

    >>> init_distributed("cpu").world_size
    1
    """
    if _active():
        return current_context(device)
    env = os.environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return DistContext(device=_rank_device(device, 0))
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE/RANK are set but {missing} are not: launch with torchrun (or set "
            "MASTER_ADDR and MASTER_PORT for env:// initialisation)."
        )
    local = int(env.get("LOCAL_RANK", "0"))
    dev = _rank_device(device, local)
    backend = backend or backend_for(dev)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise DistributedError("backend 'nccl' needs CUDA GPUs; use device='cpu' (gloo) here.")
        torch.cuda.set_device(torch.device(dev))
    dist = _dist()
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=timeout_s)}
    if backend == "nccl":
        kwargs["device_id"] = torch.device(dev)
    dist.init_process_group(**kwargs)
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local,
        backend=backend,
        device=dev,
        initialised_here=True,
    )


def finish_distributed(ctx: DistContext | None = None, *, wait: bool = True) -> None:
    """Wait for every rank (``wait=True``) and destroy the process group -- when ``ctx`` created
    it, or always when ``ctx`` is None and a group is active. Pass ``wait=False`` on an error
    path, where other ranks may never reach the barrier."""
    if not _active():
        return
    if ctx is not None and not ctx.initialised_here:
        return
    dist = _dist()
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def _group_size_rank(group) -> tuple[int, int]:
    dist = _dist()
    return dist.get_world_size(group), dist.get_rank(group)


def _comm_device(group, comm_device) -> torch.device:
    """Device of the tensors handed to collectives: CUDA for nccl, the CPU for gloo."""
    if comm_device is not None:
        return torch.device(comm_device)
    dist = _dist()
    if str(dist.get_backend(group)) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_gather(obj: Any, group) -> list[Any]:
    dist = _dist()
    world, _ = _group_size_rank(group)
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj, group=group)
    return out


def _broadcast(obj: Any, group, src_rank: int = 0) -> Any:
    """``obj`` of group rank ``src_rank`` on every rank."""
    dist = _dist()
    box = [obj]
    dist.broadcast_object_list(box, src=_global_rank(group, src_rank), group=group)
    return box[0]


def _raise_if_any_failed(error: BaseException | None, group, what: str) -> None:
    """Collective: every rank raises when any rank failed (so none hangs in a later collective)."""
    reports = _all_gather(None if error is None else f"{type(error).__name__}: {error}", group)
    failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
    if not failed:
        return
    if error is not None:
        raise error
    r, msg = failed[0]
    raise DistributedError(f"{what} failed on rank {r} ({msg}); every rank stops.")


# ---------------------------------------------------------------------------------------------
# work splitting
# ---------------------------------------------------------------------------------------------


def deal(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Round-robin share of ``items`` for ``rank``: items ``rank, rank + world_size, ...``.

    Deterministic, and the shares of all ranks partition ``items``.

    >>> [deal(range(7), r, 3) for r in range(3)]
    [[0, 3, 6], [1, 4], [2, 5]]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}.")
    return list(items[rank::world_size]) if isinstance(items, (list, tuple)) else list(items)[rank::world_size]


def _batch_plan(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """The batches (sentence indices) that one-process ``collect_stats`` runs, in order.

    Mirrors ``clas_lens.stats._batches``: longest text first, ties by index, then consecutive
    chunks. Keeping the same batches keeps the activations bit-identical.
    """
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def stats_plan(
    texts: Mapping[str, Sequence[str]], batch_size: int, world_size: int
) -> list[dict[str, list[int]]]:
    """Per rank, ``{lang: sentence indices}`` to collect: whole batches, dealt round-robin.

    The batches are those of one process (see the module docstring); batch ``k`` of the
    language-major list goes to rank ``k % world_size``. Within a rank, a language's indices
    keep the one-process order, so ``collect_stats`` on them re-forms the same batches.

    >>> plan = stats_plan({"en": ["aaaa", "b", "cc", "ddd"], "de": ["x", "yy", "z"]}, 2, 2)
    >>> plan[0], plan[1]
    ({'en': [0, 3], 'de': [1, 0]}, {'en': [2, 1], 'de': [2]})
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    plan: list[dict[str, list[int]]] = [{} for _ in range(world_size)]
    k = 0
    for lang, t in texts.items():
        for batch in _batch_plan(list(t), batch_size):
            plan[k % world_size].setdefault(lang, []).extend(batch)
            k += 1
    return plan


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


class _ShardCorpus:
    """One language, some sentences (keeping their corpus ids): what a rank collects."""

    def __init__(self, lang: str, ids: list[str], texts: list[str]):
        self.langs = [lang]
        self.ids = ids
        self._texts = texts

    def texts(self, lang: str) -> list[str]:
        return list(self._texts)

    def hash(self) -> str:  # a shard's hash never reaches the result: the full corpus's does
        from clas_lens.io import sha256_json

        return sha256_json({"ids": self.ids, "texts": self._texts})


def _collect_defaults() -> dict[str, Any]:
    from clas_lens.stats import collect_stats

    return {
        name: p.default
        for name, p in inspect.signature(collect_stats).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


from clas_lens.stats.accumulator import INT_KINDS as _INT_KINDS, KINDS as _KINDS  # noqa: E402


def distributed_collect_stats(
    model,
    corpus,
    *,
    group=None,
    comm_device: str | torch.device | None = None,
    **kw: Any,
):
    """:func:`clas_lens.collect_stats` over the processes of a ``torch.distributed`` group.

    Takes the same keyword arguments as ``collect_stats`` (``site``, ``layers``,
    ``batch_size``, ``threshold``, ``per_sentence``, ``langs`` ...). Every rank must call it
    with the same corpus and arguments and an identical model; every rank returns the same
    :class:`~clas_lens.stats.NeuronStats`, equal to the one-process result up to the order
    of float64 additions (counts exactly). Without an initialised process group it simply
    calls ``collect_stats``.

    Args:
        group: process group (default: the default group).
        comm_device: device of the all-reduced buffers (default: the current CUDA device for
            nccl, the CPU for gloo).

    Raises:
        MismatchError: ranks hold different models, corpora or arguments.
        DistributedError: collecting failed on another rank (the failing rank raises its own
            error); every rank raises, none hangs.

    >>> from clas_lens.testing import tiny_model
    >>> s = distributed_collect_stats(tiny_model("llama"), {"en": ["a cat", "a dog"]})  # one process
    >>> s.langs, s.n_tokens("en") > 0
    (['en'], True)
    """
    from clas_lens.io import sha256_json
    from clas_lens.models import model_info
    from clas_lens.sites import neuron_sites
    from clas_lens.data.corpus import as_corpus as _as_corpus
    from clas_lens.stats import (
        NeuronStats, collect_stats, corpus_langs_texts, accum_device as _accum_device, corpus_hash as _corpus_hash,
    )

    def check_kwargs() -> dict[str, Any]:
        defaults = _collect_defaults()
        unknown = sorted(set(kw) - set(defaults))
        if unknown:
            raise TypeError(
                f"distributed_collect_stats() got unexpected keyword argument(s) {unknown}; it takes "
                f"collect_stats's: {sorted(defaults)} (plus group, comm_device)."
            )
        return {**defaults, **kw}

    if not _active() or _group_size_rank(group)[0] == 1:
        check_kwargs()
        return collect_stats(model, corpus, **kw)

    dist = _dist()
    world, rank = _group_size_rank(group)
    # Anything that can fail before the collectives is reported to every rank first.
    error: BaseException | None = None
    fingerprint = None
    try:
        opts = check_kwargs()
        corpus = _as_corpus(corpus)
        langs, ids, texts = corpus_langs_texts(corpus, opts["langs"])
        full_hash = _corpus_hash(corpus)
        fingerprint = {
            "weights_sha256": model_info(model).weights_sha256,
            "corpus": sha256_json({"ids": ids, "texts": texts}),
            "options": sha256_json({k: repr(v) for k, v in sorted(opts.items()) if k != "progress"}),
        }
    except Exception as e:
        error = e
    _raise_if_any_failed(error, group, "preparing the statistics")
    # Every rank must hold the same model, corpus and arguments.
    prints = _all_gather(fingerprint, group)
    for key in fingerprint:
        values = [p[key] for p in prints]
        if len(set(values)) > 1:
            bad = [r for r, v in enumerate(values) if v != values[0]]
            raise MismatchError(
                f"Ranks disagree on the {key.replace('_', ' ')} (rank 0 vs ranks {bad}): every rank "
                "must call distributed_collect_stats with the same model, corpus and arguments."
            )

    sites = neuron_sites(model)
    layers = sites.check_layers(opts["layers"])
    n_m, d = len(layers), sites.d_mlp
    mine = stats_plan(texts, int(opts["batch_size"]), world)[rank]
    call = {k: v for k, v in opts.items() if k != "langs"}
    if opts["progress"] is None and rank != 0:
        call["progress"] = False

    local: dict[str, Any] = {}
    error = None
    n_trunc = 0
    try:
        for lang in langs:
            idx = mine.get(lang)
            if not idx:
                continue
            shard = _ShardCorpus(lang, [ids[i] for i in idx], [texts[lang][i] for i in idx])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Truncated")  # one warning, below
                s = collect_stats(model, shard, **call)
            n_trunc += s.n_truncated
            local[lang] = s
    except Exception as e:  # reported to every rank first, so that none waits forever
        error = e
    _raise_if_any_failed(error, group, "collect_stats")

    # Raw sums of every language in a fixed order: zeros for languages this rank did not see.
    dev = _comm_device(group, comm_device)
    parts: dict[str, torch.Tensor] = {}
    for lang in langs:
        st = local[lang].state_tensors() if lang in local else {}
        for kind in _KINDS:
            shape = () if kind == "count" else (n_m, d)
            dtype = torch.int64 if kind in _INT_KINDS else torch.float64
            t = st.get(f"{kind}/{lang}")
            parts[f"{kind}/{lang}"] = torch.zeros(shape, dtype=dtype) if t is None else t
    int_keys = [k for k in parts if k.split("/", 1)[0] in _INT_KINDS]
    flt_keys = [k for k in parts if k not in int_keys]
    ints = torch.cat([parts[k].reshape(-1).to(dev, torch.int64) for k in int_keys] + [torch.tensor([n_trunc], device=dev)])
    flts = torch.cat([parts[k].reshape(-1).to(dev, torch.float64) for k in flt_keys])
    dist.all_reduce(ints, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(flts, op=dist.ReduceOp.SUM, group=group)
    state: dict[str, torch.Tensor] = {}
    for keys, buf in ((int_keys, ints), (flt_keys, flts)):
        offset = 0
        for k in keys:
            n = parts[k].numel()
            state[k] = buf[offset : offset + n].reshape(parts[k].shape)
            offset += n
    total_trunc = int(ints[-1])

    # Metadata from rank 0 (it always holds the first batch), made whole-corpus.
    first = next(iter(local.values()), None)
    meta = dict(_broadcast(first.meta() if first is not None else None, group))
    meta.update(
        langs=list(langs),
        corpus_hashes=[full_hash] if full_hash else [],
        corpus_hash=full_hash,
        n_truncated=total_trunc,
        n_tokens={lang: int(state[f"count/{lang}"]) for lang in langs},
    )
    sentences = None
    if opts["per_sentence"]:
        payload = {
            lang: (s.sentence_ids(lang), s.sentence_means(lang)[:, layers].contiguous()) for lang, s in local.items()
        }
        gathered = _all_gather(payload, group)
        sentences = {}
        pos = {sid: i for i, sid in enumerate(ids)}
        for lang in langs:
            out = torch.empty((len(ids), n_m, d), dtype=torch.float16)
            seen = 0
            for part in gathered:
                if lang in part:
                    sids, vals = part[lang]
                    out[torch.tensor([pos[s] for s in sids], dtype=torch.long)] = vals
                    seen += len(sids)
            if seen != len(ids):  # pragma: no cover - guards the plan
                raise DistributedError(f"Gathered {seen} per-sentence rows for {lang!r}, expected {len(ids)}.")
            sentences[lang] = out
        meta["per_sentence"] = True
        meta["sentence_ids"] = {lang: list(ids) for lang in langs}
    if total_trunc and rank == 0:
        from clas_lens.batching import context_length

        limit = min(opts["max_length"] or context_length(model), context_length(model))
        warnings.warn(
            f"Truncated {total_trunc} of {len(ids) * len(langs)} text(s) to {limit} tokens; statistics "
            "use the truncated text (pass truncation='error' to refuse instead, or raise max_length).",
            stacklevel=2,
        )
    target = _accum_device(model)  # where one process would have accumulated
    state = {k: v.to(target) for k, v in state.items()}
    return NeuronStats.from_state(state, meta, sentences=sentences)


# ---------------------------------------------------------------------------------------------
# sweeps
# ---------------------------------------------------------------------------------------------


def distributed_run_sweep(
    model,
    run_dir,
    grid,
    *,
    neurons: Any,
    stats: Any = None,
    restart: bool = False,
    cells: Sequence[Any] | None = None,
    tasks: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    group=None,
):
    """:func:`clas_lens.sweep.run_sweep` with its cells spread over a process group.

    Every rank calls it with the same model, grid, neuron set (and statistics). Rank 0 checks
    ``run_dir`` as ``run_sweep`` does (identity of grid, model and neuron set; ``restart``)
    and tells every rank which cells are finished; the unfinished ones (of ``cells``, default
    the whole grid) are dealt round-robin to the ranks. They are computed in rounds of one
    cell per rank, each by ``run_sweep`` itself in a private scratch directory, so a cell
    gives exactly the record it gives in one process. After each round rank 0 gathers the
    records and appends them to ``run_dir/sweep/cells.jsonl`` in grid order -- only rank 0
    writes into ``run_dir`` (which therefore only needs to exist on rank 0's machine), and a
    crash loses at most the round in flight. Finished cells are skipped whatever rank or
    world size computed them: a sweep resumes on any number of processes, or in one.

    Returns :func:`~clas_lens.sweep.load_sweep`'s table on every rank. Without an
    initialised process group this is ``run_sweep(model, run_dir, grid, ...)``.

    Raises:
        MismatchError: ranks hold different models, grids or neuron sets, or ``run_dir`` holds
            another sweep (as ``run_sweep``).
        DistributedError: a cell failed on another rank (the failing rank raises its own
            error, after the round's other records were saved); every rank raises.

    >>> import tempfile, torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import MaskSet
    >>> from clas_lens.sweep import SweepGrid
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> grid = SweepGrid(langs=["de"], tasks=["cloze"], limit=2, n_boot=50)
    >>> df = distributed_run_sweep(tiny_model("llama"), tempfile.mkdtemp(), grid, neurons=ns, progress=False)
    >>> df.attrs["n_cells"] == df.attrs["n_total"] == 4
    True
    """
    import shutil
    import tempfile
    from pathlib import Path

    from clas_lens.io import append_jsonl, read_jsonl
    from clas_lens.sweep import SweepCell, _finished, _identity, load_sweep, run_sweep

    common = dict(neurons=neurons, stats=stats, tasks=tasks)
    if not _active() or _group_size_rank(group)[0] == 1:
        return run_sweep(model, run_dir, grid, restart=restart, cells=cells, progress=progress, **common)

    world, rank = _group_size_rank(group)
    from clas_lens.io import sha256_json

    # Same model, grid and neuron set on every rank.
    error: BaseException | None = None
    try:
        ident = sha256_json(_identity(model, grid, neurons, stats))
    except Exception as e:
        error, ident = e, None
    _raise_if_any_failed(error, group, "checking the sweep's identity")
    idents = _all_gather(ident, group)
    if len(set(idents)) > 1:
        bad = [r for r, v in enumerate(idents) if v != idents[0]]
        raise MismatchError(
            f"Ranks {bad} hold a different model, grid, neuron set or statistics than rank 0: every "
            "rank must call distributed_run_sweep with the same ones."
        )

    # Rank 0 checks/initialises run_dir exactly as run_sweep does (it runs no cell here) and
    # reads which cells are finished.
    sweep_dir = Path(run_dir) / "sweep"
    done: list[str] | None = None
    error = None
    if rank == 0:
        try:
            run_sweep(model, run_dir, grid, restart=restart, cells=[], progress=False, **common)
            done = [rec["key"] for rec in _finished(sweep_dir)]
        except Exception as e:
            error = e
    _raise_if_any_failed(error, group, "opening the run directory on rank 0")
    done_keys = set(_broadcast(done, group))

    every = grid.cells()
    index = {c.key: i for i, c in enumerate(every)}
    if cells is None:
        selected = every
    else:
        keys = [c.key if isinstance(c, SweepCell) else str(c) for c in cells]
        unknown = [k for k in keys if k not in index]
        if unknown:
            raise DataValidationError(f"Cell {unknown[0]!r} is not in this grid.")
        selected = [every[index[k]] for k in keys]
    todo = [c for c in selected if c.key not in done_keys]
    mine = deal(todo, rank, world)
    n_rounds = -(-len(todo) // world)

    # Tasks are loaded once per rank and handed to every per-cell run_sweep.
    task_objs: dict[str, Any] = dict(tasks or {})
    error = None
    try:
        for name in grid.tasks:
            if name not in task_objs and any(c.task == name for c in mine):
                from clas_lens.data.tasks import load_task

                options = dict(getattr(grid, "task_options", {}).get(name, {}))
                task_objs[name] = load_task(name, langs=grid.all_langs, **options)  # as run_sweep does
    except Exception as e:
        error = e
    _raise_if_any_failed(error, group, "loading the sweep's tasks")

    from tqdm.auto import tqdm

    dist = _dist()
    scratch = Path(tempfile.mkdtemp(prefix=f"clas_lens_sweep_rank{rank}_"))
    show = rank == 0 and (progress if progress is not None else len(selected) >= 4)
    try:
        with tqdm(total=len(selected), initial=len(selected) - len(todo), desc="sweep cells", unit="cell", disable=not show) as bar:
            for r in range(n_rounds):
                records: list[dict] = []
                error = None
                if r < len(mine):
                    try:
                        run_sweep(model, scratch, grid, neurons=neurons, stats=stats, tasks=task_objs,
                                  cells=[mine[r]], restart=True, progress=False)
                        records = read_jsonl(scratch / "sweep" / "cells.jsonl")
                    except Exception as e:
                        error = e
                report = (records, None if error is None else f"{type(error).__name__}: {error}")
                gathered: list[Any] | None = [None] * world if rank == 0 else None
                dist.gather_object(report, gathered, dst=_global_rank(group, 0), group=group)
                if rank == 0:
                    got = sorted((rec for recs, _ in gathered for rec in recs), key=lambda rec: index[rec["key"]])
                    for rec in got:
                        append_jsonl(sweep_dir / "cells.jsonl", rec)
                    bar.update(len(got))
                _raise_if_any_failed(error, group, f"sweep cell (round {r + 1} of {n_rounds})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = load_sweep(run_dir) if rank == 0 else None
    return _broadcast(table, group)


def _global_rank(group, group_rank: int) -> int:
    return _dist().get_global_rank(group, group_rank) if group is not None else group_rank
