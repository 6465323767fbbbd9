"""Small file helpers: atomic writes, hashing. Used by every module that saves results.

A write goes to a temporary file in the same folder (``.<name>.<random>.tmp``, unique per
write, so concurrent writers never collide), is flushed to disk, then renamed over the target,
so a crash never leaves a half-written file behind; a write killed midway leaves only its
temporary, which :func:`remove_temporaries` (run at the start of every pipeline run) deletes.
Files are created with the permissions the user's umask gives (``0o666 & ~umask``), like any
other program's. Files that are appended to or repaired in place are opened without following
a symbolic link (:func:`open_nofollow`), so a link planted in a result folder cannot redirect a
write to a file elsewhere. Malformed JSON (truncated, invalid UTF-8) raises
:class:`~clas_lens.errors.DataValidationError` naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from clas_lens.errors import DataValidationError, RunDirectoryError

#: Names of the temporaries of :func:`atomic_write_bytes` (``.<name>.<8 random>.tmp``) and of
#: :func:`atomic_directory` (``.<name>.partial-<8 random>``, ``.<name>.old-<8 random>``).
TEMPORARY_NAME = re.compile(r"^\..+\.(?:[a-z0-9_]{8}\.tmp|(?:partial|old)-[a-z0-9_]{8})$")


def current_umask() -> int:
    """The process's umask (read from ``/proc`` where it can be, so no thread ever sees it changed).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def symlink_error(path: str | os.PathLike) -> RunDirectoryError:
    """The error for a symbolic link where clas_lens reads or writes its own files."""
    return RunDirectoryError(
        f"{path} is a symbolic link; clas_lens does not follow links inside its result folders (a write "
        "through it could change a file elsewhere). Replace the link by a real file or folder, or use a new "
        "run name."
    )


