"""The argument types and shared options of the subcommands: every ``--layers`` parsed by
:func:`layer_spec` (the one layer spec of :class:`clas_lens.specs.LayerSpec`), numbers checked by
:mod:`clas_lens.checks` where they enter (:func:`number`), languages each once, the model options
(``--model``, ``--device``, ``--dtype``, ``--device-map``) and the steering options (``--layers``,
``--beta``, ``--gamma``), with the choices the run configuration allows
(:func:`clas_lens.config.allowed_values`).

>>> split_list(["en", "de,ru"])
['en', 'de', 'ru']
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable, Sequence

from clas_lens import checks
from clas_lens.config import DEVICE_MAPS, allowed_values
from clas_lens.errors import DataValidationError
from clas_lens.specs import LayerSpec
from clas_lens.vocab import DEFAULT_STEER_LAYERS


def device_map_arg(text: str) -> str | dict:
    """The argparse type of ``--device-map``: a placement name or a JSON table {module: device}.

    >>> device_map_arg("auto"), device_map_arg('{"": 0}')
    ('auto', {'': 0})
    """
    if text in DEVICE_MAPS:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not value:
        raise argparse.ArgumentTypeError(f"--device-map {text!r}: use one of {', '.join(DEVICE_MAPS)} or a JSON table")
    return value


def split_list(values: Sequence[str] | None) -> list[str] | None:
    """``["en,de", "ru"]`` -> ``["en", "de", "ru"]`` (space- or comma-separated options); a
    language given twice is refused.

    >>> split_list(["en,de", "ru"])
    ['en', 'de', 'ru']
    """
    if not values:
        return None
    return checks.unique_langs([v for item in values for v in item.split(",") if v], "--langs")


def number(check: Callable[..., Any], option: str, *, integer: bool = True, **kw: Any) -> Callable[[str], Any]:
    """An argparse type: the text as an int (or float), then ``check`` from
    :mod:`clas_lens.checks` (its message, with the allowed range, becomes the usage error).

    >>> number(checks.positive_int, "--batch-size")("8")
    8
    >>> number(checks.positive_int, "--batch-size")("8.5")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --batch-size = '8.5' is not allowed: use a whole number >= 1
    """

    def parse(text: str) -> Any:
        try:
            value: Any = int(text) if integer else float(text)
        except ValueError:
            value = text
        try:
            return check(value, option, **kw)
        except DataValidationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = option.lstrip("-").replace("-", "_")
    return parse


def langs_arg(text: str) -> list[str]:
    """The argparse type of a comma-separated ``--langs``: each language once.

    >>> langs_arg("en,de")
    ['en', 'de']
    """
    try:
        return checks.unique_langs([v.strip() for v in text.split(",") if v.strip()], "--langs")
    except DataValidationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def layer_spec(text: str) -> Any:
    """The argparse type of every ``--layers``: a :class:`~clas_lens.specs.LayerSpec` in the
    form the API takes (``"all"``, ``"last:k"``, ``"first:k"`` or a list of ints).

    >>> layer_spec("last:2"), layer_spec("0,2,-1"), layer_spec("1-3")
    ('last:2', [0, 2, -1], [1, 2, 3])
    """
    try:
        return LayerSpec.parse(text).to_json()
    except DataValidationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def figure_formats(text: str) -> tuple[str, ...]:
    """The argparse type of ``--formats``: comma-separated figure formats the config allows.

    >>> figure_formats("html,png")
    ('html', 'png')
    """
    allowed = allowed_values()["figures.formats"]
    out = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in out if f not in allowed]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"--formats {text!r}: use a comma list of {', '.join(allowed)}.")
    return out


def parse_param(text: str):
    """``--param NAME=VALUE`` -> ``(NAME, value)``, the value an int or float where it reads as one.

    >>> parse_param("prob_threshold=0.5"), parse_param("mode=fast")
    (('prob_threshold', 0.5), ('mode', 'fast'))
    """
    if "=" not in text:
        raise DataValidationError(f"--param {text!r}: use NAME=VALUE, e.g. --param prob_threshold=0.5")
    k, v = text.split("=", 1)
    for cast in (int, float):
        try:
            return k, cast(v)
        except ValueError:
            pass
    return k, v


def add_model_args(p: argparse.ArgumentParser, *, device_help: str = "'cpu', 'cuda', 'cuda:1', 'mps'") -> None:
    """Add ``--model``, ``--device``, ``--dtype`` and ``--device-map`` to ``p``."""
    p.add_argument("--model", default="default", help="'default', a local HF folder or a hub id")
    p.add_argument("--device", default="cpu", help=device_help)
    p.add_argument("--dtype", default="float32", choices=list(allowed_values()["model.dtype"]),
                   help="parameter dtype (default float32; bfloat16 for large models on a GPU)")
    p.add_argument("--device-map", type=device_map_arg, default=None,
                   help=f"place the model with an HF device map instead of --device: {', '.join(DEVICE_MAPS)} or a JSON table")


def add_steer_args(p: argparse.ArgumentParser) -> None:
    """Add the CLAS options ``--layers``, ``--beta`` and ``--gamma`` to ``p``."""
    p.add_argument("--layers", type=layer_spec, default=DEFAULT_STEER_LAYERS,
                   help=f"steered layers: 'last:k', 'first:k', 'a-b', '0,3,-1' or 'all' (default {DEFAULT_STEER_LAYERS})")
    p.add_argument("--beta", type=number(checks.finite_float, "--beta", integer=False), default=0.2,
                   help="boost of shared neurons (default 0.2)")
    p.add_argument("--gamma", type=number(checks.finite_float, "--gamma", integer=False), default=0.2,
                   help="suppression of specific neurons (default 0.2)")


def load_cli_model(args: argparse.Namespace, device: Any = None):
    """``load_model`` with the command's ``--model``, ``--device`` (or ``device``), ``--dtype``
    and ``--device-map``."""
    import clas_lens

    return clas_lens.load_model(args.model, device=device or args.device, dtype=args.dtype, device_map=args.device_map)
