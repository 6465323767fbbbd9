"""The pipeline on a tiny model: run directory contents, resume, refusal, figures without a model,
and config errors that name the key and the allowed values."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from clas_lens.config import RunConfig, default_config_path
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.pipeline import make_figures, run_pipeline, summary_table
from clas_lens.testing import tiny_model_folder


def _cfg(tmp_path, model_dir, **over):
    data = {
        "run": {"name": "tiny", "out_dir": str(tmp_path / "runs")},
        "model": {"name": str(model_dir)},
        "corpus": {"langs": ["en", "de", "ru", "zh"], "stats_limit": 6, "cluster_limit": 6},
        "stats": {"site": "act"},
        "neurons": {"method": "clas", "params": {"criterion": "quantile"}},
        "steering": {"layers": "last:1", "betas": [0.0, 0.5], "methods": ["clas", "int_mu"]},
        "eval": {"tasks": ["cloze"], "limits": {"cloze": 3}, "n_boot": 100},
        "figures": {"formats": ["html"]},
    }
    for k, v in over.items():
        data[k].update(v)
    return RunConfig.from_dict(data)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    model_dir = tiny_model_folder("gemma3", folder=tmp / "model")
    cfg = _cfg(tmp, model_dir)
    logs = []
    run_dir = run_pipeline(cfg, log=logs.append)
    return cfg, run_dir, logs, tmp, model_dir


def test_run_directory_is_self_describing(tiny_run):
    cfg, run_dir, logs, _, _ = tiny_run
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["config"]["run"]["name"] == "tiny" and len(meta["model"]["weights_sha256"]) == 64
    for name in ("stats.safetensors", "neurons.safetensors", "sweep.csv", "clusters/metrics.csv",
                 "clusters/deltas.csv", "clusters/divergence.csv", "clusters/projection.csv",
                 "sweeps/cloze/sweep/cells.jsonl"):
        assert (run_dir / name).exists(), name
    sweep = pd.read_csv(run_dir / "sweep.csv")
    # anchor + 3 target languages, each: baseline + 2 CLAS strengths + Int-mu
    assert len(sweep[sweep.metric == "accuracy"]) == 4 * 4
    div = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    assert set(div.hypothesis) == {"separation", "alignment"} and (div.n == 3).all()
    table = summary_table(run_dir)
    assert list(table.lang) == ["en", "de", "ru", "zh"] and "clas_gain" in table


def test_rerun_resumes_and_changed_config_is_refused(tiny_run):
    cfg, run_dir, _, tmp, model_dir = tiny_run
    cells = run_dir / "sweeps" / "cloze" / "sweep" / "cells.jsonl"
    before = cells.read_text()
    logs = []
    run_pipeline(cfg, log=logs.append, figures=False)
    assert any("statistics: reused" in l for l in logs)
    assert cells.read_text() == before  # every cell was finished: nothing recomputed or appended
    other = _cfg(tmp, model_dir, steering={"betas": [0.3]})
    with pytest.raises(MismatchError, match="different config"):
        run_pipeline(other, figures=False)


def test_figures_rebuild_without_the_model(tiny_run, monkeypatch):
    _, run_dir, _, _, _ = tiny_run
    import clas_lens.models

    monkeypatch.setattr(clas_lens.models, "load_model", lambda *a, **k: pytest.fail("figures must not load the model"))
    written = make_figures(run_dir, formats=("html",))
    assert {"neuron_categories", "language_overlap", "language_gains", "divergence", "projection"} <= set(written)
    assert all((run_dir / "figures" / f"{name}.html").exists() for name in written)


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


def test_cli_help_everywhere():
    from clas_lens.cli import build_parser

    parser = build_parser()
    for cmd in ("info", "stats", "run", "figures", "neurons", "eval", "clusters"):
        with pytest.raises(SystemExit) as e:
            parser.parse_args([cmd, "--help"])
        assert e.value.code == 0
