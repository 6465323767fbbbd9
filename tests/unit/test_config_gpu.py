"""The knobs a GPU run needs, from the run config down to the code that uses them (one test
module for several: config.py declares and checks them, pipeline/ passes them on, models.py and
data/corpus.py take them): model dtype / device / device_map, batch sizes per step, task
options (hub dataset, config and split, local data_files), per-task languages, any language
code, corpus.drop_incomplete; all checked before any model loads."""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens import config
from clas_lens.config import RunConfig
from clas_lens.pipeline.inputs import check_inputs
from clas_lens.data.corpus import ParallelCorpus, load_corpus
from clas_lens.errors import DataValidationError
from clas_lens.models import DTYPES, load_model
from clas_lens.pipeline import run as pipeline_run
from clas_lens.pipeline import steps


def _cfg(**sections) -> RunConfig:
    return RunConfig.from_dict(sections)


# -- model ---------------------------------------------------------------------------------------
def test_model_dtype_device_and_device_map_are_checked():
    cfg = _cfg(model={"dtype": "bfloat16", "device": "cuda:1", "device_map": "auto"})
    assert (cfg.model.dtype, cfg.model.device, cfg.model.device_map) == ("bfloat16", "cuda:1", "auto")
    assert config.allowed_values()["model.dtype"] == tuple(DTYPES) == ("bfloat16", "float16", "float32")
    assert _cfg(model={"device_map": {"model.layers.0": 0, "lm_head": "cpu"}}).model.device_map["lm_head"] == "cpu"
    with pytest.raises(DataValidationError, match=r"'model.dtype' = 'bf16'.*allowed values: \['bfloat16'"):
        _cfg(model={"dtype": "bf16"})
    with pytest.raises(DataValidationError, match=r"'model.device' = 'gpu0' is not a torch device"):
        _cfg(model={"device": "gpu0"})
    with pytest.raises(DataValidationError, match=r"'model.device_map' = 'everywhere'.*'auto'"):
        _cfg(model={"device_map": "everywhere"})


def test_load_model_takes_the_dtype_by_name_and_a_device_map(tmp_path):
    from clas_lens.testing import tiny_model_folder

    folder = tiny_model_folder("llama", folder=tmp_path / "m")
    assert next(load_model(folder, dtype="bfloat16").parameters()).dtype == torch.bfloat16
    assert next(load_model(folder, device_map={"": "cpu"}).parameters()).device.type == "cpu"
    with pytest.raises(Exception, match="dtype 'int8' is not supported"):
        load_model(folder, dtype="int8")


def test_cuda_without_a_gpu_is_refused_before_any_model_loads():
    cfg = _cfg(model={"device": "cuda"}, eval={"tasks": ["cloze"]})
    assert any("on cuda" in n for n in check_inputs(cfg, devices=False))  # --check on a CPU machine
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    with pytest.raises(DataValidationError, match=r"'model.device' = 'cuda' but no CUDA device is visible"):
        check_inputs(cfg)


def test_check_inputs_names_hub_ids_and_refuses_missing_paths(tmp_path):
    notes = check_inputs(_cfg(model={"name": "Qwen/Qwen2.5-7B"}, eval={"tasks": ["cloze"]}), devices=False)
    assert notes[0].startswith("model: hub id 'Qwen/Qwen2.5-7B' (downloaded at run time")
    with pytest.raises(DataValidationError, match="'model.name'.*no such folder"):
        check_inputs(_cfg(model={"name": str(tmp_path / "nope")}, eval={"tasks": ["cloze"]}))
    with pytest.raises(DataValidationError, match="'corpus.name'.*no such file"):
        check_inputs(_cfg(corpus={"name": str(tmp_path / "nope.jsonl"), "langs": ["en"]}, eval={"tasks": ["cloze"]}))
    cfg = _cfg(eval={"tasks": ["xnli"], "gain_task": "xnli", "langs": {"xnli": ["en", "de"]},
                     "options": {"xnli": {"data_files": str(tmp_path / "{lang}.jsonl")}}})
    with pytest.raises(DataValidationError, match=r"'eval.options.xnli.data_files': 'en' file .*en.jsonl' does not exist"):
        check_inputs(cfg)


