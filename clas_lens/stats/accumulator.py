"""The streaming accumulator of neuron statistics: one language's exact, mergeable sums.

An :class:`Accumulator` holds, per measured layer (row) and neuron:

* ``count`` -- number of tokens seen (one int64 scalar, the same for every neuron),
* ``active`` -- tokens whose activation is ``> threshold`` (int64, exact),
* ``sum`` and ``sumsq`` -- sum and sum of squares of the activation (float64).

Batches are folded in with :meth:`Accumulator.add` and dropped, so memory does not grow with
the corpus. Every field combines by plain addition: :meth:`Accumulator.merge` of shards equals
one pass over their union (counts exactly, sums up to float64 rounding), and
:meth:`Accumulator.state_dict` is what processes all-reduce with SUM
(``clas_lens.distributed``).

>>> import torch
>>> a = Accumulator.zeros(1, 3)
>>> a.add(0, torch.tensor([[1.0, -1.0, 2.0], [3.0, 0.0, -2.0]]))
>>> a.count_tokens(2)
>>> a.active.tolist(), a.sum.tolist(), int(a.count)
([[2, 0, 1]], [[4.0, -1.0, 0.0]], 2)
"""
from __future__ import annotations

from typing import Mapping

import torch
from jaxtyping import Float, Int64
from torch import Tensor

__all__ = ["Accumulator", "KINDS", "INT_KINDS", "accum_device"]

#: The fields of an accumulator, in state-dict order.
KINDS: tuple[str, ...] = ("count", "active", "sum", "sumsq")
#: The fields held as int64 (the others are float64).
INT_KINDS: tuple[str, ...] = ("count", "active")


def accum_device(model) -> torch.device:
    """Where a model's statistics accumulate: its device, except the CPU for MPS (no float64)."""
    dev = next(model.parameters()).device
    return torch.device("cpu") if dev.type == "mps" else dev


class Accumulator:
    """Running ``count``, ``active``, ``sum``, ``sumsq`` of one language (rows = measured layers).

    Build an empty one with :meth:`zeros`, or from tensors (cast to int64 / float64).
    """

    __slots__ = KINDS

    def __init__(
        self,
        count: Int64[Tensor, ""] | int,
        active: Int64[Tensor, "row neuron"],
        sum: Float[Tensor, "row neuron"],
        sumsq: Float[Tensor, "row neuron"],
    ):
        self.count = torch.as_tensor(count).reshape(()).to(torch.int64)
        self.active = active.to(torch.int64)
        self.sum = sum.to(torch.float64)
        self.sumsq = sumsq.to(torch.float64)

    @classmethod
    def zeros(cls, n_rows: int, d: int, *, device: str | torch.device = "cpu") -> "Accumulator":
        """An empty accumulator of ``n_rows`` layers x ``d`` neurons."""
        return cls(
            torch.zeros((), dtype=torch.int64, device=device),
            torch.zeros((n_rows, d), dtype=torch.int64, device=device),
            torch.zeros((n_rows, d), dtype=torch.float64, device=device),
            torch.zeros((n_rows, d), dtype=torch.float64, device=device),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.sum.shape)

    def add(self, row: int, values: Float[Tensor, "token neuron"], threshold: float = 0.0) -> None:
        """Fold the values of real tokens at layer row ``row`` into the sums (tokens are not
        counted here: call :meth:`count_tokens` once per batch)."""
        r64 = values.to(torch.float64)
        self.sum[row] += r64.sum(0)
        self.sumsq[row] += (r64 * r64).sum(0)
        self.active[row] += (values > threshold).sum(0)

    def count_tokens(self, n: int) -> None:
        """Add ``n`` tokens to ``count``."""
        self.count += int(n)

    def merge(self, other: "Accumulator") -> "Accumulator":
        """A new accumulator holding both: every field adds (on this one's device).

        >>> import torch
        >>> a, b = Accumulator.zeros(1, 2), Accumulator.zeros(1, 2)
        >>> a.add(0, torch.tensor([[1.0, 2.0]])); b.add(0, torch.tensor([[3.0, -1.0]]))
        >>> a.merge(b).sum.tolist()
        [[4.0, 1.0]]
        """
        if not isinstance(other, Accumulator):
            raise TypeError(f"merge() needs an Accumulator, got {type(other).__name__}.")
        if other.shape != self.shape:
            raise ValueError(f"Cannot merge accumulators of shapes {self.shape} and {other.shape}.")
        return Accumulator(*(getattr(self, k) + getattr(other, k).to(getattr(self, k).device) for k in KINDS))

    def state_dict(self) -> dict[str, Tensor]:
        """``{kind: tensor}`` for every kind of :data:`KINDS` (the tensors themselves, not copies)."""
        return {k: getattr(self, k) for k in KINDS}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Replace every field by ``state[kind]`` (as written by :meth:`state_dict`).

        >>> a = Accumulator.zeros(1, 2)
        >>> b = Accumulator.zeros(1, 2); b.load_state_dict(a.state_dict()); int(b.count)
        0
        """
        missing = [k for k in KINDS if k not in state]
        if missing:
            raise KeyError(f"The accumulator state lacks {missing}.")
        Accumulator.__init__(self, *(state[k] for k in KINDS))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> "Accumulator":
        """A new accumulator from :meth:`state_dict` output."""
        out = cls.zeros(0, 0)
        out.load_state_dict(state)
        return out

    def __repr__(self) -> str:
        return f"Accumulator(count={int(self.count)}, shape={self.shape})"
