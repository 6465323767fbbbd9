"""clas_lens.clusters.reps: the Reps container (validation, views) and its persistence
(save/load round trip through clas_lens.io, refusals, the older two-file format still loads)."""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens.clusters import Reps, residual_reps
from clas_lens.errors import DataValidationError

from ._toys import CORPUS, blobs, make_reps


def test_save_load_round_trip(tmp_path, tiny_llama):
    reps = residual_reps(tiny_llama, CORPUS, pooling="last").with_condition("clas")
    path = reps.save(tmp_path / "reps")
    back = Reps.load(path)
    assert torch.equal(back.vectors, reps.vectors)
    for f in ("langs", "ids", "layers", "pooling", "condition", "model_info", "meta"):
        assert getattr(back, f) == getattr(reps, f), f
    reps.save(tmp_path / "reps")  # replacing a saved Reps is fine
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        reps.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").exists()
    with pytest.raises(DataValidationError, match="not a saved Reps"):
        Reps.load(tmp_path / "other")
    assert not list(tmp_path.glob(".*partial*"))


def test_reps_clear_errors():
    """(Moved from the clusters test_clear_errors: these are errors of the container itself.)"""
    reps = make_reps(blobs(k=2, n=5, d=3))
    with pytest.raises(DataValidationError, match="Layer 3"):
        reps.layer(3)
    with pytest.raises(DataValidationError, match="twice"):
        Reps(vectors=torch.zeros(1, 2, 3), langs=["en", "en"], ids=["a", "a"], layers=[0], pooling="mean")
    with pytest.raises(DataValidationError, match="rows"):
        Reps(vectors=torch.zeros(1, 3, 3), langs=["en", "en"], ids=["a", "b"], layers=[0], pooling="mean")


def test_saved_through_io_with_a_checksum(tmp_path):
    """One file written by clas_lens.io.save_tensors; an edited file is refused."""
    from safetensors.torch import load_file, save_file

    from clas_lens.io import load_tensors

    reps = make_reps(blobs(k=2, n=4, d=3), condition="clas")
    path = reps.save(tmp_path / "r")
    assert sorted(p.name for p in path.iterdir()) == ["reps.safetensors"]
    meta, tensors = load_tensors(path / "reps.safetensors", "clas_lens.reps/2", "Reps")
    assert meta["condition"] == "clas" and torch.equal(tensors["vectors"], reps.vectors)
    # tamper with the vectors but keep the header: the checksum catches it
    from safetensors import safe_open

    with safe_open(str(path / "reps.safetensors"), framework="pt") as f:
        header = f.metadata()
    vec = load_file(str(path / "reps.safetensors"))["vectors"]
    save_file({"vectors": vec + 1}, str(path / "reps.safetensors"), metadata=header)
    with pytest.raises(DataValidationError, match="checksum"):
        Reps.load(path)


def test_older_two_file_folders_still_load(tmp_path):
    """Folders written before the io helper (vectors.safetensors + reps.json, format 1) load
    unchanged, and saving over one replaces it with the current format."""
    from safetensors.torch import save_file

    reps = make_reps(blobs(k=2, n=4, d=3), layer=2)
    old = tmp_path / "old"
    old.mkdir()
    save_file({"vectors": reps.vectors.contiguous()}, str(old / "vectors.safetensors"))
    meta = {**reps.to_meta(), "format": "clas_lens.reps/1"}
    (old / "reps.json").write_text(json.dumps(meta), encoding="utf-8")
    back = Reps.load(old)
    assert torch.equal(back.vectors, reps.vectors)
    assert (back.langs, back.ids, back.layers, back.condition) == (reps.langs, reps.ids, [2], "base")
    (old / "reps.json").write_text(json.dumps({**meta, "format": "clas_lens.reps/0"}), encoding="utf-8")
    with pytest.raises(DataValidationError, match="unknown Reps format"):
        Reps.load(old)
    reps.save(old)  # an old-format folder is a saved Reps: replacing it is allowed
    assert sorted(p.name for p in old.iterdir()) == ["reps.safetensors"]
    assert torch.equal(Reps.load(old).vectors, reps.vectors)
