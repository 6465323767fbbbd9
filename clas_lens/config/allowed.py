"""The allowed values of single config keys: :func:`allowed_values` (read from the registries
and constants of the modules that consume each value, never copied here: neuron methods from
:mod:`clas_lens.neurons`, sweep methods from :mod:`clas_lens.sweep.methods`, tasks from
:mod:`clas_lens.data.tasks`, sites and positions from :mod:`clas_lens.vocab`, layer specs and value
names from :mod:`clas_lens.specs`, per-language cluster metrics, poolings and projections from
:mod:`clas_lens.clusters`, figure formats from :mod:`clas_lens.plotting`), the keys checked by a
parser of their own, and :func:`check_value`, the check of one key's value against its default's type.

>>> check_value("stats.site", "mlp", dataclasses.field(default="post"))
Traceback (most recent call last):
...
clas_lens.errors.DataValidationError: config key 'stats.site' = 'mlp' is not allowed; allowed values: ['post', 'act']
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from clas_lens import clusters, plotting
from clas_lens.data.tasks import task_names
from clas_lens.errors import DataValidationError
from clas_lens.languages import check_lang_code
from clas_lens.models import DTYPES
from clas_lens.neurons.registry import method_names as neuron_methods
from clas_lens.specs import LayerSpec
from clas_lens.steering import SHARED_OPTIONS, SUPPRESS_OPTIONS
from clas_lens.sweep.grid import mu_value
from clas_lens.sweep.methods import method_names as sweep_methods
from clas_lens.vocab import POSITIONS, SITES


def allowed_values() -> dict[str, tuple]:
    """``{"section.key": allowed values}`` of every key with a fixed set, read from the module
    that consumes the value (on every call, so methods and tasks registered later count).
    Keys holding lists allow any subset. Language codes are not a fixed set: any code
    :func:`~clas_lens.languages.check_lang_code` knows passes (the corpus and each task then
    say which they have).

    >>> allowed_values()["steering.methods"][:5]
    ('clas', 'int_mu', 'deactivate', 'lape_deactivate', 'diffmean')
    """
    return {
        "model.dtype": tuple(DTYPES),
        "stats.site": tuple(SITES),
        "neurons.method": tuple(neuron_methods()),
        "neurons.control_method": tuple(neuron_methods()),
        "steering.methods": tuple(sweep_methods()),
        "steering.positions": tuple(POSITIONS),
        "steering.shared": tuple(SHARED_OPTIONS),
        "steering.suppress": tuple(SUPPRESS_OPTIONS),
        "eval.tasks": tuple(task_names()),
        "clusters.pooling": tuple(clusters.POOLINGS),
        "clusters.projection": tuple(clusters.PROJECTIONS),
        "clusters.divergence_metric": tuple(clusters.PER_LANGUAGE_METRICS),
        "figures.formats": ("html",) + tuple(plotting.STATIC_FORMATS),
    }


def _check_layers(key: str, value: Any) -> None:
    try:
        LayerSpec.parse(value)
    except DataValidationError as e:
        raise DataValidationError(f"config key {key!r}: {e}") from None


def _check_layer_options(key: str, value: Any) -> None:
    """One layer spec, or a list of layer-spec strings: options chosen among on dev."""
    several = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    for v in value if several else [value]:
        _check_layers(key, v)


def _check_mu_values(key: str, value: Any) -> None:
    for v in value if isinstance(value, list) else [value]:
        try:
            mu_value(v)
        except DataValidationError as e:
            raise DataValidationError(f"config key {key!r} has {v!r}: {e}") from None


def _check_langs(key: str, value: Any) -> None:
    if not isinstance(value, list):
        raise DataValidationError(f"config key {key!r} must be a list of language codes, got {value!r}")
    for lang in value:
        try:
            check_lang_code(lang)
        except DataValidationError as e:
            raise DataValidationError(f"config key {key!r} has {lang!r}: {e}") from None
    if not value:
        raise DataValidationError(f"config key {key!r} is empty: give at least one language")


def _check_task_table(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise DataValidationError(f"config key {key!r} must be a table {{task: ...}}, got {value!r}")
    for task, v in value.items():
        if task not in task_names():
            raise DataValidationError(f"config key '{key}.{task}': unknown task; allowed values: {list(task_names())}")
        if key == "eval.langs":
            _check_langs(f"{key}.{task}", v)
        elif not isinstance(v, dict):
            raise DataValidationError(f"config key '{key}.{task}' must be a table of load_task options, got {v!r}")


def _check_device(key: str, value: Any) -> None:
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type == "meta":
        raise DataValidationError(f"config key {key!r} = {value!r} is not a torch device; e.g. 'cpu', 'cuda', 'cuda:1', 'mps'")


#: ``model.device_map`` strings (Hugging Face / accelerate placements); a table maps modules to devices.
DEVICE_MAPS: tuple[str, ...] = ("auto", "balanced", "balanced_low_0", "sequential")


def _check_device_map(key: str, value: Any) -> None:
    if value == "" or value in DEVICE_MAPS:
        return
    if isinstance(value, dict) and value and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value.values()):
        return
    raise DataValidationError(
        f"config key {key!r} = {value!r} is not allowed; allowed values: '' (the whole model on model.device), "
        f"{list(DEVICE_MAPS)} or a table {{module = device}}"
    )


def _check_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataValidationError(f"config key {key!r} must be a number (a whole number >= 1), got {value!r}")


#: Keys checked by a parser of their own (the one parser of that kind of value).
_PARSED: dict[str, Callable[[str, Any], None]] = {
    "steering.layers": _check_layer_options,
    "clusters.layers": _check_layers,
    "steering.mu_values": _check_mu_values,
    "corpus.langs": _check_langs,
    "eval.langs": _check_task_table,
    "eval.options": _check_task_table,
    "model.device": _check_device,
    "model.device_map": _check_device_map,
    "stats.batch_size": _check_positive,
    "eval.batch_size": _check_positive,
    "clusters.batch_size": _check_positive,
}


def check_value(key: str, value: Any, f: dataclasses.Field) -> None:
    """Check the value of config key ``key`` (``"section.key"``), declared by dataclass field ``f``:
    its own parser if it has one, its allowed values, and the type of its default (a number, a
    bool, a list or a table)."""
    allowed = allowed_values()
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if key in _PARSED:
        _PARSED[key](key, value)
    if key in allowed:
        choices = list(allowed[key])
        if isinstance(default, list):
            if not isinstance(value, list):
                raise DataValidationError(f"config key {key!r} must be a list, got {value!r}")
            bad = [v for v in value if v not in choices]
            if bad:
                raise DataValidationError(
                    f"config key {key!r} has {bad[0]!r}, which is not allowed; allowed values: {choices}"
                )
        elif value not in choices:
            raise DataValidationError(f"config key {key!r} = {value!r} is not allowed; allowed values: {choices}")
    numeric = (int, float)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise DataValidationError(f"config key {key!r} must be true or false, got {value!r}")
    if isinstance(default, bool) or default is None:
        return
    if isinstance(default, numeric) and not (isinstance(value, numeric) and not isinstance(value, bool)):
        raise DataValidationError(f"config key {key!r} must be a number, got {value!r}")
    if isinstance(default, list) and not isinstance(value, list):  # "12" is not [1, 2]
        raise DataValidationError(f"config key {key!r} must be a list, e.g. {key.split('.')[1]} = {default!r}; got {value!r}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise DataValidationError(f"config key {key!r} must be a table, got {value!r}")
