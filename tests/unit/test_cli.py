"""clas_lens.cli: every subcommand's body run through ``main([...])`` on a tiny model folder and
on the files the other subcommands wrote; the one ``--layers`` parser; ``--help`` everywhere."""
from __future__ import annotations

import argparse

import pandas as pd
import pytest

from clas_lens.cli import build_parser, figure_formats, layer_spec, main, split_list

TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps.", "Hello world", "The end."],
    "de": ["Die Katze sass auf der Matte.", "Eins zwei drei", "Montag", "Der Hund schläft.", "Hallo Welt", "Das Ende."],
    "ru": ["Кошка сидела на коврике.", "Один два три", "Понедельник", "Собака спит.", "Привет мир", "Конец."],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny model folder and a JSON-lines corpus."""
    from clas_lens.data.corpus import ParallelCorpus
    from clas_lens.testing import tiny_model_folder

    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus.jsonl"
    ParallelCorpus.from_dict(TEXTS, check_langid=False).to_jsonl(corpus)
    return {"root": root, "model": str(tiny_model_folder("llama", folder=root / "model")), "corpus": str(corpus)}


@pytest.fixture(scope="module")
def artifacts(files):
    """``clas-lens stats`` then ``clas-lens neurons``: the files eval and clusters read."""
    root = files["root"]
    stats = root / "stats.safetensors"
    assert main(["stats", "--model", files["model"], "--corpus", files["corpus"], "--langs", "en,de", "ru",
                 "--site", "act", "--layers", "0,1", "--batch-size", "4", "--out", str(stats)]) == 0
    neurons = root / "neurons.safetensors"
    assert main(["neurons", str(stats), "--method", "clas", "--param", "criterion=quantile",
                 "--param", "top_quantile=0.2", "--out", str(neurons)]) == 0
    return {**files, "stats": str(stats), "neurons": str(neurons)}


def test_stats_and_neurons(artifacts, capsys):
    from clas_lens.neurons import NeuronSet
    from clas_lens.stats import NeuronStats

    stats = NeuronStats.load(artifacts["stats"])
    assert stats.langs == ["en", "de", "ru"] and stats.site == "act" and list(stats.layers) == [0, 1]
    assert NeuronSet.load(artifacts["neurons"]).langs == ["en", "de", "ru"]
    capsys.readouterr()
    assert main(["neurons", artifacts["stats"], "--param", "criterion"]) == 2  # an expected error: one line, exit 2
    err = capsys.readouterr().err
    assert "NAME=VALUE" in _error(err)


def test_info(files, capsys):
    assert main(["info", "--model", files["model"], "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "MLP neurons" in out and "[de] Das Wetter heute ist|" in out


def test_eval_unsteered_clas_and_int_mu(artifacts, tmp_path, capsys):
    out_csv = tmp_path / "eval.csv"
    assert main(["eval", "--model", artifacts["model"], "--task", "cloze", "--langs", "en,de", "--limit", "2",
                 "--neurons", artifacts["neurons"], "--stats", artifacts["stats"], "--layers", "0,1",
                 "--beta", "0.5", "--out", str(out_csv)]) == 0
    df = pd.read_csv(out_csv)
    assert set(df.condition) == {"unsteered", "clas", "int_mu"} and set(df.lang) == {"en", "de"}
    assert df[df.condition == "unsteered"]["diff"].isna().all()
    assert "unsteered" in capsys.readouterr().out


def test_clusters_unsteered_and_clas(artifacts, tmp_path, capsys):
    out_csv = tmp_path / "clusters.csv"
    assert main(["clusters", "--model", artifacts["model"], "--corpus", artifacts["corpus"], "--langs", "en,de,ru",
                 "--limit", "4", "--neurons", artifacts["neurons"], "--layers", "last:1", "--out", str(out_csv)]) == 0
    metrics = pd.read_csv(out_csv)
    assert set(metrics.condition) == {"unsteered", "clas"}
    assert "unsteered" in capsys.readouterr().out


def test_run_then_figures(files, tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(f"""
[run]
name = "cli"
out_dir = "{tmp_path / 'runs'}"
[model]
name = "{files['model']}"
[corpus]
langs = ["en", "de", "ru", "zh"]
stats_limit = 6
cluster_limit = 6
[stats]
site = "act"
[neurons]
params = {{ criterion = "quantile" }}
[steering]
layers = "last:1"
betas = [0.0, 0.5]
[eval]
tasks = ["cloze"]
limits = {{ cloze = 2 }}
n_boot = 50
""")
    assert main(["run", str(cfg), "--no-figures"]) == 0
    printed = capsys.readouterr()
    out = printed.out  # results on stdout, the pipeline's log lines on stderr
    assert "run directory:" in out and "unsteered" in out and "divergence test" in printed.err
    run_dir = tmp_path / "runs" / "cli"
    assert main(["figures", str(run_dir), "--formats", "html"]) == 0
    assert "language_gains: html=" in capsys.readouterr().out
    assert (run_dir / "figures" / "language_gains.html").exists()


def test_one_layers_parser_for_every_subcommand():
    p = build_parser()
    assert p.parse_args(["stats", "--out", "x", "--layers", "last:2"]).layers == "last:2"
    assert p.parse_args(["stats", "--out", "x"]).layers is None
    assert p.parse_args(["eval", "--layers", "0,3"]).layers == [0, 3]
    assert p.parse_args(["eval"]).layers == "last:4"
    assert p.parse_args(["clusters", "--layers", "1-2"]).layers == [1, 2]
    assert p.parse_args(["clusters", "--layers", "first:3"]).layers == "first:3"
    for cmd in (["stats", "--out", "x"], ["eval"], ["clusters"]):
        with pytest.raises(SystemExit) as e:
            p.parse_args(cmd + ["--layers", "last:0"])
        assert e.value.code == 2
    assert layer_spec("0,2,-1") == [0, 2, -1] and layer_spec("all") == "all"
    with pytest.raises(argparse.ArgumentTypeError, match="layer spec"):
        layer_spec("middle")
    assert figure_formats("html, svg") == ("html", "svg")
    with pytest.raises(argparse.ArgumentTypeError, match="--formats"):
        figure_formats("gif")


def test_cli_parser_has_info_and_stats():
    p = build_parser()
    a = p.parse_args(["stats", "--out", "x.safetensors", "--langs", "en,de", "ru", "--layers", "last:2"])
    assert a.func.__name__ == "cmd_stats" and split_list(a.langs) == ["en", "de", "ru"]
    assert p.parse_args(["info"]).func.__name__ == "cmd_info"


def test_cli_help_everywhere():
    parser = build_parser()
    for cmd in ("info", "stats", "run", "figures", "neurons", "eval", "clusters"):
        with pytest.raises(SystemExit) as e:
            parser.parse_args([cmd, "--help"])
        assert e.value.code == 0


# -- output conventions (results on stdout, logs and progress on stderr), GPU knobs ----------------
def test_version_and_quiet(files, tmp_path, capsys):
    import clas_lens

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"clas-lens {clas_lens.__version__}"
    stats = tmp_path / "s.safetensors"
    assert main(["stats", "--model", files["model"], "--corpus", files["corpus"], "--out", str(stats), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""  # no log line, no progress bar
    assert main(["neurons", str(stats), "--out", str(tmp_path / "n.safetensors")]) == 0
    printed = capsys.readouterr()
    assert "category" in printed.out and "wrote" not in printed.out and "wrote" in printed.err


def test_stats_site_defaults_to_act_for_gated_mlps(files, tmp_path, capsys):
    from clas_lens.stats import NeuronStats
    from clas_lens.testing import tiny_model_folder

    for arch, site in (("llama", "act"), ("gpt2", "post")):
        model = files["model"] if arch == "llama" else str(tiny_model_folder(arch, folder=tmp_path / arch))
        out = tmp_path / f"{arch}.safetensors"
        assert main(["stats", "--model", model, "--corpus", files["corpus"], "--out", str(out), "--limit", "2"]) == 0
        assert NeuronStats.load(out).site == site
    assert "site act" in capsys.readouterr().err


def test_no_third_party_warnings_in_normal_output(files, capsys):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["info", "--model", files["model"], "--max-new-tokens", "2"]) == 0
    third_party = [w for w in caught if not str(w.filename).startswith(str(__import__("clas_lens").__path__[0]))]
    assert third_party == [], [str(w.message)[:80] for w in third_party]
    assert "past_key_values" not in capsys.readouterr().err


def test_gpu_options_reach_the_code(files, tmp_path, monkeypatch, capsys):
    import clas_lens

    calls = []
    real = clas_lens.load_model
    monkeypatch.setattr(clas_lens, "load_model", lambda name, **kw: calls.append(kw) or real(name, **kw))
    assert main(["info", "--model", files["model"], "--max-new-tokens", "1", "--dtype", "bfloat16", "--device-map", "auto"]) == 0
    assert calls[-1] == {"device": "cpu", "dtype": "bfloat16", "device_map": "auto"}
    p = build_parser()
    a = p.parse_args(["eval", "--task", "xnli", "--dataset", "my/xnli", "--hub-config", "x_{lang}", "--hub-split", "validation",
                      "--data-files", "x/{lang}.jsonl", "--batch-size", "4"])
    assert (a.dataset, a.hub_config, a.hub_split, a.data_files, a.batch_size) == ("my/xnli", "x_{lang}", "validation", "x/{lang}.jsonl", 4)
    assert p.parse_args(["clusters", "--batch-size", "3", "--drop-incomplete"]).batch_size == 3
    assert p.parse_args(["run", "--set", "model.dtype=bfloat16", "--set", "model.device=cuda"]).set == [
        "model.dtype=bfloat16", "model.device=cuda"]
    assert p.parse_args(["info", "--device-map", '{"": 0}']).device_map == {"": 0}
    with pytest.raises(SystemExit):
        p.parse_args(["info", "--device-map", "everywhere"])
    capsys.readouterr()
    cfg = tmp_path / "c.toml"
    cfg.write_text('[eval]\ntasks = ["cloze"]\n')
    assert main(["run", str(cfg), "--check", "--set", "model.dtype=bfloat16", "--set", f"run.out_dir='{tmp_path}'"]) == 0
    assert "float16" in capsys.readouterr().out
    assert main(["run", str(cfg), "--check", "--set", "model.dtype=int8"]) == 2
    assert "'model.dtype' = 'int8'" in capsys.readouterr().err


# --- issue 14: errors are one line (exit 2) or short (exit 1); run --check; checked numbers ---------

def _error(err: str) -> str:
    """The one error line of stderr (logs may come before it, on stderr too)."""
    lines = [line for line in err.splitlines() if line.startswith("clas-lens: error: ")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    return lines[0]


def _toml(tmp_path, name="chk", extra=""):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[run]\nname = "{name}"\nout_dir = "{tmp_path / "runs"}"\n[eval]\ntasks = ["cloze"]\n{extra}')
    return cfg


def test_run_check_only_checks(tmp_path, capsys, monkeypatch):
    import clas_lens.pipeline.run as run_module

    monkeypatch.setattr(run_module, "load_model", lambda *a, **k: pytest.fail("--check must not load a model"))
    assert main(["run", "--check", str(_toml(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and "run directory:" in out and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("[stats]\nbatch_size = 8.5\n", "stats.batch_size"),
        ("[stats]\nbatch_size = 0\n", "stats.batch_size"),
        ("[steering]\nbetas = \"12\"\n", "steering.betas"),
        ("[corpus]\nstats_limit = -1\n", "corpus.stats_limit"),
        ("[stats]\nthreshold = nan\n", "stats.threshold"),
        ("[stats]\nmax_length = 0\n", "stats.max_length"),
        ("[corpus]\nlangs = [\"en\", \"de\", \"en\"]\n", "corpus.langs"),
        ("[eval.options.qa]\nmax_new_tokens = -1\n", "max_new_tokens"),
        ("[stats\nbatch_size = 1\n", "not valid TOML"),
    ],
)
def test_bad_config_values_are_one_line_exit_2(tmp_path, capsys, extra, needle):
    cfg = _toml(tmp_path, extra=extra)
    if "max_new_tokens" in needle:
        cfg.write_text(cfg.read_text().replace('tasks = ["cloze"]', 'tasks = ["cloze", "qa"]'))
    assert main(["run", "--check", str(cfg)]) == 2
    assert needle in _error(capsys.readouterr().err)


def test_undecodable_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'[run]\nname = "\xff\xfe"\n')
    assert main(["run", "--check", str(cfg)]) == 2
    assert "not valid TOML (UTF-8 text)" in _error(capsys.readouterr().err)


@pytest.mark.parametrize("name", ["../victim", "", "..", "/tmp/abs"])
def test_run_restart_never_deletes_outside_a_run_directory(tmp_path, capsys, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "keep.txt").write_text("also precious")
    assert main(["run", "--restart", str(_toml(tmp_path, name=name))]) == 2
    assert "'run.name'" in _error(capsys.readouterr().err)
    assert (victim / "keep.txt").read_text() == "precious"
    assert (tmp_path / "runs" / "keep.txt").read_text() == "also precious"


def test_run_restart_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    folder = tmp_path / "runs" / "mine"
    folder.mkdir(parents=True)
    (folder / "notes.md").write_text("mine")
    assert main(["run", "--restart", str(_toml(tmp_path, name="mine"))]) == 2
    err = _error(capsys.readouterr().err)
    assert "is not a clas_lens run directory" in err and "Nothing in it was changed or deleted" in err
    assert (folder / "notes.md").read_text() == "mine" and sorted(p.name for p in folder.iterdir()) == ["notes.md"]


def test_unexpected_errors_exit_1_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    import clas_lens.cli.run as cli

    def boom(args):
        raise RuntimeError("internal\nbug")

    monkeypatch.setattr(cli, "cmd_figures", boom)
    assert main(["figures", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == "clas-lens: unexpected error: RuntimeError: internal; bug (rerun with --debug for the traceback)\n"
    assert main(["figures", str(tmp_path), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: internal" in err
    monkeypatch.undo()
    assert main(["--debug", "figures", str(tmp_path / "none")]) == 2  # expected error, traceback too
    err = capsys.readouterr().err
    assert "Traceback" in err and "not a clas_lens run directory" in _error(err)


def test_expected_errors_are_one_line(tmp_path, capsys):
    assert main(["figures", str(tmp_path / "nothing")]) == 2
    assert "not a clas_lens run directory" in _error(capsys.readouterr().err)
    assert main(["neurons", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors" in _error(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["stats", "--out", "x", "--batch-size", "0"], "--batch-size = 0 is not allowed: use a whole number >= 1"),
        (["stats", "--out", "x", "--batch-size", "8.5"], "--batch-size = '8.5'"),
        (["stats", "--out", "x", "--limit", "-1"], "--limit = -1 is not allowed: use a whole number >= 0 (0: all)"),
        (["stats", "--out", "x", "--max-length", "0"], "--max-length = 0"),
        (["stats", "--out", "x", "--threshold", "nan"], "--threshold = nan"),
        (["info", "--max-new-tokens", "-1"], "--max-new-tokens = -1"),
        (["eval", "--limit", "-2"], "--limit = -2"),
        (["eval", "--beta", "inf"], "--beta = inf"),
        (["eval", "--langs", "en,de,en"], "each language once"),
        (["clusters", "--limit", "0"], "--limit = 0"),
    ],
)
def test_numeric_options_are_checked(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err
