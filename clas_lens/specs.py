"""The two mini-languages of clas_lens, each owned by one parser: layer specs and value names.

Layer specs (used by the API, the config and every CLI subcommand):

====================  ==================================================================
``None`` / ``"all"``  every layer
``"last:k"``          the last ``min(k, n_layers)`` layers (k >= 1)
``"first:k"``         the first ``min(k, n_layers)`` layers (k >= 1)
``"a-b"``             layers a..b inclusive
``"0,3,-1"``          a comma list; negative indices count from the end
int or list of ints   the same, as Python values
====================  ==================================================================

Value names (quantiles and the constants a neuron may be set to): ``"mean"``, ``"zero"``,
``"median"`` (= 0.5), ``"pNN"`` (= NN/100, e.g. ``"p90"``) or a float in [0, 1] where a level is
expected.

>>> LayerSpec.parse("last:4").resolve(18)
[14, 15, 16, 17]
>>> LayerSpec.parse("0,3").resolve(18), LayerSpec.parse("2-4").resolve(18)
([0, 3], [2, 3, 4])
>>> LayerSpec.parse("last:40").resolve(18) == list(range(18))
True
>>> quantile_level("p75"), quantile_level("median"), quantile_level("mean") is None
(0.75, 0.5, True)
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

from clas_lens.errors import DataValidationError

_LAYER_HELP = "use 'all', 'last:k', 'first:k', 'a-b', a comma list such as '0,3,-1', or a list of ints"


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A parsed layer spec; :meth:`resolve` turns it into sorted layer indices for a model.

    ``kind`` is ``"all"``, ``"last"``, ``"first"`` or ``"list"``; ``k`` the count of
    last/first; ``layers`` the explicit indices (may be negative until resolved).
    """

    kind: str
    k: int = 0
    layers: tuple[int, ...] = ()

    @classmethod
    def parse(cls, spec: Any) -> "LayerSpec":
        """Parse any accepted spelling; raises :class:`DataValidationError` naming the fix."""
        if isinstance(spec, LayerSpec):
            return spec
        if spec is None:
            return cls("all")
        if isinstance(spec, bool):
            raise DataValidationError(f"layers={spec!r} is not a layer spec: {_LAYER_HELP}.")
        if isinstance(spec, int):
            return cls("list", layers=(int(spec),))
        if isinstance(spec, str):
            return cls._parse_str(spec)
        if isinstance(spec, Sequence):
            out = []
            for x in spec:
                if isinstance(x, bool) or not isinstance(x, int):
                    if isinstance(x, float) and x.is_integer():
                        x = int(x)
                    else:
                        raise DataValidationError(f"layers={spec!r}: {x!r} is not an integer layer index; {_LAYER_HELP}.")
                out.append(int(x))
            if not out:
                raise DataValidationError(f"layers={spec!r} is empty: {_LAYER_HELP}.")
            return cls("list", layers=tuple(out))
        raise DataValidationError(f"layers={spec!r} is not a layer spec: {_LAYER_HELP}.")

    @classmethod
    def _parse_str(cls, spec: str) -> "LayerSpec":
        s = spec.strip().lower()
        if s in ("all", ""):
            if s == "":
                raise DataValidationError(f"layers={spec!r} is empty: {_LAYER_HELP}.")
            return cls("all")
        m = re.fullmatch(r"(last|first):\s*(-?\d+)", s)
        if m:
            k = int(m.group(2))
            if k < 1:
                raise DataValidationError(f"layers={spec!r}: k must be at least 1.")
            return cls(m.group(1), k=k)
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", s)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise DataValidationError(f"layers={spec!r}: the range's end is before its start.")
            return cls("list", layers=tuple(range(a, b + 1)))
        parts = [p.strip() for p in s.split(",")]
        if parts and all(re.fullmatch(r"-?\d+", p) for p in parts):
            return cls("list", layers=tuple(int(p) for p in parts))
        raise DataValidationError(f"layers={spec!r} is not a layer spec: {_LAYER_HELP}.")

    def resolve(self, n_layers: int) -> list[int]:
        """Sorted, de-duplicated layer indices for a model with ``n_layers`` layers."""
        if self.kind == "all":
            return list(range(n_layers))
        if self.kind == "last":
            return list(range(max(0, n_layers - self.k), n_layers))
        if self.kind == "first":
            return list(range(min(self.k, n_layers)))
        out = sorted({l + n_layers if l < 0 else l for l in self.layers})
        bad = [l for l in out if not 0 <= l < n_layers]
        if bad:
            raise DataValidationError(
                f"Layers {bad} out of range for a model with {n_layers} layers (valid: 0..{n_layers - 1} "
                f"or -{n_layers}..-1)."
            )
        return out

    def to_json(self) -> Any:
        """The spec as written in a config: a string for all/last/first, else a list of ints."""
        if self.kind == "all":
            return "all"
        if self.kind in ("last", "first"):
            return f"{self.kind}:{self.k}"
        return list(self.layers)


def resolve_layers(spec: Any, n_layers: int) -> list[int]:
    """``LayerSpec.parse(spec).resolve(n_layers)``: the one place a layer spec becomes indices.

    >>> resolve_layers(None, 3), resolve_layers(-1, 3)
    ([0, 1, 2], [2])
    """
    return LayerSpec.parse(spec).resolve(n_layers)


#: Value names that are not quantile levels.
VALUE_CONSTANTS: tuple[str, ...] = ("mean", "zero")
#: The value names offered by default in configs and the sweep (any ``pNN`` is accepted too).
VALUE_NAMES: tuple[str, ...] = ("mean", "median", "p75", "p90", "p95", "zero")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def quantile_level(name: Any) -> float | None:
    """The level of a quantile name (``"median"`` -> 0.5, ``"p90"`` -> 0.9); None for other names."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key == "median":
        return 0.5
    m = _PCT.match(key)
    return float(m.group(1)) / 100.0 if m else None


def parse_level(q: Any) -> float:
    """A quantile level from a name or a float in [0, 1]; raises naming the accepted forms."""
    if isinstance(q, str):
        level = quantile_level(q)
        if level is None:
            raise DataValidationError(f"Unknown quantile {q!r}: use a float in [0, 1], 'median' or 'pNN' (e.g. 'p90').")
        return level
    if isinstance(q, bool) or not isinstance(q, (int, float)):
        raise DataValidationError(f"Quantile {q!r} must be a float in [0, 1], 'median' or 'pNN'.")
    q = float(q)
    if not 0.0 <= q <= 1.0:
        raise DataValidationError(f"Quantile {q} is outside [0, 1].")
    return q


def check_value_name(name: Any) -> str:
    """Validate a value name (``mean``, ``zero``, ``median``, ``pNN``) and return it lower-cased."""
    if isinstance(name, str):
        key = name.strip().lower()
        if key in VALUE_CONSTANTS or quantile_level(key) is not None:
            return key
    raise DataValidationError(
        f"Unknown value name {name!r}: use one of {', '.join(VALUE_NAMES)} or any 'pNN' quantile."
    )
