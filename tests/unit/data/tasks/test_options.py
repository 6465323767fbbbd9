"""data.tasks.options: the common and choice options, length_norm checks, check_options (the
deprecated alpha and the error listing are also tested through load_task in test_registry.py)."""
from __future__ import annotations

import pytest

from clas_lens.data.tasks import load_task
from clas_lens.data.tasks.options import CHOICE_OPTIONS, COMMON_OPTIONS, LENGTH_NORMS, check_length_norm, check_options
from clas_lens.errors import DataValidationError


def test_option_sets():
    assert {"split", "split_fractions", "seed", "n_boot", "confidence"} <= COMMON_OPTIONS
    assert CHOICE_OPTIONS == {"length_norm", "calibrate"} and LENGTH_NORMS == ("none", "tokens", "chars")


def test_length_norm_and_calibrate_on_choice_tasks():
    assert check_length_norm(None) == "none"
    with pytest.raises(DataValidationError, match="length_norm='bytes'"):
        check_length_norm("bytes")
    for name in ("nli", "cloze", "completion"):
        task = load_task(name, langs=["en"], length_norm="chars", calibrate=True)
        assert (task.length_norm, task.calibrate) == ("chars", True)
        assert task.config["length_norm"] == "chars" and task.config["calibrate"] is True
        assert all(it.content_free for it in task.items("en"))
        plain = load_task(name, langs=["en"])
        assert (plain.length_norm, plain.calibrate) == ("none", False)  # defaults keep today's scores
    assert load_task("nli", langs=["en"]).items("en")[0].content_free.startswith("Take the following as truth: N/A\n")
    assert load_task("cloze", langs=["en"]).items("en")[0].content_free == "N/A, N/A, N/A,"
    with pytest.raises(DataValidationError, match=r"Unknown option\(s\) \['length_norm'\] for task 'qa'"):
        load_task("qa", langs=["en"], length_norm="tokens")
    check_options("t", {"split": "dev", "split_fractions": None}, set())
