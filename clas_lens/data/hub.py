"""Access to Hugging Face datasets (FLORES-200, XNLI, XQuAD) and to local files in their schema.

Hub datasets load through ``datasets.load_dataset`` when the hub is reachable. Offline
(``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` set), or when the download fails, a
:class:`DatasetUnavailableError` explains how to pass local files instead (``data_files=``).
Local files (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``) are read with pandas, with
no ``datasets`` cache involved.

>>> import tempfile, pathlib, json
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
>>> _ = p.write_text(json.dumps({"id": 1, "text": "hi"}) + "\\n")
>>> read_records(p)
[{'id': 1, 'text': 'hi'}]
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from clas_lens.errors import ClasLensError, DataValidationError

_TRUE = {"1", "true", "yes", "on"}


class DatasetUnavailableError(ClasLensError, RuntimeError):
    """A hub dataset could not be loaded (offline or unreachable); the message says how to pass
    local files instead."""


def hub_offline() -> bool:
    """True when the environment forbids hub access (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``).

    >>> import os, unittest.mock
    >>> with unittest.mock.patch.dict(os.environ, {"HF_DATASETS_OFFLINE": "yes"}):
    ...     hub_offline()
    True
    """
    return any(
        os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def load_hub_records(
    path: str, name: str | None, split: str, *, what: str, local_hint: str
) -> list[dict[str, Any]]:
    """Rows of ``datasets.load_dataset(path, name, split=split)`` as dicts.

    Raises :class:`DatasetUnavailableError` with ``local_hint`` (how to pass local files) when
    offline or when loading fails.

    >>> import os, unittest.mock
    >>> with unittest.mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1"}):
    ...     load_hub_records("google/xquad", "xquad.de", "validation", what="XQuAD", local_hint="Pass data_files=.")
    Traceback (most recent call last):
    ...
    clas_lens.data.hub.DatasetUnavailableError: Cannot load XQuAD from the Hugging Face hub 'google/xquad' (config 'xquad.de'), split 'validation': the hub is disabled (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set). Pass data_files=.
    """
    where = f"{path!r}" + (f" (config {name!r})" if name else "") + f", split {split!r}"
    if hub_offline():
        raise DatasetUnavailableError(
            f"Cannot load {what} from the Hugging Face hub {where}: the hub is disabled "
            f"(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set). {local_hint}"
        )
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets comes with transformer-lens
        raise DatasetUnavailableError(
            f"Loading {what} from the hub needs the `datasets` package (pip install datasets). {local_hint}"
        ) from e
    try:
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as e:  # network errors, gated datasets, missing configs...
        raise DatasetUnavailableError(
            f"Could not load {what} from the Hugging Face hub {where}: {type(e).__name__}: {e}. "
            f"{local_hint}"
        ) from e
    return [dict(row) for row in ds]


def read_records(path: str | os.PathLike, *, keep_line: bool = False) -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` / ``.parquet`` file as dicts.

    JSON lines are parsed strictly: a malformed line raises :class:`DataValidationError`
    naming the file and line. ``keep_line=True`` adds each JSON line's number as ``"__line__"``
    (for error messages).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("id,text\\n1,hi\\n")
    >>> read_records(p)
    [{'id': 1, 'text': 'hi'}]
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"Data file {str(p)!r} does not exist.")
    suffix = "".join(p.suffixes[-2:]) if p.suffix == ".gz" else p.suffix
    suffix = suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl_strict(p, keep_line=keep_line)
    if suffix == ".json":
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return read_jsonl_strict(p, keep_line=keep_line)  # JSON lines saved as .json
        if isinstance(data, dict) and "data" in data and isinstance(data["data"], list):
            data = data["data"]
        if not isinstance(data, list):
            raise DataValidationError(f"{p}: expected a JSON list of records (or JSON lines).")
        return [dict(r) for r in data]
    import pandas as pd

    if suffix in (".csv", ".tsv"):
        df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
    elif suffix == ".parquet":
        df = pd.read_parquet(p)
    else:
        raise DataValidationError(
            f"Unsupported data file type {p.name!r}: use .jsonl, .json, .csv, .tsv or .parquet."
        )
    return [_plain(r) for r in df.to_dict(orient="records")]


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars / arrays (from parquet) -> Python values."""
    out = {}
    for k, v in record.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, dict):
            v = {kk: (vv.tolist() if hasattr(vv, "tolist") else vv) for kk, vv in v.items()}
        out[k] = v
    return out


def read_jsonl_strict(path: str | os.PathLike, *, keep_line: bool = False) -> list[dict[str, Any]]:
    """JSON lines of ``path``; blank lines are skipped, a malformed line is an error naming it.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
    >>> read_jsonl_strict(p, keep_line=True)
    [{'a': 1, '__line__': 1}, {'a': 2, '__line__': 3}]
    """
    p = Path(path)
    out = []
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataValidationError(
                    f"{p}:{lineno}: not valid JSON ({e.msg}); every line must be one JSON object."
                ) from None
            if not isinstance(rec, dict):
                raise DataValidationError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
            if keep_line:
                rec["__line__"] = lineno
            out.append(rec)
    return out


def resolve_data_files(
    data_files: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, Any],
    lang: str,
    *,
    n_langs: int,
) -> list[Path]:
    """The local file(s) holding language ``lang``.

    ``data_files`` is a mapping ``{lang: path or [paths]}``, a path pattern containing
    ``{lang}`` (e.g. ``"xnli/{lang}.jsonl"``), or -- when a single language is requested -- a
    plain path or list of paths.

    >>> [str(p) for p in resolve_data_files("xnli/{lang}.jsonl", "de", n_langs=2)]
    ['xnli/de.jsonl']
    """
    if isinstance(data_files, Mapping):
        if lang not in data_files:
            raise DataValidationError(
                f"data_files has no entry for language {lang!r}; it has {sorted(data_files)}."
            )
        val = data_files[lang]
        paths = [val] if isinstance(val, (str, os.PathLike)) else list(val)
    elif isinstance(data_files, (str, os.PathLike)) and "{lang}" in str(data_files):
        paths = [str(data_files).format(lang=lang)]
    else:
        if n_langs != 1:
            raise DataValidationError(
                "With several languages, data_files must be a mapping {lang: path} or a pattern "
                "containing '{lang}' (e.g. 'xnli/{lang}.jsonl')."
            )
        paths = [data_files] if isinstance(data_files, (str, os.PathLike)) else list(data_files)
    return [Path(p) for p in paths]