def open_nofollow(path: str | os.PathLike, mode: str = "rb"):
    """Open ``path`` in binary ``mode`` (``"rb"``, ``"rb+"``, ``"ab"``) without following a
    symbolic link at its last component (:func:`symlink_error` if it is one).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.log"
    >>> with open_nofollow(p, "ab") as f:
    ...     _ = f.write(b"hi")
    >>> (p.parent / "link").symlink_to(p)
    >>> open_nofollow(p.parent / "link", "ab")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.errors.RunDirectoryError: .../link is a symbolic link; ...
    """
    flags = {"rb": os.O_RDONLY, "rb+": os.O_RDWR, "ab": os.O_WRONLY | os.O_APPEND | os.O_CREAT}[mode]
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: O_NOFOLLOW on a link, on BSDs
            raise symlink_error(path) from None
        raise
    return os.fdopen(fd, mode)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a link at ``path`` is replaced, never followed);
    return the path. The file gets ``0o666 & ~umask`` permissions.

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
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
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
    """Write UTF-8 ``text`` atomically (text with lone surrogates, which UTF-8 cannot hold, is
    refused with :class:`~clas_lens.errors.DataValidationError`)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataValidationError(
            f"Cannot write {path}: the text holds {text[e.start:e.end]!r} at character {e.start}, a lone "
            "surrogate that UTF-8 cannot store. Remove it from the input (a name, a corpus text) and retry."
        ) from None
    return atomic_write_bytes(path, data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file written by :func:`atomic_write_json`.

    A file that is not valid UTF-8 or not complete JSON raises
    :class:`~clas_lens.errors.DataValidationError` naming it and the fix.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> _ = p.write_text('{"config": ')
    >>> read_json(p, "run record")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: .../run.json is not a valid run record: ... (truncated or edited?). ...
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        cause = f"byte {e.start} is not valid UTF-8"
    except json.JSONDecodeError as e:
        cause = f"not complete JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    raise DataValidationError(
        f"{path} is not a valid {what}: {cause} (truncated or edited?). Restore it, or remake it "
        "(for a run directory: rerun with --restart, or use a new run name)."
    )


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync it; a torn last line is ignored by :func:`read_jsonl`.
    A link at ``path`` is refused (:func:`open_nofollow`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with open_nofollow(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines, skipping a final line left incomplete by a crash.

    A malformed line before the last one (not a torn append: the file was edited or damaged)
    raises :class:`~clas_lens.errors.DataValidationError` naming the file and the line. A link
    at ``path`` is refused.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cells.jsonl"
    >>> _ = p.write_bytes(b'{"a": 1}\\n{"a": 2}\\n{"a"')
    >>> read_jsonl(p)
    [{'a': 1}, {'a': 2}]
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return []
    with open_nofollow(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    out = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if i == last and not data.endswith(b"\n"):  # a torn final append
                continue
            raise DataValidationError(
                f"{path}, line {i + 1}: not a valid JSON record ({e.__class__.__name__}: {e}). The file was "
                "edited or damaged; delete that line (its result is recomputed), or rerun with --restart."
            ) from None
    return out


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed atomic writes left anywhere under ``folder``
    (:data:`TEMPORARY_NAME`); links are not followed. Returns what was removed.

    Call it only while no other process writes into ``folder`` (the pipeline holds the run
    directory's lock when it does).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / ".stats.safetensors.ab12cd_9.tmp").write_bytes(b"half"); _ = (d / "keep.tmp").write_text("x")
    >>> [p.name for p in remove_temporaries(d)], sorted(p.name for p in d.iterdir())
    (['.stats.safetensors.ab12cd_9.tmp'], ['keep.tmp'])
    """
    removed: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in list(dirs):
            p = Path(root) / name
            if TEMPORARY_NAME.match(name):
                dirs.remove(name)
                if p.is_symlink():
                    p.unlink()
                else:
                    shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        for name in files:
            if TEMPORARY_NAME.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (Path(root) / name).unlink()
                    removed.append(Path(root) / name)
    return removed


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it to ``target`` only on success.

    An existing ``target`` is moved aside under a unique name, then deleted, so concurrent
    writers of one target never crash each other: the last to finish wins, and every reader
    sees one complete folder.

    >>> import tempfile, pathlib
    >>> t = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_directory(t) as d:
    ...     _ = (d / "a.txt").write_text("x")
    >>> sorted(p.name for p in t.iterdir())
    ['a.txt']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-", suffix=""))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        for _ in range(100):
            if target.is_symlink():
                raise symlink_error(target)
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
                try:
                    os.replace(target, old / "x")
                except FileNotFoundError:  # another writer moved it first
                    pass
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.replace(tmp, target)
                break
            except OSError as e:  # another writer put its folder there in between: move that aside too
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        else:  # pragma: no cover - a hundred writers in a row
            raise OSError(f"Could not replace {target}: other writers kept replacing it.")
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


def load_tensors(
    path: str | os.PathLike, fmt: str, what: str, *, required: tuple[str, ...] = (), tensors_required: tuple[str, ...] = ()
) -> tuple[dict, dict]:
    """Read a file written by :func:`save_tensors`: ``(meta, tensors)``.

    Raises :class:`~clas_lens.errors.DataValidationError` naming the file when it is missing
    metadata (or one of the ``required`` metadata fields, or one of the ``tensors_required``), holds
    another format, or its tensors do not match the stored checksum (a corrupted or edited file;
    one flipped bit is enough). Files written before checksums existed load without the check.

    >>> import tempfile, pathlib, torch
    >>> p = save_tensors(pathlib.Path(tempfile.mkdtemp()) / "x.safetensors", {"a": torch.ones(2)}, {"k": 1}, "demo/1")
    >>> load_tensors(p, "demo/1", "demo", required=("langs",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: .../x.safetensors: its metadata has no field 'langs', ...
    """
    from safetensors import safe_open

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
    missing = [k for k in required if k not in meta]
    if missing:
        raise DataValidationError(
            f"{path}: its metadata has no field {missing[0]!r}, which every {what} file has (the file is damaged "
            f"or was written by another program). Recompute the {what} and save it again."
        )
    absent = [k for k in tensors_required if k not in tensors]
    if absent:
        raise DataValidationError(
            f"{path}: it has no tensor {absent[0]!r}, which this {what} file should hold (the file is damaged "
            f"or was written by another program). Recompute the {what} and save it again."
        )
    return meta, tensors
