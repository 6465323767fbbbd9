"""Issue 14 across modules, property-based (hypothesis) where a property says it best: no input
reaches a result silently wrong (non-finite scores, undefined silhouette, zero-token languages),
every malformed value or file is refused with a DataValidationError (never a raw TypeError /
UnicodeError / JSONDecodeError), and no run name leaves its output folder. Covers checks, io,
config, scoring, lm_nll, generation, sweep, clusters and neurons together because each property
is about what crosses those modules."""
from __future__ import annotations

import argparse
import json
import math
import string
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clas_lens import checks
from clas_lens.cli import number
from clas_lens.config import RunConfig
from clas_lens.errors import DataValidationError, NonFiniteError
from clas_lens.io import load_tensors, read_json, read_jsonl, save_tensors

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.one_of(st.integers(-5, 5), st.floats(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
)


# --- names never leave the output folder -------------------------------------------------------

@FAST
@given(st.text(alphabet=string.printable + "./\\\x00é\udc80", max_size=12))
def test_a_run_name_is_refused_or_a_direct_child(name):
    try:
        checks.path_component(name, "run name")
    except DataValidationError:
        return
    out = Path("/srv/out")
    assert (out / name).parent == out and name not in (".", "..") and "/" not in name
    assert (out / name).resolve().parent == out.resolve()


# --- every config value is typed and in range, or refused with DataValidationError --------------

NUMERIC_KEYS = [
    ("stats", "batch_size"), ("stats", "threshold"), ("stats", "max_length"), ("corpus", "stats_limit"),
    ("corpus", "cluster_limit"), ("steering", "betas"), ("steering", "gammas"), ("steering", "alphas"),
    ("eval", "n_boot"), ("eval", "confidence"), ("run", "seed"), ("model", "threads"), ("eval", "limits"),
    ("corpus", "langs"), ("run", "name"),
]


@FAST
@given(key=st.sampled_from(NUMERIC_KEYS), value=anything)
def test_config_values_are_checked_where_they_enter(key, value):
    section, name = key
    try:
        cfg = RunConfig.from_dict({section: {name: value}})
    except DataValidationError:
        return
    got = getattr(getattr(cfg, section), name)
    if name in ("batch_size", "n_boot"):
        assert type(got) is int and got >= 1
    elif name in ("stats_limit", "cluster_limit", "seed", "threads"):
        assert type(got) is int and got >= 0
    elif name == "max_length":
        assert got is None or (type(got) is int and got >= 1)
    elif name in ("threshold",):
        assert math.isfinite(got) and not isinstance(got, bool)
    elif name == "confidence":
        assert 0 < got < 1
    elif name in ("betas", "gammas", "alphas"):
        assert isinstance(got, list) and got and all(math.isfinite(v) and not isinstance(v, bool) for v in got)
    elif name == "limits":
        assert all(type(v) is int and v >= 1 for v in got.values())
    elif name == "langs":
        assert isinstance(got, list) and len(set(got)) == len(got)
    elif name == "name":
        checks.path_component(got, "name")


@FAST
@given(st.text(max_size=10))
def test_cli_number_types_refuse_with_the_range(text):
    for check, kw, integer in ((checks.positive_int, {}, True), (checks.non_negative_int, {}, True),
                               (checks.finite_float, {}, False)):
        try:
            v = number(check, "--x", integer=integer, **kw)(text)
        except argparse.ArgumentTypeError as e:
            assert "--x" in str(e) and "use" in str(e)
            continue
        assert math.isfinite(v)
        if check is checks.positive_int:
            assert type(v) is int and v >= 1
        if check is checks.non_negative_int:
            assert type(v) is int and v >= 0


# --- files: a damaged file is a DataValidationError, never a raw decoding error -----------------

@FAST
@given(st.binary(max_size=60))
def test_read_json_of_any_bytes(tmp_path, data):
    p = tmp_path / "run.json"
    p.write_bytes(data)
    try:
        read_json(p)
    except DataValidationError as e:
        assert str(p) in str(e)


@FAST
@given(st.lists(st.one_of(st.binary(max_size=20), st.builds(lambda d: json.dumps(d).encode(),
                                                             st.dictionaries(st.text(max_size=3), st.integers()))),
                max_size=5),
       st.booleans())
def test_read_jsonl_of_any_lines(tmp_path, lines, newline_at_end):
    p = tmp_path / "cells.jsonl"
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    p.write_bytes(data)
    try:
        records = read_jsonl(p)
    except DataValidationError as e:
        assert "cells.jsonl, line" in str(e)
        return
    good = [json.loads(x) for x in lines if _is_json(x)]
    assert records == good or records == good[:-1] or len(records) <= len(good)


def _is_json(b: bytes) -> bool:
    try:
        json.loads(b.decode("utf-8"))
        return bool(b.strip())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


@FAST
@given(st.integers(0, 10**6), st.integers(0, 7))
def test_any_flipped_bit_in_tensor_data_is_detected(tmp_path, where, bit):
    t = {"a": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(5, dtype=torch.float64)}
    p = save_tensors(tmp_path / "t.safetensors", t, {"langs": ["en"]}, "demo/1")
    data = bytearray(p.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    i = header_end + where % (len(data) - header_end)
    data[i] ^= 1 << bit
    p.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="checksum"):
        load_tensors(p, "demo/1", "demo")


@FAST
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=6))
def test_require_finite_raises_exactly_for_non_finite(values):
    t = torch.tensor(values, dtype=torch.float32)
    if all(math.isfinite(v) for v in values):
        assert checks.require_finite(t, "x") is t
    else:
        with pytest.raises(NonFiniteError, match="NaN or infinite"):
            checks.require_finite(t, "x")


