"""What a run config names outside itself, checked before any model loads: the model folder
or hub id, the corpus, every task's data files and languages, and the device (``cuda`` must be
visible to a run; ``run --check`` reports it instead, so a GPU config checks on any machine).
:func:`check_inputs` returns what a run will use, one line each.
"""
from __future__ import annotations

from pathlib import Path

from clas_lens.config import RunConfig
from clas_lens.data.hub import resolve_data_files
from clas_lens.data.loaders import FLORES_NAMES
from clas_lens.data.tasks import task_spec
from clas_lens.errors import DataValidationError

__all__ = ["check_inputs", "device_status", "check_device"]


def check_inputs(cfg: RunConfig, *, devices: bool = True) -> list[str]:
    """Check what ``cfg`` names outside itself, before any model loads, and say what a run will
    use (one line each): the model (local folder, embedded, or a hub id fetched at run time),
    the corpus, every task's languages and data source, and -- with ``devices`` -- that the
    device exists (``torch.cuda.is_available()`` for ``cuda``). Local paths must exist (model
    folder, corpus files, ``data_files``); hub data is not fetched here.

    >>> check_inputs(RunConfig.from_dict({"eval": {"tasks": ["cloze"]}}))[0]
    'model: default (the embedded Gemma-3-270M), float32 on cpu'
    """
    m = cfg.model
    place = f"device_map {m.device_map!r}" if m.device_map else m.device
    notes: list[str] = []
    if m.name == "default":
        notes.append(f"model: default (the embedded Gemma-3-270M), {m.dtype} on {place}")
    elif Path(m.name).expanduser().exists():
        folder = Path(m.name).expanduser()
        if not (folder / "config.json").is_file():
            raise DataValidationError(f"config key 'model.name' = {m.name!r} is not a Hugging Face model folder (no config.json)")
        notes.append(f"model: local folder {folder}, {m.dtype} on {place}")
    elif m.name.startswith((".", "/", "~")) or m.name.count("/") > 1:
        raise DataValidationError(f"config key 'model.name' = {m.name!r}: no such folder")
    else:
        notes.append(f"model: hub id {m.name!r} (downloaded at run time, needs the network), {m.dtype} on {place}")
    if devices and not m.device_map:
        check_device(m.device)
    c = cfg.corpus
    if c.name != "default" and c.name.lower() not in FLORES_NAMES and not Path(c.name).expanduser().exists():
        raise DataValidationError(
            f"config key 'corpus.name' = {c.name!r}: no such file or folder; use 'default', 'flores' or a JSON-lines path"
        )
    drop = ", items missing a language dropped (reported)" if c.drop_incomplete else ""
    notes.append(f"corpus: {c.name}, {len(c.langs)} languages {c.langs}, anchor {c.anchor}{drop}")
    for task in cfg.eval.tasks:
        options = cfg.task_options(task)
        langs = list(dict.fromkeys([c.anchor, *cfg.task_langs(task)]))
        files = options.get("data_files")
        if files is not None:
            for lang in langs:
                for f in resolve_data_files(files, lang, n_langs=len(langs)):
                    if not Path(f).expanduser().is_file():
                        raise DataValidationError(f"config key 'eval.options.{task}.data_files': {lang!r} file {str(f)!r} does not exist")
            source = "local files"
        elif task_spec(task).hub_split:
            hub = [f"{k}={options[k]!r}" for k in ("dataset", "hub_config", "hub_split") if k in options]
            source = "the hub, fetched at run time (" + (", ".join(hub) or "the task's default dataset") + ")"
        else:
            source = "embedded"
        limit = cfg.eval.limits.get(task)
        notes.append(f"task {task}: {len(langs)} languages {langs}, {source}" + (f", first {limit} items" if limit else ""))
    return notes


def device_status(cfg: RunConfig) -> str:
    """One line: whether the device ``cfg`` asks for is usable here (``run --check`` prints it
    instead of refusing, so a GPU config can be checked on a machine without one; a run refuses).

    >>> device_status(RunConfig())
    'device: cpu'
    """
    m = cfg.model
    if m.device_map:
        return f"device: device_map {m.device_map!r} (accelerate places the model at run time)"
    try:
        check_device(m.device)
    except DataValidationError as e:
        return f"device: {m.device} is NOT usable here ({e}); a run on this machine would stop before loading the model"
    if m.device.startswith("cuda"):
        import torch

        return f"device: {m.device} ({torch.cuda.get_device_name(torch.device(m.device))}, {torch.cuda.device_count()} visible)"
    return f"device: {m.device}"


def check_device(device: str) -> None:
    """Raise :class:`~clas_lens.errors.DataValidationError` unless ``device`` is usable here.

    >>> check_device("cpu")
    """
    import torch

    d = torch.device(device)
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise DataValidationError(
                f"config key 'model.device' = {device!r} but no CUDA device is visible (torch.cuda.is_available() is "
                "False): run on a GPU machine, or set model.device = 'cpu' and model.dtype = 'float32'"
            )
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise DataValidationError(f"config key 'model.device' = {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise DataValidationError(f"config key 'model.device' = {device!r} but MPS is not available here")
