"""A sweep directory on disk: its identity, its cell files, their repair and resumption.

Layout of ``run_dir/sweep/``:

* ``grid.json``: the grid, the model's identity and fingerprints (sha256) of the inputs the
  sweep reads -- the neuron set, and where the grid's methods read them, the statistics,
  quantiles, LAPE neurons or residual means (:func:`sweep_identity`). A rerun against a
  different grid / model / input raises :class:`~clas_lens.errors.MismatchError` unless
  ``restart=True`` (which discards results) (:func:`open_sweep_dir`).
* ``cells.jsonl`` (or ``cells.<shard>.jsonl``): one fsynced JSON line per finished cell with
  its tidy rows and per-item metric values (:func:`cell_record`); a cell whose scores were not
  finite is recorded as failed, with the cause and NaN values (:func:`failed_record`). A crash (even ``kill -9``)
  loses at most the cell in flight: a torn last line is cut off before appending
  (:func:`repair_tail`), and :func:`finished_records` reads every shard's finished cells.

Cells written by older releases under the legacy name of the unsteered condition
(``method=baseline``) are read as :data:`~clas_lens.vocab.UNSTEERED` cells.

>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "cells.jsonl").write_text('{"key": "a", "method": "clas"}\\n{"key": "b", "met')
>>> repair_tail(d / "cells.jsonl"); [r["key"] for r in finished_records(d)]
['a']
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import torch

from clas_lens.errors import MismatchError
from clas_lens.evaluation import metric_row
from clas_lens.io import atomic_write_json, open_nofollow, read_json, read_jsonl
from clas_lens.models import model_info
from clas_lens.steering.clas import SHARED_CATEGORIES
from clas_lens.sweep.grid import SweepCell, SweepGrid
from clas_lens.sweep.methods import SweepInputs, sweep_method
from clas_lens.vocab import UNSTEERED, canonical_condition, is_unsteered

__all__ = [
    "hash_tensors",
    "neurons_fingerprint",
    "sweep_identity",
    "identity_differences",
    "cell_files",
    "repair_tail",
    "finished_records",
    "canonical_record",
    "open_sweep_dir",
    "cell_record",
    "failed_record",
]

#: Identity keys every sweep directory has; methods may add more ``*_sha256`` keys.
_BASE_KEYS = ("neurons_sha256", "stats_sha256")


def hash_tensors(items: Iterable[tuple[str, Any]]) -> str:
    """sha256 over named tensors (name, shape, dtype and raw bytes of each, in order).

    >>> hash_tensors([("a", torch.zeros(2))]) == hash_tensors([("a", torch.zeros(2))])
    True
    """
    h = hashlib.sha256()
    for name, t in items:
        h.update(name.encode())
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def neurons_fingerprint(neurons: Any, grid: SweepGrid) -> str:
    """sha256 of the masks the sweep's methods read (shared ones, and the per-language active ones
    of ``shared="partial_active"``, only for CLAS)."""
    cats: list[str] = []
    if "clas" in grid.methods:
        cats = list(SHARED_CATEGORIES[grid.shared])
    langs = [l for l in grid.all_langs if l in list(getattr(neurons, "langs", grid.all_langs))]
    wanted = [(c, (c,)) for c in cats] + [(f"specific/{l}", ("specific", l)) for l in langs]
    if "clas" in grid.methods and grid.shared == "partial_active":
        wanted += [(f"active/{l}", ("active", l)) for l in langs]
    items = []
    for name, args in wanted:
        try:
            items.append((name, neurons.mask(*args)))
        except (ValueError, KeyError):  # a category this neuron set lacks: the method will say so
            items.append((name, torch.zeros(0, dtype=torch.bool)))
    return hash_tensors(items)


def sweep_identity(model, grid: SweepGrid, inputs: SweepInputs) -> dict:
    """What ``grid.json`` records: the grid, the model and fingerprints of the inputs read."""
    ident: dict[str, Any] = {
        "grid": json.loads(json.dumps(grid.to_dict())),
        "model_info": model_info(model).to_dict(),
        "neurons_sha256": neurons_fingerprint(inputs.neurons, grid),
        "stats_sha256": None,
    }
    for name in grid.methods:
        method = sweep_method(name)
        if method.fingerprint is not None:
            for key, items in method.fingerprint(grid, inputs).items():
                ident[key] = hash_tensors(items)
    return ident


def _normal_grid(d: Mapping) -> dict:
    """A saved grid as the current release writes it (new fields at their defaults)."""
    try:
        return SweepGrid.from_dict(d).to_dict()
    except Exception:  # a grid this release cannot read: compare it as saved
        return dict(d)


def identity_differences(stored: Mapping, current: Mapping) -> list[str]:
    """Human-readable differences between a saved identity and the current one (empty: same).

    >>> a = {"grid": SweepGrid(langs=["de"]).to_dict(), "model_info": {"model_id": "m", "weights_sha256": "ab"},
    ...      "neurons_sha256": "n1", "stats_sha256": None}
    >>> identity_differences(a, dict(a, neurons_sha256="n2"))
    ['neuron set: fingerprint n1 in the directory, n2 now']
    """
    out = []
    sg, cg = _normal_grid(stored.get("grid", {})), current["grid"]
    for k in sorted(set(sg) | set(cg)):
        if sg.get(k) != cg.get(k):
            out.append(f"grid.{k}: {sg.get(k)!r} in the directory, {cg.get(k)!r} now")
    sw = (stored.get("model_info") or {}).get("weights_sha256")
    cw = current["model_info"]["weights_sha256"]
    if sw != cw:
        out.append(
            f"model: {(stored.get('model_info') or {}).get('model_id')!r} (weights {str(sw)[:12]}) in the "
            f"directory, {current['model_info']['model_id']!r} (weights {cw[:12]}) now"
        )
    names = {"neurons_sha256": "neuron set", "stats_sha256": "statistics"}
    extra = sorted(k for k in set(stored) | set(current) if k.endswith("_sha256") and k not in _BASE_KEYS)
    for k in list(_BASE_KEYS) + extra:
        if stored.get(k) != current.get(k):
            what = names.get(k, k.removesuffix("_sha256").replace("_", " "))
            out.append(f"{what}: fingerprint {str(stored.get(k))[:12]} in the directory, {str(current.get(k))[:12]} now")
    return out


def cell_files(sweep_dir: str | os.PathLike) -> list[Path]:
    """Every cell file of a sweep directory (``cells.jsonl`` and the shards'), sorted.

    >>> import tempfile
    >>> cell_files(tempfile.mkdtemp())
    []
    """
    return sorted(Path(sweep_dir).glob("cells*.jsonl"))


def repair_tail(path: str | os.PathLike) -> None:
    """Cut a torn last line (a crash mid-append) so the next append starts on a fresh line.
    A symbolic link is refused, never followed (:func:`clas_lens.io.open_nofollow`)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    with open_nofollow(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())


def canonical_record(rec: dict) -> dict:
    """A cell record with a legacy unsteered name (``baseline``) read as :data:`UNSTEERED`.

    >>> canonical_record({"key": "task=nli|lang=de|method=baseline", "method": "baseline",
    ...                   "rows": [{"condition": "baseline"}]})["key"]
    'task=nli|lang=de|method=unsteered'
    """
    if not is_unsteered(rec.get("method")) or rec.get("method") == UNSTEERED:
        return rec
    old = rec["method"]
    out = dict(rec, method=UNSTEERED)
    out["key"] = str(rec["key"]).replace(f"|method={old}", f"|method={UNSTEERED}")
    out["rows"] = [dict(r, condition=canonical_condition(r.get("condition", old))) for r in rec.get("rows", [])]
    return out


def finished_records(sweep_dir: str | os.PathLike) -> list[dict]:
    """The finished cells of every cell file, first record per key (legacy names canonical)."""
    seen, out = set(), []
    for p in cell_files(sweep_dir):
        for rec in read_jsonl(p):
            if isinstance(rec, dict) and "key" in rec:
                rec = canonical_record(rec)
                if rec["key"] not in seen:
                    seen.add(rec["key"])
                    out.append(rec)
    return out


def open_sweep_dir(sweep_dir: str | os.PathLike, ident: Mapping, *, restart: bool = False) -> None:
    """Check ``sweep_dir`` against ``ident`` (or start it afresh) and repair torn cell files.

    Raises:
        MismatchError: the directory holds another sweep (and ``restart`` is False).
    """
    sweep_dir = Path(sweep_dir)
    grid_path = sweep_dir / "grid.json"
    if restart:
        for p in cell_files(sweep_dir):
            p.unlink()
    elif grid_path.exists():
        diffs = identity_differences(read_json(grid_path), ident)
        if diffs:
            raise MismatchError(
                f"{sweep_dir} holds a different sweep:\n  - " + "\n  - ".join(diffs) + "\nUse another run "
                "directory, or pass restart=True to discard its finished cells and start again."
            )
    elif cell_files(sweep_dir):
        raise MismatchError(
            f"{sweep_dir} has cell results but no grid.json, so they cannot be matched to this grid. "
            "Use another run directory or restart=True."
        )
    if restart or not grid_path.exists():
        atomic_write_json(grid_path, dict(ident))
    for p in cell_files(sweep_dir):
        repair_tail(p)


def cell_record(cell: SweepCell, metrics: Iterable[str], preds: pd.DataFrame, grid: SweepGrid, seconds: float) -> dict:
    """One finished cell as a line of ``cells.jsonl``: tidy rows with CIs and per-item values."""
    metrics = list(metrics)
    rows = []
    for m in metrics:
        r = {"task": cell.task, "lang": cell.lang, "condition": cell.condition, "metric": m}
        r.update(metric_row(preds[m].to_numpy(dtype=float), n_boot=grid.n_boot, seed=grid.seed, confidence=grid.confidence))
        rows.append(r)
    return {
        "key": cell.key,
        "task": cell.task,
        "lang": cell.lang,
        "method": cell.method,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cell.params},
        "rows": rows,
        "items": {"item_id": [str(x) for x in preds["item_id"]], **{m: [float(x) for x in preds[m]] for m in metrics}},
        "seconds": round(seconds, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def failed_record(cell: SweepCell, metrics: Iterable[str], cause: str, seconds: float) -> dict:
    """A cell that could not be scored (e.g. its steering made the logits NaN) as a line of
    ``cells.jsonl``: NaN values, no items, and the cause under ``"failed"``, so the table shows
    it (column ``error``) instead of dropping it.

    >>> from clas_lens.sweep.grid import SweepGrid
    >>> cell = SweepGrid(langs=["de"], methods=["deactivate"]).cells()[-1]
    >>> rec = failed_record(cell, ["accuracy"], "scores: NaN", 0.1)
    >>> rec["failed"], rec["rows"][0]["n"]
    ('scores: NaN', 0)
    """
    nan = float("nan")
    rows = [
        {"task": cell.task, "lang": cell.lang, "condition": cell.condition, "metric": m,
         "value": nan, "ci_low": nan, "ci_high": nan, "n": 0}
        for m in metrics
    ]
    return {
        "key": cell.key,
        "task": cell.task,
        "lang": cell.lang,
        "method": cell.method,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cell.params},
        "rows": rows,
        "items": {"item_id": [], **{m: [] for m in metrics}},
        "failed": cause,
        "seconds": round(seconds, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
