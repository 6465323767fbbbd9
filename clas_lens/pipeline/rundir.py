"""The run directory: its marker, its lock, its identity (``run.json``), CSV tables and the saved sweep.

A run directory is ``[run] out_dir / [run] name``; the name is one plain folder name
(:func:`run_dir_of`), so a run never writes outside ``out_dir``. It is created with a marker
file (:data:`MARKER`, recording the clas_lens release that made it); a folder without that marker
is never written into, emptied or deleted (:class:`~clas_lens.errors.RunDirectoryError`).

While a run works in it, the directory is locked (:class:`~clas_lens.pipeline.lock.RunLock`): a second run
refuses, naming the holder's process id and start time; the lock of a process that died is
detected and taken over. A new holder first deletes the temporaries that writes killed midway
left behind (:func:`clas_lens.io.remove_temporaries`) and refuses a directory that holds a
symbolic link anywhere (:func:`check_no_symlinks`): nothing inside a run directory is followed
through a link.

``run.json`` records the resolved config, its identity (:meth:`RunConfig.identity`), package
versions, the model identity and the git commit. A different config, or a directory made by
another clas_lens release, is refused unless ``restart=True``, which empties the directory (its
marker and lock kept) and starts again.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from clas_lens.checks import path_component
from clas_lens.config import RunConfig
from clas_lens.errors import DataValidationError, MismatchError, NotARunDirectoryError, RunDirectoryError
from clas_lens.io import atomic_write_json, atomic_write_text, open_nofollow, read_json, remove_temporaries, symlink_error
from clas_lens.pipeline.lock import LOCK, RunLock
from clas_lens.vocab import canonical_condition

__all__ = [
    "MARKER",
    "LOCK",
    "RUN_DIR_FORMAT",
    "git_commit",
    "package_versions",
    "clas_lens_version",
    "write_csv",
    "run_dir_of",
    "check_no_symlinks",
    "read_marker",
    "prepare_run_dir",
    "RunLock",
    "check_compatible",
    "check_run_dir",
    "claim_run_dir",
    "load_run_config",
    "read_sweep_csv",
]

#: The marker file every run directory gets when it is created (JSON: format, release, time).
MARKER = ".clas_lens_run"
RUN_DIR_FORMAT = "clas_lens.run_dir/1"
Log = Callable[[str], None]


def git_commit() -> str | None:
    """The commit of the clas_lens checkout (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    """Versions of clas_lens and the libraries its results depend on.

    >>> sorted(package_versions())[:2]
    ['clas_lens', 'torch']
    """
    out = {}
    for pkg in ("clas_lens", "torch", "transformers", "transformer-lens"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def clas_lens_version() -> str:
    """The installed clas_lens release (what a run directory's marker records).

    >>> clas_lens_version().count(".") >= 1
    True
    """
    return package_versions()["clas_lens"]


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` (without its attrs) as CSV, atomically."""
    df = df.copy()
    df.attrs = {}
    return atomic_write_text(path, df.to_csv(index=False))


def run_dir_of(cfg: RunConfig) -> Path:
    """``out_dir / name`` of ``cfg``, the name checked to be one plain folder name (no ``/``,
    not ``.``, ``..`` or empty, not absolute), so the run stays inside ``out_dir``.

    >>> run_dir_of(RunConfig.from_dict({"run": {"name": "demo", "out_dir": "runs"}})).as_posix()
    'runs/demo'
    """
    path_component(cfg.run.name, "config key 'run.name'")
    return Path(cfg.run.out_dir) / cfg.run.name


def check_no_symlinks(run_dir: str | os.PathLike) -> None:
    """Refuse (:class:`~clas_lens.errors.RunDirectoryError`) a run directory that is, or holds
    anywhere inside it, a symbolic link: clas_lens reads, appends to and repairs the files of
    its run directories, and must never do so to a file elsewhere."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise symlink_error(run_dir)
    for root, dirs, files in os.walk(run_dir, followlinks=False):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                raise symlink_error(p)


def read_marker(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of ``run_dir`` (None when it has none); a damaged one raises
    :class:`~clas_lens.errors.DataValidationError`."""
    path = Path(run_dir) / MARKER
    if path.is_symlink():
        raise symlink_error(path)
    if not path.is_file():
        return None
    with open_nofollow(path, "rb") as f:
        raw = f.read()
    try:
        marker = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        marker = None
    if not isinstance(marker, dict) or marker.get("format") != RUN_DIR_FORMAT or "clas_lens" not in marker:
        raise DataValidationError(
            f"{path} is damaged (expected JSON with 'format' = {RUN_DIR_FORMAT!r} and the field 'clas_lens'). "
            "Use a new run name, or delete the run directory yourself if it is yours."
        )
    return marker


def _write_marker(run_dir: Path) -> None:
    atomic_write_json(
        run_dir / MARKER,
        {"format": RUN_DIR_FORMAT, "clas_lens": clas_lens_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    )


def prepare_run_dir(run_dir: str | os.PathLike) -> Path:
    """Create ``run_dir`` with its :data:`MARKER` (or adopt an empty folder), or check that an
    existing one is a run directory. A non-empty folder without the marker -- anything that is
    not a clas_lens run directory -- raises :class:`~clas_lens.errors.RunDirectoryError`, and
    nothing in it is changed.

    >>> import tempfile, pathlib
    >>> d = prepare_run_dir(pathlib.Path(tempfile.mkdtemp()) / "demo")
    >>> read_marker(d)["format"]
    'clas_lens.run_dir/1'
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise symlink_error(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} exists and is not a folder; use another run name ([run] name = ...).")
    if run_dir.exists() and read_marker(run_dir) is not None:
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        legacy = " (it has a run.json: a run directory of a release before markers)" if (run_dir / "run.json").exists() else ""
        raise RunDirectoryError(
            f"{run_dir} exists but is not a clas_lens run directory: it has no {MARKER} marker{legacy}. Nothing in "
            "it was changed or deleted (--restart deletes only run directories clas_lens made). Use another run "
            "name ([run] name = ...) or out_dir, or move the folder away yourself."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_marker(run_dir)
    return run_dir


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    meta = read_json(run_dir / "run.json", "run record (run.json)")
    for key in ("config", "config_sha256"):
        if not isinstance(meta, dict) or key not in meta:
            raise DataValidationError(
                f"{run_dir / 'run.json'} has no field {key!r} (damaged or edited). Rerun with --restart (deletes "
                "the run's results) or use a new run name."
            )
    return meta


def _empty_run_dir(run_dir: Path) -> None:
    """Delete everything in a run directory but its marker and lock (links are deleted, not followed)."""
    for entry in run_dir.iterdir():
        if entry.name in (MARKER, LOCK):
            continue
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
        else:
            shutil.rmtree(entry)


def check_compatible(cfg: RunConfig, run_dir: Path) -> str:
    """Read-only: refuse a run directory made by another clas_lens release (never silently
    relabelled) or holding a run of another config (:class:`~clas_lens.errors.MismatchError`,
    naming the fix); return the config's identity."""
    identity = cfg.identity()
    marker = read_marker(run_dir) or {}
    made_by, mine = marker.get("clas_lens"), clas_lens_version()
    if made_by != mine:
        raise MismatchError(
            f"{run_dir} was made by clas_lens {made_by}, this is clas_lens {mine}: results of two releases are "
            "not mixed or relabelled. Rerun with --restart (deletes its results) or use a new run name "
            "([run] name = ...)."
        )
    if (run_dir / "run.json").exists():
        old = _read_run_json(run_dir)
        if old["config_sha256"] != identity:
            raise MismatchError(
                f"{run_dir} holds a run with a different config. Use another run name "
                "([run] name = ...), or pass --restart to delete it and start over."
            )
    return identity


def check_run_dir(cfg: RunConfig, run_dir: Path, restart: bool) -> str:
    """Check a claimed run directory against ``cfg`` (:func:`check_compatible`) and return the
    config's identity; with ``restart`` empty it instead (marker and lock kept). Hold its lock
    (:func:`claim_run_dir`) first."""
    if restart:
        _empty_run_dir(run_dir)
        _write_marker(run_dir)
        return cfg.identity()
    return check_compatible(cfg, run_dir)


@contextlib.contextmanager
def claim_run_dir(cfg: RunConfig, *, restart: bool = False, log: Log = print) -> Iterator[tuple[Path, str]]:
    """Create or check ``cfg``'s run directory, hold its lock, delete leftover temporaries,
    refuse links inside it, check it (:func:`check_run_dir`); yield ``(run_dir, identity)``.

    >>> import tempfile
    >>> cfg = RunConfig.from_dict({"run": {"name": "doc", "out_dir": tempfile.mkdtemp()}})
    >>> with claim_run_dir(cfg, log=lambda s: None) as (run_dir, identity):
    ...     sorted(p.name for p in run_dir.iterdir())
    ['.clas_lens_lock', '.clas_lens_run']
    """
    run_dir = prepare_run_dir(run_dir_of(cfg))
    with RunLock(run_dir) as lock:
        if lock.taken_over:
            h = lock.taken_over
            log(f"run directory: took over the lock of process {h.get('pid')} (started {h.get('started')}), "
                "which no longer runs")
        check_no_symlinks(run_dir)
        removed = remove_temporaries(run_dir)
        if removed:
            log(f"run directory: removed {len(removed)} temporary file(s) that interrupted writes left")
        yield run_dir, check_run_dir(cfg, run_dir, restart)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The config saved in a run directory's ``run.json``."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise NotARunDirectoryError(f"{run_dir} is not a clas_lens run directory (no run.json); run `clas-lens run` first.")
    return RunConfig.from_dict(_read_run_json(run_dir)["config"])


def read_sweep_csv(run_dir: str | Path) -> pd.DataFrame:
    """``sweep.csv`` of a run directory, legacy names of the unsteered condition made canonical."""
    sweep = pd.read_csv(Path(run_dir) / "sweep.csv")
    for col in ("method", "condition"):
        sweep[col] = sweep[col].map(canonical_condition)
    return sweep
