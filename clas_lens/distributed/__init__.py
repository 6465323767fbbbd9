"""Data-parallel statistics and sweeps on ``torch.distributed`` (gloo on CPU, nccl on GPU).

Neuron statistics are sums and sweep cells are independent, so both scale out by plain data
parallelism over the processes of a ``torch.distributed`` group (one model replica per
process). Nothing here starts processes: launch them with ``torchrun`` (or any launcher that
initialises the default process group); outside a process group every function falls back to
its single-process counterpart, so the same script runs either way.

Modules:

* :mod:`~clas_lens.distributed.group` -- the process group and its environment
  (:func:`init_distributed`, :func:`finish_distributed`, :class:`DistContext`), the
  round-robin :func:`deal` and the collectives that make every rank raise when one fails;
* :mod:`~clas_lens.distributed.sharded_stats` -- :func:`distributed_collect_stats`: the
  one-process batch plan dealt by batch, raw sums all-reduced (bit-identical activations,
  float64 sums equal up to the order of additions);
* :mod:`~clas_lens.distributed.sharded_sweep` -- :func:`distributed_run_sweep`: unfinished
  cells dealt to the ranks, rank 0 writes ``cells.jsonl`` in grid order; resumable on any
  number of processes.

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
"""
from __future__ import annotations

from clas_lens.distributed.group import (
    DistContext,
    DistributedError,
    all_gather_objects,
    backend_for,
    broadcast_object,
    comm_device,
    current_context,
    deal,
    finish_distributed,
    global_rank,
    group_size_rank,
    init_distributed,
    is_active,
    raise_if_any_failed,
)
from clas_lens.distributed.sharded_stats import (
    ShardCorpus,
    batch_plan,
    collect_defaults,
    distributed_collect_stats,
    stats_plan,
)
from clas_lens.distributed.sharded_sweep import distributed_run_sweep

__all__ = [
    "DistContext",
    "DistributedError",
    "init_distributed",
    "finish_distributed",
    "current_context",
    "backend_for",
    "deal",
    "stats_plan",
    "batch_plan",
    "distributed_collect_stats",
    "distributed_run_sweep",
    "is_active",
    "group_size_rank",
    "global_rank",
    "comm_device",
    "all_gather_objects",
    "broadcast_object",
    "raise_if_any_failed",
    "ShardCorpus",
    "collect_defaults",
]
