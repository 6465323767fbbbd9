"""clas_lens.neurons.neuron_set: tidy frames, layer subsets, persistence (with checksum)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.neurons import NeuronSet, identify_neurons

from ._neuron_toys import CLAS_P, idx, make_stats


def test_counts_and_to_frame():
    ns = identify_neurons(make_stats(CLAS_P), "clas")
    c = ns.counts()
    assert list(c.columns) == ["layer", "category", "lang", "count"]
    got = {(r.category, None if pd.isna(r.lang) else r.lang): r.count for r in c.itertuples()}
    assert got[("all_shared", None)] == 1 and got[("specific", "en")] == 2 and got[("specific", "de")] == 0
    assert got[("non_activated", None)] == 1 and got[("active", "en")] == 4
    f = ns.to_frame()
    assert list(f.columns) == ["layer", "neuron", "category", "lang"]
    spec = f[f.category == "specific"].sort_values("neuron")
    assert spec[["neuron", "lang"]].values.tolist() == [[2, "en"], [3, "tr"], [5, "en"]]
    assert f[f.category == "all_shared"].lang.isna().all()


def test_masks_keep_model_shape_for_layer_subsets():
    p = {l: [[0.9, 0.1, 0.6]] for l in ("en", "de")}
    p["de"] = [[0.9, 0.1, 0.2]]
    ns = identify_neurons(make_stats(p, layers=[2], shape=(4, 3)), "clas")
    assert ns.mask("all_shared").shape == (4, 3)
    assert idx(ns.mask("all_shared")) == [[2, 0]] and idx(ns.mask("specific", "en")) == [[2, 2]]
    assert ns.counts().layer.unique().tolist() == [2]


@pytest.mark.parametrize("method,params", [("clas", {}), ("lape", {"top_rate": 0.3, "filter_rate": 0.5}),
                                           ("ap", {"top_k": 2, "bottom_k": 1}), ("mean", {"top_fraction": 0.5})])
def test_save_load_round_trip(tmp_path, method, params):
    sents = {l: torch.randn(3, 1, 6).to(torch.float16) for l in CLAS_P}
    ns = identify_neurons(make_stats(CLAS_P, sentences=sents), method, **params)
    path = ns.save(tmp_path / "n.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["n.safetensors"]
    back = NeuronSet.load(path)
    assert back.meta() == ns.meta()
    assert back.categories == ns.categories
    for cat in ns.categories:
        for lang in [None] + ns.langs:
            assert torch.equal(back.mask(cat, lang), ns.mask(cat, lang))
    for name, entries in ns.scores.items():
        for lang, t in entries.items():
            assert torch.equal(back.scores[name][lang], t)
    assert back.stats_ref["corpus_hash"] == "c0" and back.stats_ref["weights_sha256"] == "f" * 64
    assert back.counts().equals(ns.counts())


def test_load_refuses_a_flipped_byte_in_a_tensor(tmp_path):
    ns = identify_neurons(make_stats(CLAS_P), "clas")
    path = ns.save(tmp_path / "n.safetensors")
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    data[8 + header_len + 3] ^= 0x01  # a byte inside the tensor data, not the header
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="checksum"):
        NeuronSet.load(path)
