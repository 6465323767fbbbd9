"""Compact JSON encodings of what interventions store: boolean masks, sparse per-neuron values,
layer specs and free-form parameters.

A ``Bool[layer, neuron]`` mask is stored as the indices of its set neurons per layer, and a
value table only at the neurons a mask selects, so a saved intervention stays small.

>>> import torch
>>> m = torch.zeros(2, 4, dtype=torch.bool); m[1, 2] = True
>>> encode_bool(m)
{'shape': [2, 4], 'layers': {'1': [2]}}
>>> torch.equal(decode_bool(encode_bool(m)), m)
True
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from jaxtyping import Bool, Float
from torch import Tensor


def encode_bool(mask: Bool[Tensor, "layer neuron"]) -> dict:
    """``{"shape": [layer, neuron], "layers": {"l": [neuron indices]}}`` (empty layers left out)."""
    mask = torch.as_tensor(mask).bool().cpu()
    layers = {}
    for l in range(mask.shape[0]):
        idx = mask[l].nonzero().flatten().tolist()
        if idx:
            layers[str(l)] = idx
    return {"shape": list(mask.shape), "layers": layers}


def decode_bool(d: Mapping) -> Bool[Tensor, "layer neuron"]:
    """Inverse of :func:`encode_bool`."""
    out = torch.zeros(*d["shape"], dtype=torch.bool)
    for l, idx in d["layers"].items():
        out[int(l), torch.as_tensor(idx, dtype=torch.long)] = True
    return out


def encode_values(values: Tensor, where: Bool[Tensor, "layer neuron"]) -> dict:
    """Values at the neurons ``where`` selects (NaN values are left out), in float64.

    >>> import torch
    >>> v = torch.tensor([[1.0, 2.0], [float("nan"), 4.0]])
    >>> encode_values(v, torch.ones(2, 2, dtype=torch.bool))["layers"]["1"]
    {'index': [1], 'value': [4.0]}
    """
    values = torch.as_tensor(values).detach().cpu().to(torch.float64)
    where = where.bool().cpu() & ~torch.isnan(values)
    layers = {}
    for l in range(values.shape[0]):
        idx = where[l].nonzero().flatten()
        if len(idx):
            layers[str(l)] = {"index": idx.tolist(), "value": values[l, idx].tolist()}
    return {"shape": list(values.shape), "layers": layers}


def decode_values(d: Mapping) -> Float[Tensor, "layer neuron"]:
    """Inverse of :func:`encode_values`: float64, NaN at the neurons that were not stored.

    >>> import torch
    >>> v = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    >>> decode_values(encode_values(v, torch.eye(2, dtype=torch.bool))).tolist()
    [[1.0, nan], [nan, 4.0]]
    """
    out = torch.full(tuple(d["shape"]), math.nan, dtype=torch.float64)
    for l, e in d["layers"].items():
        out[int(l), torch.as_tensor(e["index"], dtype=torch.long)] = torch.tensor(e["value"], dtype=torch.float64)
    return out


def jsonable(x: Any) -> Any:
    """``x`` with tensors turned into lists and anything unknown into its ``str``.

    >>> import torch
    >>> jsonable({"k": torch.tensor([1, 2]), 3: (None, object)})
    {'k': [1, 2], '3': [None, "<class 'object'>"]}
    """
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Tensor):
        return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def info_dict(info: Any) -> dict | None:
    """A model-info record as a plain dict (from a dict or a ModelInfo); None if there is none.

    >>> info_dict({"model_id": "m"}), info_dict(None)
    ({'model_id': 'm'}, None)
    """
    if info is None:
        return None
    if isinstance(info, Mapping):
        return dict(info)
    if hasattr(info, "to_dict"):
        return dict(info.to_dict())
    return None


def layers_to_json(layers: Any) -> Any:
    """A layer spec as stored: None and strings as they are, ints as a list of ints.

    >>> layers_to_json("last:4"), layers_to_json(3), layers_to_json((0, 1))
    ('last:4', [3], [0, 1])
    """
    if layers is None or isinstance(layers, str):
        return layers
    if isinstance(layers, int):
        return [int(layers)]
    return [int(l) for l in layers]
