"""The run directory's own files: its identity (``run.json``), CSV tables and the saved sweep.

``run.json`` records the resolved config, its identity (:meth:`RunConfig.identity`), package
versions, the model identity and the git commit. A different config against the same
directory is refused unless ``restart=True``.
"""
from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.errors import MismatchError
from clas_lens.io import atomic_write_text, read_json
from clas_lens.vocab import canonical_condition

__all__ = ["git_commit", "package_versions", "write_csv", "check_run_dir", "load_run_config", "read_sweep_csv"]


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


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` (without its attrs) as CSV, atomically."""
    df = df.copy()
    df.attrs = {}
    return atomic_write_text(path, df.to_csv(index=False))


def check_run_dir(cfg: RunConfig, run_dir: Path, restart: bool) -> str:
    """Refuse a directory that holds a run of another config (unless ``restart``, which deletes
    it); create it; return the config's identity."""
    meta_path = run_dir / "run.json"
    identity = cfg.identity()
    if meta_path.exists():
        old = read_json(meta_path)
        if old.get("config_sha256") != identity and not restart:
            raise MismatchError(
                f"{run_dir} holds a run with a different config. Use another run name "
                "([run] name = ...), or pass --restart to delete it and start over."
            )
    if restart and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return identity


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The config saved in a run directory's ``run.json``."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a clas_lens run directory (no run.json); run `clas-lens run` first.")
    return RunConfig.from_dict(read_json(run_dir / "run.json")["config"])


def read_sweep_csv(run_dir: str | Path) -> pd.DataFrame:
    """``sweep.csv`` of a run directory, legacy names of the unsteered condition made canonical."""
    sweep = pd.read_csv(Path(run_dir) / "sweep.csv")
    for col in ("method", "condition"):
        sweep[col] = sweep[col].map(canonical_condition)
    return sweep
