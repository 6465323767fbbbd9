"""Compact encodings (clas_lens/steering/serialize.py)."""
from __future__ import annotations

import json
import math

import torch

from clas_lens.steering.serialize import (
    decode_bool,
    decode_values,
    encode_bool,
    encode_values,
    info_dict,
    jsonable,
    layers_to_json,
)


def test_bool_round_trip():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(3, 17, generator=g) < 0.3
    m[1] = False
    d = json.loads(json.dumps(encode_bool(m)))
    assert "1" not in d["layers"] and torch.equal(decode_bool(d), m)


def test_values_round_trip_only_where_selected():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(2, 5, generator=g, dtype=torch.float64)
    v[0, 0] = math.nan
    where = torch.ones(2, 5, dtype=torch.bool)
    where[1, 4] = False
    back = decode_values(json.loads(json.dumps(encode_values(v, where))))
    keep = where & ~torch.isnan(v)
    assert torch.equal(back[keep], v[keep]) and torch.isnan(back[~keep]).all()


def test_small_helpers():
    class Info:
        def to_dict(self):
            return {"model_id": "m"}

    assert info_dict(Info()) == {"model_id": "m"} and info_dict(3) is None
    assert jsonable({"t": torch.tensor([1.5]), "x": (1, "a")}) == {"t": [1.5], "x": [1, "a"]}
    assert layers_to_json(None) is None and layers_to_json([torch.tensor(2).item(), 3]) == [2, 3]