# --- non-finite model outputs are never scored -----------------------------------------------

@pytest.fixture(scope="module")
def steered():
    from clas_lens.steering import ClasSteering, MaskSet
    from clas_lens.testing import tiny_model

    model = tiny_model("llama")
    g = torch.Generator().manual_seed(0)
    ns = MaskSet(langs=["en", "de"], specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
                 categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    return model, ns, ClasSteering(ns, target_lang="de", beta=1e300, layers=[0, 1])


def test_overflowing_steering_is_an_error_not_a_prediction(steered):
    from clas_lens.generation import generate
    from clas_lens.lm_nll import sentence_nll
    from clas_lens.scoring import option_logprobs, score_choices
    from clas_lens.steering import steer

    model, _, clas = steered
    with steer(model, clas):
        with pytest.raises(NonFiniteError, match="option log-probabilities"):
            score_choices(model, [("Der Hund", [" schläft", " bellt"])])
        with pytest.raises(NonFiniteError):
            option_logprobs(model, "Der Hund", [" schläft", " bellt"])
        with pytest.raises(NonFiniteError, match="sentence_nll"):
            sentence_nll(model, ["Der Hund schläft"])
        with pytest.raises(NonFiniteError, match="next-token logits"):
            generate(model, ["Der Hund"], max_new_tokens=2)
    assert torch.isfinite(option_logprobs(model, "Der Hund", [" schläft"])).all()  # unsteered: fine


def test_a_sweep_marks_a_non_finite_cell_failed_and_goes_on(steered, tmp_path):
    from clas_lens.sweep import SweepGrid, load_sweep, run_sweep

    model, ns, _ = steered
    grid = SweepGrid(langs=["de"], tasks=["cloze"], betas=[0.5, 1e300], limit=2, n_boot=50)
    with pytest.warns(RuntimeWarning, match=r"beta=1e\+300.*failed: .*NaN or infinite"):
        df = run_sweep(model, tmp_path, grid, neurons=ns, progress=False)
    bad = df[df.beta == 1e300]
    good = df[(df.beta == 0.5) | (df.method == "unsteered")]
    assert len(bad) > 0 and bad.value.isna().all() and bad["diff"].isna().all()
    assert bad.error.str.contains("NaN or infinite").all()
    assert good.value.notna().all() and good.error.isna().all()
    assert df.attrs["n_cells"] == df.attrs["n_total"]  # recorded, not dropped
    again = run_sweep(model, tmp_path, grid, neurons=ns, progress=False)  # resume: nothing recomputed
    assert len(again) == len(load_sweep(tmp_path)) == len(df)


# --- undefined statistics are NaN or refused, not 0 / "never active" ----------------------------

def _reps(vectors):
    from clas_lens.clusters import Reps

    n = vectors.shape[1] // 2
    return Reps(vectors=vectors, langs=["en"] * n + ["de"] * n, ids=[f"s{i}" for i in range(n)] * 2, layers=[0],
                pooling="mean")


@pytest.mark.parametrize("fill", [1.0, float("nan")])
def test_silhouette_of_constant_or_nan_vectors_is_nan(fill):
    from clas_lens.clusters import cluster_metrics

    reps = _reps(torch.full((1, 6, 4), fill))
    with pytest.warns(RuntimeWarning, match="silhouette_.* is NaN"):
        df = cluster_metrics(reps, metrics=("silhouette_cosine", "silhouette_euclidean"))
    assert df.value.isna().all()
    ok = cluster_metrics(_reps(torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0))),
                         metrics=("silhouette_cosine",))
    assert ok.value.notna().all() and (ok.value.abs() <= 1).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16))
