"""The process group: this process's place in it, its set-up and tear-down, and the collective
helpers the sharded statistics and sweeps share (every rank raises when one fails).

Outside an initialised ``torch.distributed`` group everything here describes one process.

>>> ctx = init_distributed()          # no torchrun environment: one process, nothing started
>>> ctx.world_size, ctx.rank, ctx.is_main, ctx.initialised_here
(1, 0, True, False)
>>> deal(list("abcde"), rank=1, world_size=2)
['b', 'd']
"""
from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist

from clas_lens.errors import ClasLensError

__all__ = [
    "DistContext",
    "DistributedError",
    "init_distributed",
    "finish_distributed",
    "current_context",
    "backend_for",
    "deal",
    "is_active",
    "group_size_rank",
    "global_rank",
    "comm_device",
    "all_gather_objects",
    "broadcast_object",
    "raise_if_any_failed",
]

T = TypeVar("T")


class DistributedError(ClasLensError, RuntimeError):
    """A collective step failed on some rank (the message names the rank and its error)."""


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


def is_active() -> bool:
    """True when a default process group is initialised.

    >>> is_active()
    False
    """
    return dist.is_available() and dist.is_initialized()


def backend_for(device: str | torch.device | None) -> str:
    """``"nccl"`` for CUDA devices (when NCCL is available), ``"gloo"`` for everything else.

    >>> backend_for("cpu"), backend_for(None)
    ('gloo', 'gloo')
    """
    if device is not None and torch.device(device).type == "cuda":
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
    """The :class:`DistContext` of an already initialised group (or of one process).

    >>> current_context("cuda").device
    'cuda:0'
    """
    if not is_active():
        return DistContext(device=_rank_device(device, 0))
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
    if is_active():
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
    path, where other ranks may never reach the barrier.

    >>> finish_distributed()  # no group: nothing to do
    """
    if not is_active():
        return
    if ctx is not None and not ctx.initialised_here:
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def group_size_rank(group=None) -> tuple[int, int]:
    """``(world size, rank)`` of ``group`` (default: the default group); ``(1, 0)`` without one.

    >>> group_size_rank()
    (1, 0)
    """
    if not is_active():
        return 1, 0
    return dist.get_world_size(group), dist.get_rank(group)


def global_rank(group, group_rank: int) -> int:
    """The global rank of ``group``'s rank ``group_rank`` (itself for the default group)."""
    return dist.get_global_rank(group, group_rank) if group is not None else group_rank


def comm_device(group=None, device: str | torch.device | None = None) -> torch.device:
    """Device of the tensors handed to collectives: ``device`` if given, else the current CUDA
    device for nccl and the CPU for gloo."""
    if device is not None:
        return torch.device(device)
    if str(dist.get_backend(group)) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_objects(obj: Any, group=None) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    world, _ = group_size_rank(group)
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj, group=group)
    return out


def broadcast_object(obj: Any, group=None, src_rank: int = 0) -> Any:
    """``obj`` of group rank ``src_rank`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=global_rank(group, src_rank), group=group)
    return box[0]


def raise_if_any_failed(error: BaseException | None, group, what: str) -> None:
    """Collective: every rank raises when any rank failed (so none hangs in a later collective).

    The failing rank re-raises its own ``error``; the others raise :class:`DistributedError`
    naming the first failing rank and its message.
    """
    reports = all_gather_objects(None if error is None else f"{type(error).__name__}: {error}", group)
    failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
    if not failed:
        return
    if error is not None:
        raise error
    r, msg = failed[0]
    raise DistributedError(f"{what} failed on rank {r} ({msg}); every rank stops.")


def deal(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Round-robin share of ``items`` for ``rank``: items ``rank, rank + world_size, ...``.

    Deterministic, and the shares of all ranks partition ``items``.

    >>> [deal(range(7), r, 3) for r in range(3)]
    [[0, 3, 6], [1, 4], [2, 5]]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}.")
    return list(items[rank::world_size]) if isinstance(items, (list, tuple)) else list(items)[rank::world_size]
