"""clas_lens.config: sections, keys and values checked against what their consumers accept; the
run identity stays stable for configs written before keys were added."""
from __future__ import annotations

import pytest

from clas_lens.config import LATER_KEYS, SPEED_KEYS, RunConfig, allowed_values, default_config_path
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json


def test_config_errors_name_key_and_allowed_values():
    with pytest.raises(DataValidationError, match=r"'stats.site'.*allowed values: \['post', 'act'\]"):
        RunConfig.from_dict({"stats": {"site": "mlp"}})
    with pytest.raises(DataValidationError, match=r"unknown config key 'eval.taks'.*allowed keys"):
        RunConfig.from_dict({"eval": {"taks": ["nli"]}})
    with pytest.raises(DataValidationError, match="unknown config section 'modle'"):
        RunConfig.from_dict({"modle": {}})
    with pytest.raises(DataValidationError, match=r"'corpus.langs' has 'xx'"):
        RunConfig.from_dict({"corpus": {"langs": ["en", "xx"]}})
    with pytest.raises(DataValidationError, match="must be a number"):
        RunConfig.from_dict({"stats": {"batch_size": "big"}})


def test_demo_config_parses():
    cfg = RunConfig.from_toml(default_config_path())
    assert cfg.model.name == "default" and len(cfg.corpus.langs) == 12
    assert "METHODS.md" not in default_config_path().read_text()


def test_steering_methods_are_the_sweep_registry():
    cfg = RunConfig.from_dict({"steering": {"methods": ["deactivate", "lape_deactivate", "diffmean"]}})
    assert cfg.steering.methods == ["deactivate", "lape_deactivate", "diffmean"]
    with pytest.raises(DataValidationError, match=r"'steering.methods' has 'magic'.*'deactivate'"):
        RunConfig.from_dict({"steering": {"methods": ["clas", "magic"]}})


def test_layers_and_values_use_the_one_parsers():
    for spec in ("last:2", "first:3", "all", "0,3,-1", "2-4", [0, 1]):
        assert RunConfig.from_dict({"steering": {"layers": spec}, "clusters": {"layers": spec}}).steering.layers == spec
    for bad in ("last:0", "middle", "4-2"):
        with pytest.raises(DataValidationError, match="steering.layers"):
            RunConfig.from_dict({"steering": {"layers": bad}})
        with pytest.raises(DataValidationError, match="clusters.layers"):
            RunConfig.from_dict({"clusters": {"layers": bad}})
    cfg = RunConfig.from_dict({"steering": {"mu_values": ["mean", "median", "p75", "zero", 1.5]}})
    assert cfg.steering.mu_values == ["mean", "median", "p75", "zero", 1.5]
    with pytest.raises(DataValidationError, match=r"'steering.mu_values' has 'average'"):
        RunConfig.from_dict({"steering": {"mu_values": ["mean", "average"]}})


def test_other_fixed_sets():
    for key, bad in (("steering.positions", "first"), ("steering.shared", "most"), ("clusters.pooling", "max"),
                     ("clusters.projection", "tsne"), ("clusters.divergence_metric", "davies_bouldin"),
                     ("neurons.method", "magic")):
        section, name = key.split(".")
        with pytest.raises(DataValidationError, match=key.replace(".", r"\.") + ".*allowed values"):
            RunConfig.from_dict({section: {name: bad}})
    with pytest.raises(DataValidationError, match=r"'figures.formats' has 'gif'"):
        RunConfig.from_dict({"figures": {"formats": ["html", "gif"]}})
    with pytest.raises(DataValidationError, match="eval.gain_task"):
        RunConfig.from_dict({"eval": {"tasks": ["nli"], "gain_task": "cloze"}})
    with pytest.raises(DataValidationError, match="eval.confidence"):
        RunConfig.from_dict({"eval": {"confidence": 95}})
    assert set(allowed_values()["clusters.divergence_metric"]) >= {"silhouette_cosine", "parallel_cosine"}


def test_identity_is_stable_for_configs_written_before_new_keys():
    cfg = RunConfig.from_dict({"run": {"name": "x"}, "steering": {"betas": [0.1]}})
    before = {k: dict(v) for k, v in cfg.to_dict().items() if k != "figures"}
    for dotted in LATER_KEYS + SPEED_KEYS:  # how an older release computed config_sha256
        section, key = dotted.split(".")
        del before[section][key]
    assert cfg.identity() == sha256_json(before)
    # a speed switch never changes what a run directory holds
    assert RunConfig.from_dict({"eval": {"prefix_reuse": False}}).identity() == RunConfig().identity()
    assert RunConfig.from_dict({"steering": {"strengths": [2.0]}}).identity() != RunConfig().identity()
    assert RunConfig.from_dict({"figures": {"formats": ["html"]}}).identity() == RunConfig().identity()


def test_from_toml_errors(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        RunConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname = 1")
    with pytest.raises(DataValidationError, match="not valid TOML"):
        RunConfig.from_toml(bad)
