"""Reading a run config: :func:`load` (a TOML file with ``KEY=VALUE`` overrides applied before
the checks), :func:`parse_override` and :func:`default_config_path` (the embedded demo config).

>>> default_config_path().name
'demo.toml'
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from clas_lens.config.sections import RunConfig
from clas_lens.errors import DataValidationError


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) < 2 or not all(parts):
        raise DataValidationError(f"override {dotted!r}: use section.key (e.g. model.device), or section.key.sub")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise DataValidationError(f"override {dotted!r}: {part!r} is not a table")
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, value)``: the value in TOML syntax (a bare word is a string).

    >>> parse_override("model.device=cuda"), parse_override("steering.betas=[0.1, 0.2]")
    (('model.device', 'cuda'), ('steering.betas', [0.1, 0.2]))
    """
    if "=" not in text:
        raise DataValidationError(f"override {text!r}: use KEY=VALUE, e.g. model.dtype=bfloat16")
    key, raw = (x.strip() for x in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | tuple = ()) -> RunConfig:
    """The run config of TOML file ``path`` (default: the embedded demo config) with
    ``overrides`` applied before it is checked: ``{"model.device": "cuda"}`` or
    ``["model.device=cuda", "eval.langs.xquad=['en', 'de']"]`` (see :func:`parse_override`).

    >>> load(overrides=["model.dtype=bfloat16"]).model.dtype
    'bfloat16'
    """
    path = config_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataValidationError(f"{path} is not valid TOML (UTF-8 text): {e}") from e
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(o) for o in overrides]
    for key, value in items:
        _set_dotted(data, key, value)
    return RunConfig.from_dict(data)


def default_config_path() -> Path:
    """The embedded demo config shipped with the package."""
    return packaged_configs()["demo"]


def packaged_configs() -> dict[str, Path]:
    """The configs shipped with the package, by name (``demo``, ``paper_llama31_8b``, ...).

    >>> sorted(packaged_configs())
    ['demo', 'paper_llama31_8b', 'paper_qwen25_7b']
    """
    return {p.stem: p for p in sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))}


def config_path(path: str | Path | None) -> Path:
    """The config file ``path`` names: an existing file, else a packaged config's name
    (``paper_llama31_8b`` or ``paper_llama31_8b.toml``); None is the demo config. Anything
    else is an error that lists the packaged names.

    >>> config_path("paper_qwen25_7b").name, config_path(None).name
    ('paper_qwen25_7b.toml', 'demo.toml')
    """
    if path is None:
        return default_config_path()
    p = Path(path)
    if p.exists():
        return p
    packaged = packaged_configs()
    name = p.name.removesuffix(".toml")
    if p.parent == Path(".") and name in packaged:
        return packaged[name]
    raise DataValidationError(
        f"config file {p} does not exist; give a TOML file, or the name of a packaged config: {sorted(packaged)}"
    )
