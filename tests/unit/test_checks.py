"""clas_lens.checks: every validator accepts its range, refuses the rest with the range in the
message, and is what the config uses (one test per probe class of issue 14, item 2 and 4)."""
from __future__ import annotations

import math

import pytest
import torch

from clas_lens import checks
from clas_lens.config import RunConfig
from clas_lens.errors import DataValidationError, NonFiniteError


def test_positive_int():
    assert checks.positive_int(3, "n") == 3 and checks.positive_int(None, "n", none_ok=True) is None
    for bad in (0, -1, 8.5, 8.0, "8", True, None, float("nan")):
        with pytest.raises(DataValidationError, match=r"n = .* is not allowed: use a whole number >= 1"):
            checks.positive_int(bad, "n")
    with pytest.raises(DataValidationError, match="or None for no limit"):
        checks.positive_int(0, "max_length", none_ok=True)


def test_non_negative_int():
    assert checks.non_negative_int(0, "limit") == 0
    for bad in (-1, -5, 1.5, "3", False):
        with pytest.raises(DataValidationError, match=r">= 0 \(0: all\)"):
            checks.non_negative_int(bad, "limit", zero_means="all")


def test_finite_float_and_probability():
    assert checks.finite_float(2, "x") == 2.0 and isinstance(checks.finite_float(2, "x"), float)
    for bad in (float("nan"), float("inf"), -float("inf"), "0.5", None, True):
        with pytest.raises(DataValidationError, match="use a finite number"):
            checks.finite_float(bad, "x")
    with pytest.raises(DataValidationError, match=r">= 0"):
        checks.finite_float(-0.1, "x", low=0)
    with pytest.raises(DataValidationError, match=r"in \(0, 1\)"):
        checks.probability(1.0, "confidence", open_low=True, open_high=True)
    assert checks.probability(1.0, "p") == 1.0
    with pytest.raises(DataValidationError, match=r"in \[0, 1\]"):
        checks.probability(-0.01, "p")


def test_float_list_refuses_strings_and_non_finite():
    assert checks.float_list((0, 1.5), "betas") == [0.0, 1.5]
    for bad in ("12", "0.5", [], {"a": 1}, 0.5, None):
        with pytest.raises(DataValidationError, match="list of finite numbers"):
            checks.float_list(bad, "betas")
    with pytest.raises(DataValidationError, match=r"betas\[1\] = nan"):
        checks.float_list([0.0, math.nan], "betas")


def test_unique_langs():
    assert checks.unique_langs(["en", "de"], "langs") == ["en", "de"]
    with pytest.raises(DataValidationError, match="each language once \\('de' is given 2 times\\)"):
        checks.unique_langs(["en", "de", "de"], "langs")
    for bad in ("en", [], ["en", ""], ["en", 3]):
        with pytest.raises(DataValidationError, match="language codes"):
            checks.unique_langs(bad, "langs")


def test_text_and_path_component():
    assert checks.text("Привет 你好", "t") == "Привет 你好"
    with pytest.raises(DataValidationError, match="lone surrogates"):
        checks.text("ok\ud800", "t")
    for good in ("demo", "run-1", "a.b", "ünïcode", ".hidden"):
        assert checks.path_component(good, "run name") == good
    for bad in ("", " ", ".", "..", "../victim", "a/b", "/abs", "a\\b", "x\x00y", "tab\there", "a" * 256, None, 3):
        with pytest.raises(DataValidationError, match="run name"):
            checks.path_component(bad, "run name")


def test_require_finite():
    t = torch.tensor([1.0, -2.0])
    assert checks.require_finite(t, "scores") is t
    assert checks.require_finite(torch.tensor([1, 2]), "ints") is not None  # integers are always finite
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(NonFiniteError, match=r"scores: 1 of 3 values are NaN or infinite.*Lower the strength"):
            checks.require_finite(torch.tensor([0.0, bad, 1.0]), "scores")
    x = torch.tensor([float("nan")], requires_grad=True)
    with pytest.raises(NonFiniteError):
        checks.require_finite(x * 2, "grad scores")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("steering", "betas", "12", r"'steering.betas' must be a list"),
        ("steering", "betas", [0.1, float("nan")], r"steering.betas\[1\]' = nan"),
        ("corpus", "stats_limit", -1, r"'corpus.stats_limit' = -1 is not allowed: use a whole number >= 0 \(0: all\)"),
        ("corpus", "cluster_limit", -3, r"'corpus.cluster_limit' = -3"),
        ("eval", "limits", {"cloze": -2}, r"'eval.limits.cloze' = -2 .* >= 1"),
        ("eval", "limits", {"nonsense": 2}, r"'eval.limits.nonsense': unknown task"),
        ("stats", "threshold", float("nan"), r"'stats.threshold' = nan .* finite"),
        ("stats", "max_length", 0, r"'stats.max_length' = 0 .* >= 1, or None"),
        ("stats", "batch_size", 8.5, r"'stats.batch_size'"),
        ("stats", "batch_size", 0, r"'stats.batch_size'"),
        ("corpus", "langs", ["en", "de", "en"], r"'corpus.langs'.*each language once"),
        ("eval", "tasks", ["cloze", "cloze"], r"'eval.tasks'.*each value once"),
        ("eval", "n_boot", 0, r"'eval.n_boot' = 0"),
        ("run", "seed", -1, r"'run.seed' = -1"),
        ("model", "threads", -2, r"'model.threads' = -2"),
        ("run", "name", "../victim", r"'run.name' = '../victim' is not allowed: use a plain folder name"),
        ("run", "name", "", r"'run.name' = ''"),
        ("run", "name", "..", r"'run.name' = '..'"),
        ("run", "name", "/tmp/abs", r"'run.name' = '/tmp/abs'"),
        ("run", "name", "bad\udc80", r"'run.name'"),
        ("eval", "options", {"qa": {"max_new_tokens": -1}}, r"max_new_tokens' = -1 .* >= 1"),
    ],
)
def test_config_refuses_out_of_range_values(section, key, value, message):
    data = {section: {key: value}}
    if section == "eval" and key in ("limits", "options"):
        data["eval"]["tasks"] = ["cloze", "qa"] if key == "options" else ["cloze"]
    with pytest.raises(DataValidationError, match=message):
        RunConfig.from_dict(data)


def test_config_accepts_edges():
    cfg = RunConfig.from_dict({"corpus": {"stats_limit": 0}, "stats": {"max_length": 1, "threshold": -0.5},
                               "steering": {"betas": [0, 1e3]}, "eval": {"limits": {"cloze": 1}}})
    assert cfg.steering.betas == [0, 1e3] and cfg.corpus.stats_limit == 0
