"""Small file helpers: atomic writes, hashing. Used by every module that saves results.

A write goes to a temporary file in the same folder, is flushed to disk, then renamed over the
target, so a crash never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = atomic_write_bytes(p, b"hi"); p.read_bytes()
    b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync it; a torn last line is ignored by :func:`read_jsonl`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with open(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, skipping a final line left incomplete by a crash."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it to ``target`` only on success.

    >>> import tempfile, pathlib
    >>> t = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_directory(t) as d:
    ...     _ = (d / "a.txt").write_text("x")
    >>> sorted(p.name for p in t.iterdir())
    ['a.txt']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of a JSON-serialisable object (keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The one persistence pattern: tensors in a safetensors file, JSON metadata in its header
# ---------------------------------------------------------------------------------------------
_META_KEY = "clas_lens"
_CHECKSUM_KEY = "content_sha256"


def _tensors_digest(tensors: dict) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(name.encode("utf-8"))
        h.update(str(t.dtype).encode("ascii"))
        h.update(repr(tuple(t.shape)).encode("ascii"))
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: dict, meta: dict, fmt: str) -> Path:
    """Write ``tensors`` and JSON ``meta`` (tagged with format ``fmt`` and a content checksum)
    to one safetensors file, atomically. Read it back with :func:`load_tensors`.

    >>> import tempfile, pathlib, torch
    >>> p = save_tensors(pathlib.Path(tempfile.mkdtemp()) / "x.safetensors", {"a": torch.ones(2)}, {"k": 1}, "demo/1")
    >>> meta, t = load_tensors(p, "demo/1", "demo")
    >>> meta["k"], t["a"].tolist()
    (1, [1.0, 1.0])
    """
    from safetensors.torch import save as st_save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    tensors = {k: (v.reshape(1) if v.ndim == 0 else v) for k, v in tensors.items()}
    meta = {**meta, "format": fmt, _CHECKSUM_KEY: _tensors_digest(tensors)}
    data = st_save(tensors, metadata={_META_KEY: json.dumps(meta, default=str)})
    return atomic_write_bytes(path, data)


def load_tensors(path: str | os.PathLike, fmt: str, what: str) -> tuple[dict, dict]:
    """Read a file written by :func:`save_tensors`: ``(meta, tensors)``.

    Raises :class:`~clas_lens.errors.DataValidationError` naming the file when it is missing
    metadata, holds another format, or its tensors do not match the stored checksum (a
    corrupted or edited file). Files written before checksums existed load without the check.
    """
    from safetensors import safe_open

    from clas_lens.errors import DataValidationError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No {what} file at {path}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise DataValidationError(f"{path} is not a readable safetensors file ({e}).") from e
    if _META_KEY not in header:
        raise DataValidationError(f"{path} has no clas_lens metadata: it was not written by {what}.save().")
    try:
        meta = json.loads(header[_META_KEY])
    except json.JSONDecodeError as e:
        raise DataValidationError(f"{path}: its clas_lens metadata is not valid JSON ({e}).") from e
    if meta.get("format") != fmt:
        raise DataValidationError(f"{path} holds {meta.get('format')!r}, not {fmt!r} ({what}).")
    stored = meta.get(_CHECKSUM_KEY)
    if stored is not None and stored != _tensors_digest(tensors):
        raise DataValidationError(
            f"{path}: the tensors do not match their stored checksum (the file is corrupted or was "
            f"edited). Recompute the {what} and save it again."
        )
    return meta, tensors