def test_silhouette_is_in_range_or_nan(seed):
    from clas_lens.clusters import cluster_metrics

    rng = np.random.default_rng(seed)
    v = torch.tensor(rng.integers(-1, 2, size=(1, 6, 3)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = cluster_metrics(_reps(v), metrics=("silhouette_euclidean",)).value
    assert ((values.abs() <= 1) | values.isna()).all()


def test_a_language_with_zero_tokens_is_refused():
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats
    from clas_lens.testing import tiny_model

    stats = collect_stats(tiny_model("gemma3"), {"en": ["a cat", "one two"], "de": ["eine Katze", "eins zwei"], "sw": ["", ""]},
                          site="act")
    assert stats.n_tokens("sw") == 0
    with pytest.raises(DataValidationError, match=r"no tokens of language 'sw'.*leave it out"):
        identify_neurons(stats, "clas")
    assert identify_neurons(stats, "clas", criterion="quantile", langs=["en", "de"]).langs == ["en", "de"]


# --- API entry points check their numbers ---------------------------------------------------

@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: __import__("clas_lens.stats", fromlist=["x"]).collect_stats(m, {"en": ["a"], "de": ["b"]},
                                                                                threshold=float("nan")), "threshold"),
        (lambda m: __import__("clas_lens.stats", fromlist=["x"]).collect_stats(m, {"en": ["a"], "de": ["b"]},
                                                                                max_length=0), "max_length = 0"),
        (lambda m: __import__("clas_lens.stats", fromlist=["x"]).collect_stats(m, {"en": ["a"], "de": ["b"]},
                                                                                batch_size=8.5), "batch_size = 8.5"),
        (lambda m: __import__("clas_lens.generation", fromlist=["x"]).generate(m, ["a"], max_new_tokens=-1),
         "max_new_tokens = -1"),
        (lambda m: __import__("clas_lens.lm_nll", fromlist=["x"]).sentence_nll(m, ["a"], batch_size=0), "batch_size = 0"),
    ],
)
def test_api_numbers_are_checked(call, message):
    from clas_lens.testing import tiny_model

    with pytest.raises(DataValidationError, match=message):
        call(tiny_model("gemma3"))


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"betas": "12"}, "SweepGrid.betas = '12'"), ({"betas": [float("nan")]}, r"SweepGrid.betas\[0\] = nan"),
     ({"limit": -1}, "SweepGrid.limit = -1"), ({"limit": 2.5}, "SweepGrid.limit = 2.5"),
     ({"n_boot": 0}, "SweepGrid.n_boot = 0"), ({"langs": ["de", "de"]}, "each language once")],
)
def test_sweep_grid_numbers_are_checked(kw, message):
    from clas_lens.sweep import SweepGrid

    with pytest.raises(DataValidationError, match=message):
        SweepGrid(**{"langs": ["de"], **kw})


def test_task_options_are_checked():
    from clas_lens.data.tasks import load_task

    with pytest.raises(DataValidationError, match="max_new_tokens' = -1 is not allowed: use a whole number >= 1"):
        load_task("qa", langs=["en"], max_new_tokens=-1)
    with pytest.raises(DataValidationError, match="max_new_tokens' = 2.5"):
        load_task("qa", langs=["en"], max_new_tokens=2.5)


# --- identity is the weights' bytes, hashed once --------------------------------------------------

def test_model_identity_is_the_weights_and_is_cached(tmp_path, monkeypatch):
    import os

    import clas_lens.models as models
    from clas_lens.testing import tiny_model_folder

    monkeypatch.setenv("CLAS_LENS_CACHE", str(tmp_path / "cache"))
    folder = tiny_model_folder("llama", folder=tmp_path / "m")
    weights = models.weight_files(folder)
    assert weights and all(f.suffix in (".safetensors", ".bin") for f in weights)
    for f in weights:  # old enough for the (path, size, mtime) cache to trust
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns - 10**10))
    models._FINGERPRINTS.clear()
    first = models.folder_fingerprint(folder)
    model = models.load_model(folder)
    assert models.model_info(model).weights_sha256 == first
    (folder / "clas_lens_conversion.json").write_text(json.dumps({"sha256": "0" * 64}))  # a marker does not count
    monkeypatch.setattr(models, "sha256_file", lambda p: pytest.fail("the weights were hashed again"))
    assert models.folder_fingerprint(folder) == first  # memory cache
    models._FINGERPRINTS.clear()
    assert models.folder_fingerprint(folder) == first  # disk cache (another process)
    monkeypatch.undo()
    monkeypatch.setenv("CLAS_LENS_CACHE", str(tmp_path / "cache"))
    data = bytearray(weights[0].read_bytes())
    data[-1] ^= 1  # one flipped bit in the weights: another identity
    weights[0].write_bytes(bytes(data))
    assert models.folder_fingerprint(folder) != first