# -- batch sizes, task options and languages reach the code ------------------------------------
def test_batch_sizes_per_step():
    cfg = _cfg(stats={"batch_size": 4}, eval={"batch_size": 3}, clusters={"batch_size": 2})
    assert steps.sweep_grid(cfg, "cloze").batch_size == 3
    assert (cfg.stats.batch_size, cfg.clusters.batch_size) == (4, 2)
    for key in ("stats", "eval", "clusters"):
        with pytest.raises(DataValidationError, match=rf"'{key}.batch_size' must be a number"):
            _cfg(**{key: {"batch_size": 0}})


def test_task_options_and_languages_from_the_config(tmp_path, monkeypatch):
    options = {"dataset": "my-org/xnli-mirror", "hub_config": "xnli_{lang}", "hub_split": "validation"}
    cfg = _cfg(eval={"tasks": ["xnli"], "gain_task": "xnli", "langs": {"xnli": ["de", "sw"]}, "options": {"xnli": options}})
    grid = steps.sweep_grid(cfg, "xnli")
    assert grid.all_langs == ["en", "de", "sw"] and grid.task_options == {"xnli": options}
    seen = {}
    monkeypatch.setattr(steps, "load_task", lambda name, langs, **o: seen.setdefault(name, (langs, o)))
    steps.load_eval_tasks(cfg)
    assert seen["xnli"] == (["en", "de", "sw"], options)
    with pytest.raises(DataValidationError, match=r"'eval.options.xnli'.*Unknown option\(s\) \['hub_revision'\]"):
        _cfg(eval={"tasks": ["xnli"], "gain_task": "xnli", "options": {"xnli": {"hub_revision": "main"}}})
    with pytest.raises(DataValidationError, match=r"'eval.options.qa2': unknown task"):
        _cfg(eval={"tasks": ["cloze"], "options": {"qa2": {}}})
    with pytest.raises(DataValidationError, match=r"'eval.options.qa': task 'qa' is not in eval.tasks"):
        _cfg(eval={"tasks": ["cloze"], "options": {"qa": {}}})
    with pytest.raises(DataValidationError, match=r"'eval.langs.qa': task 'qa' is not in eval.tasks"):
        _cfg(eval={"tasks": ["cloze"], "langs": {"qa": ["en"]}})


def test_per_task_languages():
    corpus = {"name": "flores", "langs": ["en", "de", "sw", "ro"]}
    cfg = _cfg(corpus=corpus, eval={"tasks": ["xnli", "xquad"], "gain_task": "xnli"})
    assert cfg.task_langs("xnli") == ["en", "de", "sw"]       # XNLI has no ro
    assert cfg.task_langs("xquad") == ["en", "de", "ro"]      # XQuAD has no sw
    cfg = _cfg(corpus=corpus, eval={"tasks": ["xquad"], "gain_task": "xquad", "langs": {"xquad": ["de"]}})
    assert steps.sweep_grid(cfg, "xquad").all_langs == ["en", "de"]
    with pytest.raises(DataValidationError, match=r"'eval.langs.xquad': task 'xquad' has no language 'sw'"):
        _cfg(corpus=corpus, eval={"tasks": ["xquad"], "gain_task": "xquad", "langs": {"xquad": ["en", "sw"]}})
    with pytest.raises(DataValidationError, match=r"'eval.langs.xnli' has 'fr', which is not in corpus.langs"):
        _cfg(corpus=corpus, eval={"tasks": ["xnli"], "gain_task": "xnli", "langs": {"xnli": ["fr"]}})
    with pytest.raises(DataValidationError, match=r"'eval.langs.xnli' has 'xx'"):
        _cfg(eval={"langs": {"xnli": ["xx"]}})
    with pytest.raises(DataValidationError, match=r"task 'xquad' has no language 'sw' \(the anchor"):
        _cfg(corpus={"name": "flores", "langs": ["sw", "de"], "anchor": "sw"}, eval={"tasks": ["xquad"], "gain_task": "xquad"})


def test_any_language_code_the_corpus_has():
    assert _cfg(corpus={"name": "flores", "langs": ["en", "fr", "ro", "bg", "ur"]}).corpus.langs[-1] == "ur"
    with pytest.raises(DataValidationError, match=r"'corpus.langs' has 'fr', which the embedded corpus does not have"):
        _cfg(corpus={"langs": ["en", "fr"]})
    with pytest.raises(DataValidationError, match=r"'corpus.langs' has 'xx': Unknown language code"):
        _cfg(corpus={"name": "flores", "langs": ["en", "xx"]})


