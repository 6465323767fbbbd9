"""The pipeline package (clas_lens.pipeline: rundir, steps, run, report) on a tiny model, in one
module because every check reads the same run directory: its contents, resume, refusal of a
changed config, figures without the model, run directories of older releases, and the inputs of
the sweep methods that need them (quantiles, LAPE neurons, residual means)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from clas_lens.config import RunConfig
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.pipeline import make_figures, print_summary, read_sweep_csv, run_pipeline, summary_table
from clas_lens.sweep import METHODS
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
    assert meta["config_sha256"] == cfg.identity()
    for name in ("stats.safetensors", "neurons.safetensors", "sweep.csv", "clusters/metrics.csv",
                 "clusters/deltas.csv", "clusters/divergence.csv", "clusters/projection.csv",
                 "sweeps/cloze/sweep/cells.jsonl", "reps/unsteered", "reps/clas"):
        assert (run_dir / name).exists(), name
    sweep = pd.read_csv(run_dir / "sweep.csv")
    # anchor + 3 target languages, each: unsteered + 2 CLAS strengths + Int-mu
    assert len(sweep[sweep.metric == "accuracy"]) == 4 * 4
    assert "baseline" not in set(sweep.method) | set(sweep.condition) and "unsteered" in set(sweep.method)
    assert "unsteered" in set(pd.read_csv(run_dir / "clusters" / "metrics.csv").condition)
    div = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    assert set(div.hypothesis) >= {"separation", "alignment"}
    table = summary_table(run_dir)
    assert list(table.lang) == ["en", "de", "ru", "zh"] and "clas_gain" in table and "unsteered" in table
    lines = []
    print_summary(run_dir, out=lines.append)
    assert "unsteered" in lines[1] and any(l.startswith("anchor en on cloze") for l in lines)


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
    with pytest.raises(FileNotFoundError, match="not a clas_lens run directory"):
        make_figures(run_dir / "nothing")


def test_sweep_csv_of_an_older_release_still_reads(tiny_run, tmp_path):
    import shutil

    _, run_dir, _, _, _ = tiny_run
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    sweep = pd.read_csv(old / "sweep.csv")
    sweep["method"] = sweep["method"].replace({"unsteered": "baseline"})
    sweep["condition"] = sweep["condition"].replace({"unsteered": "baseline"})
    sweep.to_csv(old / "sweep.csv", index=False)
    assert "baseline" in set(pd.read_csv(old / "sweep.csv").method)
    assert set(read_sweep_csv(old).method) == set(read_sweep_csv(run_dir).method)
    assert summary_table(old).equals(summary_table(run_dir))


def test_every_sweep_method_in_a_pipeline(tiny_run):
    _, _, _, tmp, model_dir = tiny_run
    cfg = _cfg(tmp, model_dir, run={"name": "all_methods"},
               steering={"betas": [0.5], "methods": list(METHODS), "mu_values": ["mean", "p75"], "strengths": [4.0]},
               eval={"limits": {"cloze": 2}})
    run_dir = run_pipeline(cfg, figures=False, log=lambda s: None)
    sweep = pd.read_csv(run_dir / "sweep.csv")
    assert set(sweep.method) == {"unsteered", *METHODS}
    assert set(sweep[sweep.method == "int_mu"].value_kind) == {"mean", "p75"}
    assert (run_dir / "quantiles.safetensors").exists() and (run_dir / "residual_means.safetensors").exists()
    cells = run_dir / "sweeps" / "cloze" / "sweep" / "cells.jsonl"
    before = cells.read_text()
    run_pipeline(cfg, figures=False, log=lambda s: None)  # saved quantiles and means: same identity
    assert cells.read_text() == before


def test_gain_metric_must_be_a_metric_of_the_gain_task(tiny_run):
    _, _, _, tmp, model_dir = tiny_run
    cfg = _cfg(tmp, model_dir, run={"name": "bad"}, eval={"gain_metric": "bleu"})
    with pytest.raises(DataValidationError, match=r"'eval.gain_metric' = 'bleu' is not a metric of task 'cloze'"):
        run_pipeline(cfg)
    assert not (tmp / "runs" / "bad").exists()  # refused before anything was written
