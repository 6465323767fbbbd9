"""The pipeline package (clas_lens.pipeline: corpora, neuron_checks, select, sweeps, geometry,
summary, summary_md, steps, run, report) on a tiny model, in one module because every check reads
the same run directory: the design of issues 12 and 13 (stats / dev / test splits, settings
chosen on dev by a named rule, controls beside CLAS, positive control, split-half stability,
divergence test, closing summary), resume, refusal of a changed config or of statistics of other
sentences, figures without the model, run directories of older releases, and the inputs of the
sweep methods that need them. The pure parts (the selection rule, the summary tables) are
tested here too, on hand-made frames."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from clas_lens.clusters import Reps
from clas_lens.config import RunConfig
from clas_lens.data.corpus import load_corpus
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.pipeline import SELECT_RULE, make_figures, print_summary, read_sweep_csv, run_pipeline, summary_table
from clas_lens.pipeline.select import chosen_params, select_settings
from clas_lens.pipeline.summary import stability_summary
from clas_lens.sweep import METHODS, finished_records
from clas_lens.sweep.methods import control_methods
from clas_lens.testing import tiny_model_folder

LANGS = ["en", "de", "ru", "zh"]


def _cfg(tmp_path, model_dir, **over):
    data = {
        "run": {"name": "tiny", "out_dir": str(tmp_path / "runs")},
        "model": {"name": str(model_dir)},
        "corpus": {"langs": LANGS, "stats_limit": 6, "cluster_limit": 5},
        "stats": {"site": "act"},
        "neurons": {"method": "clas", "params": {"criterion": "quantile"}, "stability_splits": 2, "control_limit": 2},
        "steering": {"layers": "last:1", "betas": [0.0, 0.5], "methods": ["clas", "int_mu", *control_methods()],
                     "random_seeds": [0, 1]},
        "eval": {"tasks": ["lm", "completion"], "limits": {"lm": 3, "completion": 2}, "dev_limits": {"lm": 2},
                 "n_boot": 100, "gain_task": "lm", "gain_metric": "neg_nll"},
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


def _item_ids(sweep_dir):
    return {i for rec in finished_records(sweep_dir / "sweep") for i in rec["items"]["item_id"]}


def test_splits_neurons_on_stats_choices_on_dev_reports_on_test(tiny_run):
    cfg, run_dir, logs, _, _ = tiny_run
    corpus = load_corpus("default", langs=LANGS)
    stats_ids, dev_ids, test_ids = (set(corpus.split(s).ids) for s in ("stats", "dev", "test"))
    assert json.loads((run_dir / "stats_corpus.json").read_text())["split"] == "stats"
    assert _item_ids(run_dir / "sweeps" / "dev" / "lm") <= dev_ids
    for task in ("lm", "completion"):
        assert _item_ids(run_dir / "sweeps" / "test" / task) <= test_ids
    held_out = set(Reps.load(run_dir / "reps" / "clas").meta["sentence_ids"])
    assert held_out <= test_ids and not held_out & stats_ids
    sel = json.loads((run_dir / "selection.json").read_text())
    assert sel["rule"] == SELECT_RULE and (sel["split"], sel["task"], sel["metric"]) == ("dev", "lm", "neg_nll")
    chosen = sel["chosen"]["clas"]
    assert chosen["beta"] in (0.0, 0.5) and sel["fixed"]["int_mu"] == {"value": "mean", "layers": "last:1"}
    assert any(l.startswith("chosen on dev for clas") for l in logs)
    # test: every method at its chosen setting, the controls at CLAS's
    sweep = pd.read_csv(run_dir / "sweep.csv")
    rows = sweep[sweep.metric.isin(["neg_nll", "margin"])]
    assert set(rows.method) == {"unsteered", "clas", "int_mu", *control_methods()}
    assert set(rows[rows.method == "clas"].beta) == {chosen["beta"]}
    assert set(rows[rows.method == "boost_only"].beta) == {chosen["beta"]}
    assert set(rows[rows.method == "suppress_only"].gamma) == {chosen["gamma"]}
    assert rows[rows.method == "clas_random"].key.str.contains("neuron_seed").all()
    assert len(rows[rows.method == "clas_random"]) == 2 * 2 * len(LANGS)  # 2 seeds x 2 tasks x 4 languages


def test_neuron_checks_and_divergence_files(tiny_run):
    _, run_dir, _, _, _ = tiny_run
    stab = pd.read_csv(run_dir / "neurons_stability.csv")
    assert set(stab.replicate) == {0, 1} and stab.jaccard.dropna().between(0, 1).all()
    control = pd.read_csv(run_dir / "control" / "deactivation.csv")
    assert {"deactivated", "lang", "delta_nll", "ci_low", "ci_high"} <= set(control.columns)
    assert set(control.lang) == set(LANGS) and (control.n == 2).all()
    dom = json.loads((run_dir / "control" / "dominance.json").read_text())
    assert dom["neurons"] == "lape" and dom["split"] == "test"
    div = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    assert set(div.hypothesis) == {"separation", "alignment", "difference"} and "detectable_r" in div
    assert json.loads((run_dir / "clusters" / "divergence.json").read_text())["layer_choice"].startswith("max unsteered")


def test_summary_reports_every_part_whatever_the_signs(tiny_run):
    cfg, run_dir, _, _, _ = tiny_run
    text = (run_dir / "summary.md").read_text()
    for part in ("## Settings chosen on dev", "Rule: largest mean gain", "## Positive control", "## Split-half stability",
                 "lm / neg_nll", "completion / margin", "completion / accuracy", "CLAS - random neurons (2 seeds)",
                 "CLAS - uniform gain", "CLAS - boost-only", "CLAS - suppress-only", "## Anchor kept?",
                 "r_separation - r_alignment", "detectable |r|"):
        assert part in text, part
    gains = pd.read_csv(run_dir / "summary" / "gains.csv")
    clas = gains[gains.condition == "clas"]
    assert set(clas[clas.metric == "neg_nll"].test) == {"sign-flip"}
    assert set(clas[clas.metric == "accuracy"].test) == {"mcnemar-midp"}
    assert clas[clas.lang == "en"].p_holm.isna().all() and clas[clas.lang != "en"].p_holm.notna().all()
    assert {"mde", "p_holm", "split"} <= set(gains.columns) and set(clas.split) == {"test"}
    controls = pd.read_csv(run_dir / "summary" / "controls.csv")
    assert set(controls.control) == set(control_methods()) and set(controls.n) == {2, 3}
    anchor = pd.read_csv(run_dir / "summary" / "anchor.csv")
    assert set(anchor.verdict) <= {"kept", "not shown"} and set(anchor.lang) == {"en"}
    table = summary_table(run_dir)
    assert list(table[table.task == "lm"].lang) == LANGS and {"clas_gain", "clas_p_holm", "unsteered"} <= set(table)
    lines = []
    print_summary(run_dir, out=lines.append)
    assert lines[0].startswith("# Run `tiny`") and "## Divergence test" in lines


def test_rerun_resumes_and_changed_config_is_refused(tiny_run):
    cfg, run_dir, _, tmp, model_dir = tiny_run
    cells = sorted((run_dir / "sweeps").rglob("cells.jsonl"))
    before = [c.read_text() for c in cells]
    logs = []
    run_pipeline(cfg, log=logs.append, figures=False)
    assert any("statistics: reused" in l for l in logs)
    assert [c.read_text() for c in cells] == before  # every cell was finished: nothing recomputed or appended
    other = _cfg(tmp, model_dir, steering={"betas": [0.3]})
    with pytest.raises(MismatchError, match="different config"):
        run_pipeline(other, figures=False)


def test_statistics_of_other_sentences_are_refused(tiny_run, tmp_path):
    cfg, run_dir, _, _, _ = tiny_run
    old = tmp_path / "runs" / "tiny"
    shutil.copytree(run_dir, old)
    (old / "stats_corpus.json").unlink()  # a run directory of an earlier release
    moved = RunConfig.from_dict({**cfg.to_dict(), "run": {**cfg.to_dict()["run"], "out_dir": str(tmp_path / "runs")}})
    meta = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({**meta, "config": moved.to_dict(), "config_sha256": moved.identity()}))
    with pytest.raises(MismatchError, match="other sentences"):
        run_pipeline(moved, figures=False, log=lambda s: None)


def test_figures_rebuild_without_the_model(tiny_run, monkeypatch):
    _, run_dir, _, _, _ = tiny_run
    import clas_lens.models

    monkeypatch.setattr(clas_lens.models, "load_model", lambda *a, **k: pytest.fail("figures must not load the model"))
    written = make_figures(run_dir, formats=("html",))
    assert {"neuron_categories", "active_overlap", "positive_control", "language_gains", "divergence",
            "projection"} <= set(written)
    assert "language_overlap" not in written
    assert all((run_dir / "figures" / f"{name}.html").exists() for name in written)
    with pytest.raises(FileNotFoundError, match="not a clas_lens run directory"):
        make_figures(run_dir / "nothing")


def test_sweep_csv_of_an_older_release_still_reads(tiny_run, tmp_path):
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
               neurons={"stability_splits": 0, "control_limit": 0},
               steering={"betas": [0.5], "methods": list(METHODS), "mu_values": ["mean", "p75"], "strengths": [4.0]},
               eval={"tasks": ["lm"], "limits": {"lm": 2}, "dev_limits": {"lm": 2}})
    run_dir = run_pipeline(cfg, figures=False, log=lambda s: None)
    sweep = pd.read_csv(run_dir / "sweep.csv")
    assert set(sweep.method) == {"unsteered", *METHODS}
    sel = json.loads((run_dir / "selection.json").read_text())
    assert list(sel["chosen"]) == ["int_mu"] and set(pd.read_csv(run_dir / "sweep_dev.csv").method) == {"unsteered", "int_mu"}
    assert set(sweep[sweep.method == "int_mu"].value_kind) == {sel["chosen"]["int_mu"]["value"]}
    assert (run_dir / "quantiles.safetensors").exists() and (run_dir / "residual_means.safetensors").exists()
    assert not (run_dir / "control").exists() and not (run_dir / "neurons_stability.csv").exists()
    assert "Not run (`[neurons] control_limit = 0`)" in (run_dir / "summary.md").read_text()
    cells = run_dir / "sweeps" / "test" / "lm" / "sweep" / "cells.jsonl"
    before = cells.read_text()
    run_pipeline(cfg, figures=False, log=lambda s: None)  # saved quantiles and means: same identity
    assert cells.read_text() == before


def test_gain_metric_must_be_a_metric_of_the_gain_task(tiny_run):
    _, _, _, tmp, model_dir = tiny_run
    cfg = _cfg(tmp, model_dir, run={"name": "bad"}, eval={"gain_metric": "bleu"})
    with pytest.raises(DataValidationError, match=r"'eval.gain_metric' = 'bleu' is not a metric of task 'lm'"):
        run_pipeline(cfg)
    assert not (tmp / "runs" / "bad").exists()  # refused before anything was written


def test_selection_rule_breaks_ties_by_strength_then_layers():
    p = lambda b, g, layers="last:4": {"alpha": 1.0, "beta": b, "gamma": g, "layers": layers}  # noqa: E731
    rows = [("a", p(0.5, 0.2), 0.1), ("b", p(0.2, 0.2), 0.1), ("c", p(0.2, 0.2, "last:2"), 0.1), ("d", p(1.0, 0.2), -0.3)]
    gains = pd.DataFrame([{"method": "clas", "condition": c, "params": q, "lang": l, "gain": g}
                          for c, q, g in rows for l in ("de", "ru")])
    mu = pd.DataFrame([{"method": "int_mu", "condition": v, "params": {"value": v, "layers": "last:4"}, "lang": "de",
                        "gain": g} for v, g in (("mean", 0.01), ("zero", 0.02))])
    t = select_settings(pd.concat([gains, mu], ignore_index=True), n_layers=18)
    assert t[t.method == "clas"].condition.tolist() == ["c", "b", "a", "d"]  # ties: smaller strength, fewer layers
    assert chosen_params(t) == {"clas": p(0.2, 0.2, "last:2"), "int_mu": {"value": "zero", "layers": "last:4"}}
    with pytest.raises(DataValidationError, match="columns"):
        select_settings(gains.drop(columns="params"), n_layers=18)


def test_stability_summary_pools_layers_and_names_shared_categories():
    t = pd.DataFrame({"category": ["all_shared"] * 2 + ["specific"] * 2, "lang": [None, None, "de", "de"],
                      "layer": [0, 1, 0, 1], "n_a": [4, 4, 1, 1], "n_b": [4, 4, 1, 0], "n_both": [4, 2, 1, 0],
                      "replicate": 0})
    s = stability_summary(t).set_index("category")
    assert s.loc["all_shared", "lang"] == "all" and s.loc["all_shared", "jaccard"] == pytest.approx(6 / 10)
    assert s.loc["specific", "jaccard"] == pytest.approx(1 / 2) and s.loc["specific", "n_splits"] == 1