def test_load_with_overrides(tmp_path):
    cfg = config.load(overrides=["model.dtype=bfloat16", "eval.tasks=['cloze']", "eval.gain_task=cloze",
                                 "eval.gain_metric=accuracy", "eval.langs.cloze=['en', 'de']"])
    assert cfg.model.dtype == "bfloat16" and cfg.task_langs("cloze") == ["en", "de"]
    assert config.load(overrides={"model.device_map": "auto"}).model.device_map == "auto"
    with pytest.raises(DataValidationError, match="use KEY=VALUE"):
        config.load(overrides=["model.dtype"])


# -- corpus.drop_incomplete ----------------------------------------------------------------------
def _gappy_folder(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = {"en": {"a": "One cat.", "b": "Two dogs.", "c": "Three birds."},
            "de": {"a": "Eine Katze.", "c": "Drei Vögel."},
            "sw": {"a": "Paka mmoja.", "b": "Mbwa wawili.", "c": "  "}}
    for lang, items in rows.items():
        (tmp_path / f"{lang}.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items.items()))
    return tmp_path


def test_drop_incomplete_from_the_api(tmp_path):
    folder = _gappy_folder(tmp_path)
    with pytest.raises(DataValidationError):
        load_corpus(folder, check_langid=False)
    corpus = load_corpus(folder, check_langid=False, drop_incomplete=True)
    assert corpus.ids == ["a"] and corpus.langs == ["en", "de", "sw"]
    assert [(d["id"], d["missing"], d["reason"]) for d in corpus.info["dropped"]] == [
        ("b", ["de"], "no text in de"), ("c", ["sw"], "no text in sw")]
    assert corpus.subset(langs=["en"]).info["dropped"] == corpus.info["dropped"]
    c = ParallelCorpus({"en": {"a": "Hi.", "b": "Yo."}, "de": {"a": "Hallo.", "b": ""}}, check_langid=False,
                       drop_incomplete=True)
    assert c.ids == ["a"] and c.info["dropped"][0]["reason"] == "empty text in de"
    assert load_corpus("default", langs=["en"], drop_incomplete=True).info["dropped"] == []


def test_drop_incomplete_from_the_config_is_reported(tmp_path):
    folder = _gappy_folder(tmp_path / "c")
    cfg = _cfg(corpus={"name": str(folder), "langs": ["en", "de", "sw"], "drop_incomplete": True})
    assert cfg.corpus.drop_incomplete is True
    with pytest.raises(DataValidationError, match="'corpus.drop_incomplete' must be true or false"):
        _cfg(corpus={"drop_incomplete": "yes"})
    corpus = load_corpus(folder, langs=cfg.corpus.langs, check_langid=False, drop_incomplete=True)
    logs = []
    path = pipeline_run.report_dropped(corpus, tmp_path, logs.append)
    assert "dropped 2 of 3 items" in logs[0] and "'b': no text in de" in logs[0]
    assert path.read_text().splitlines()[1:] == ["b,de,,no text in de", "c,sw,,no text in sw"]


def test_the_pipeline_checks_everything_before_the_model_loads(tmp_path, monkeypatch):
    from clas_lens.testing import tiny_model_folder

    loads = []

    class Stop(Exception):
        pass

    def fake_load(name, **kwargs):
        loads.append(kwargs)
        raise Stop

    monkeypatch.setattr(pipeline_run, "load_model", fake_load)
    model = str(tiny_model_folder("llama", folder=tmp_path / "m"))
    base = {"run": {"out_dir": str(tmp_path / "runs")}, "model": {"name": model},
            "corpus": {"langs": ["en", "de"]}, "eval": {"tasks": ["nli"], "gain_task": "nli"}}
    bad = json.loads(json.dumps(base))
    bad["eval"]["options"] = {"nli": {"data_files": {"en": str(tmp_path / "en.jsonl"), "de": str(tmp_path / "de.jsonl")}}}
    with pytest.raises(DataValidationError, match="does not exist"):
        pipeline_run.run_pipeline(RunConfig.from_dict(bad), log=lambda s: None)
    assert loads == []                                  # refused before any model load
    good = json.loads(json.dumps(base))
    good["model"].update(dtype="bfloat16", device_map="auto")
    with pytest.raises(Stop):
        pipeline_run.run_pipeline(RunConfig.from_dict(good), log=lambda s: None)
    assert loads == [{"device": "cpu", "dtype": "bfloat16", "device_map": "auto"}]
