"""Argument checks and deprecated argument names (clas_lens/steering/checks.py)."""
from __future__ import annotations

import dataclasses
import warnings

import pytest

from clas_lens.errors import DataValidationError
from clas_lens.steering.checks import (
    check_lang,
    check_strength,
    model_layers,
    renamed_argument,
    take_renamed,
    upgrade_keys,
)


def test_check_strength_and_lang():
    assert check_strength("strength", 1) == 1.0
    with pytest.raises(DataValidationError, match="strength=nan must be a finite number"):
        check_strength("strength", float("nan"))
    check_lang("xx", None, "a tensor")
    with pytest.raises(DataValidationError, match="Unknown language 'xx' for the masks"):
        check_lang("xx", ["en"], "the masks")


def test_model_layers_uses_the_one_layer_spec(tiny_llama):
    assert model_layers(tiny_llama, None) == [0, 1]
    assert model_layers(tiny_llama, "last:4") == [0, 1]  # clamped to the model
    assert model_layers(tiny_llama, "last:1") == [1]
    assert model_layers(tiny_llama, -1) == [1] and model_layers(tiny_llama, "0-1") == [0, 1]
    with pytest.raises(DataValidationError, match="at least 1"):
        model_layers(tiny_llama, "last:0")
    with pytest.raises(DataValidationError, match="out of range"):
        model_layers(tiny_llama, [5])


def test_renamed_argument():
    @renamed_argument("scale", "strength")
    @dataclasses.dataclass
    class Edit:
        mask: int
        strength: float = 1.0

    with pytest.warns(DeprecationWarning, match="'scale' is deprecated.*'strength'") as rec:
        e = Edit(1, scale=2.0)
    assert rec[0].filename == __file__  # the warning points at the caller
    assert e.strength == 2.0 and Edit(1, 2.0).strength == 2.0
    with pytest.warns(DeprecationWarning):
        assert e.scale == 2.0
    with pytest.warns(DeprecationWarning):
        e.scale = 3.0
    assert e.strength == 3.0
    assert Edit.RENAMED == {"scale": "strength"}
    assert upgrade_keys(Edit, {"scale": 4.0}) == {"strength": 4.0}
    assert upgrade_keys(Edit, {"scale": 4.0, "strength": 5.0}) == {"scale": 4.0, "strength": 5.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert dataclasses.replace(e, mask=2).strength == 3.0
    with pytest.raises(DataValidationError, match="strength= only"):
        take_renamed({"scale": 1.0, "strength": 1.0}, "scale", "strength", "Edit")
