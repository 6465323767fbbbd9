"""Resumable sweeps over steering strengths, layers, methods, tasks and languages.

A :class:`SweepGrid` enumerates **cells**: one (task, language, method, parameters) each, plus
one unsteered ``baseline`` cell per (task, language). A cell's key is a stable string, e.g.
``task=nli|lang=de|method=clas|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4``, so cells can be
split over processes or machines (``run_sweep(..., cells=grid.cells(rank=r, world_size=w),
shard=f"rank{r}")``) and merged by :func:`load_sweep`.

On disk (``run_dir/sweep/``):

* ``grid.json``: the grid, the model's identity and fingerprints of the neuron set (and
  statistics) the sweep uses. A rerun against a different grid / model / neuron set raises
  :class:`~clas_lens.errors.MismatchError` unless ``restart=True`` (which discards results).
* ``cells.jsonl`` (or ``cells.<shard>.jsonl``): one fsynced JSON line per finished cell with
  its tidy rows and per-item metric values. A rerun skips finished cells; a crash (even
  ``kill -9``) loses at most the cell in flight: a torn last line is cut off before appending.

Paired differences against the baseline cell are computed when loading (:func:`load_sweep`), so
cells stay independent of each other.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.io import append_jsonl, atomic_write_json, read_json, read_jsonl

METHODS: tuple[str, ...] = ("clas", "int_mu", "deactivate")
BASELINE = "baseline"
_PARAMS = {
    "clas": ("alpha", "beta", "gamma", "layers"),
    "int_mu": ("value", "layers"),
    "deactivate": ("layers",),
    BASELINE: (),
}
#: Columns of :func:`load_sweep`'s result, in order.
COLUMNS = [
    "task", "lang", "method", "condition", "alpha", "beta", "gamma", "layers", "value_kind",
    "metric", "value", "ci_low", "ci_high", "n", "diff", "diff_ci_low", "diff_ci_high", "p_value", "key",
]


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return repr(float(v))
    if isinstance(v, (list, tuple)):
        return ",".join(str(int(x)) for x in v)
    return str(v)


def _layers_value(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return (int(v),)
    return tuple(int(x) for x in v)


@dataclasses.dataclass(frozen=True)
class SweepCell:
    """One unit of work: a task in one language under one method and parameter setting."""

    task: str
    lang: str
    method: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """Stable identity, e.g. ``task=nli|lang=de|method=clas|alpha=1.0|...|layers=last:4``."""
        parts = [f"task={self.task}", f"lang={self.lang}", f"method={self.method}"]
        parts += [f"{k}={_fmt(v)}" for k, v in self.params]
        return "|".join(parts)

    @property
    def condition(self) -> str:
        """The key without task and language: the same setting across languages."""
        return "|".join(self.key.split("|")[2:]).removeprefix("method=")

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


@dataclasses.dataclass(kw_only=True)
class SweepGrid:
    """The settings a sweep covers.

    Args:
        tasks: task names for :func:`clas_lens.data.tasks.load_task` (or keys of ``tasks=``
            given to :func:`run_sweep`).
        langs: languages; ``anchor`` is added (first) if missing.
        methods: ``"clas"`` (alpha x beta x gamma x layers), ``"int_mu"`` (values x layers:
            the language's specific neurons set to their mean, or ``"zero"`` / a number) and
            ``"deactivate"`` (layers). A baseline cell per (task, lang) is always included.
        alphas, betas, gammas: CLAS strengths.
        layers: bridge-layer options (``"last:k"`` or lists of block indices).
        mu_values: Int-mu values (``"mean"`` needs statistics).
        shared, specific, positions, site: CLAS options (METHODS.md).
        task_options: ``{task name: load_task options}`` (templates, label words, data files).
        limit: first n items per language; seed, n_boot, alpha: bootstrap settings.
        batch_size: passed to ``task.predict``.

    >>> g = SweepGrid(langs=["de"], tasks=["nli"], betas=[0.1, 0.2])
    >>> [c.key for c in g.cells()][:2]
    ['task=nli|lang=en|method=baseline', 'task=nli|lang=en|method=clas|alpha=1.0|beta=0.1|gamma=0.2|layers=last:4']
    >>> len(g.cells()), SweepGrid.from_dict(g.to_dict()) == g
    (6, True)
    """

    langs: Sequence[str]
    tasks: Sequence[str] = ("nli",)
    methods: Sequence[str] = ("clas",)
    alphas: Sequence[float] = (1.0,)
    betas: Sequence[float] = (0.2,)
    gammas: Sequence[float] = (0.2,)
    layers: Sequence[Any] = ("last:4",)
    mu_values: Sequence[Any] = ("mean",)
    anchor: str | None = "en"
    shared: str = "partial"
    specific: str = "target"
    positions: str = "all"
    site: str = "post"
    task_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    limit: int | None = None
    seed: int = 0
    n_boot: int = 1000
    alpha: float = 0.05
    batch_size: int = 32

    def __post_init__(self) -> None:
        if isinstance(self.langs, str) or isinstance(self.tasks, str) or isinstance(self.methods, str):
            raise DataValidationError("SweepGrid: langs, tasks and methods are lists, e.g. langs=['de'].")
        self.langs = tuple(self.langs)
        self.tasks = tuple(self.tasks)
        self.methods = tuple(self.methods)
        self.alphas = tuple(float(a) for a in self.alphas)
        self.betas = tuple(float(b) for b in self.betas)
        self.gammas = tuple(float(g) for g in self.gammas)
        self.layers = tuple(_layers_value(l) for l in self.layers)
        self.mu_values = tuple(v if isinstance(v, str) else float(v) for v in self.mu_values)
        self.task_options = {str(k): dict(v) for k, v in dict(self.task_options).items()}
        unknown = sorted(set(self.task_options) - set(self.tasks))
        if unknown:
            raise DataValidationError(f"SweepGrid.task_options names task(s) {unknown} that are not in tasks={list(self.tasks)}.")
        if not self.langs:
            raise DataValidationError("SweepGrid needs at least one language (langs=[...]).")
        if not self.tasks:
            raise DataValidationError("SweepGrid needs at least one task (tasks=[...]).")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise DataValidationError(f"Unknown sweep method(s) {bad}; choose from {list(METHODS)}.")
        for name in ("alphas", "betas", "gammas", "layers", "mu_values"):
            if not getattr(self, name):
                raise DataValidationError(f"SweepGrid.{name} is empty: give at least one value.")
        for l in self.layers:
            if isinstance(l, str) and not (l == "all" or l.startswith("last:")):
                raise DataValidationError(f"SweepGrid.layers option {l!r}: use 'last:k', 'all' or a list of ints.")
        for v in self.mu_values:
            if isinstance(v, str) and v not in ("mean", "zero", "median", "p75", "p90", "p95"):
                raise DataValidationError(f"SweepGrid.mu_values option {v!r}: use 'mean', 'zero' or a number.")
        for k in ("limit",):
            v = getattr(self, k)
            if v is not None and int(v) < 1:
                raise DataValidationError(f"SweepGrid.{k} must be >= 1 or None.")

    @property
    def all_langs(self) -> list[str]:
        """The languages evaluated: the anchor first (added if missing), then ``langs``."""
        langs = list(self.langs)
        if self.anchor is not None and self.anchor not in langs:
            langs = [self.anchor] + langs
        return langs

    def _settings(self, method: str) -> list[tuple[tuple[str, Any], ...]]:
        if method == "clas":
            combos = itertools.product(self.alphas, self.betas, self.gammas, self.layers)
            return [(("alpha", a), ("beta", b), ("gamma", g), ("layers", l)) for a, b, g, l in combos]
        if method == "int_mu":
            return [(("value", v), ("layers", l)) for v, l in itertools.product(self.mu_values, self.layers)]
        if method == "deactivate":
            return [(("layers", l),) for l in self.layers]
        raise DataValidationError(f"Unknown method {method!r}.")  # pragma: no cover

    def cells(self, *, rank: int = 0, world_size: int = 1) -> list[SweepCell]:
        """Every cell, in a fixed order (task, lang, baseline first, then methods); with
        ``world_size > 1`` only every ``world_size``-th cell starting at ``rank``."""
        if not 0 <= rank < world_size:
            raise DataValidationError(f"rank={rank} must be in [0, world_size={world_size}).")
        out = []
        for task in self.tasks:
            for lang in self.all_langs:
                out.append(SweepCell(task, lang, BASELINE))
                for method in self.methods:
                    out += [SweepCell(task, lang, method, s) for s in self._settings(method)]
        return out[rank::world_size]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SweepGrid":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataValidationError(f"Unknown SweepGrid field(s) {unknown}; known: {sorted(known)}.")
        return cls(**dict(d))


# ---------------------------------------------------------------------------------------------
# identity of a sweep directory
# ---------------------------------------------------------------------------------------------
def _hash_tensors(items: Iterable[tuple[str, Any]]) -> str:
    import torch

    h = hashlib.sha256()
    for name, t in items:
        h.update(name.encode())
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _neurons_fingerprint(neurons: Any, grid: SweepGrid) -> str:
    """sha256 of the masks the sweep's methods read (shared ones only for CLAS)."""
    cats = []
    if "clas" in grid.methods:
        cats = {"partial": ["partial_shared"], "all": ["all_shared"], "both": ["partial_shared", "all_shared"]}[grid.shared]
    langs = [l for l in grid.all_langs if l in list(getattr(neurons, "langs", grid.all_langs))]
    wanted = [(c, (c,)) for c in cats] + [(f"specific/{l}", ("specific", l)) for l in langs]
    items = []
    for name, args in wanted:
        try:
            items.append((name, neurons.mask(*args)))
        except (ValueError, KeyError):  # a category this neuron set lacks: the method will say so
            items.append((name, _empty_mask()))
    return _hash_tensors(items)


def _empty_mask():
    import torch

    return torch.zeros(0, dtype=torch.bool)


def _stats_fingerprint(stats: Any, grid: SweepGrid) -> str | None:
    if stats is None or "int_mu" not in grid.methods or "mean" not in grid.mu_values:
        return None
    langs = [l for l in grid.all_langs if l in list(stats.langs)]
    return _hash_tensors((f"mean/{l}", stats.mean(l)) for l in langs)


def _identity(model, grid: SweepGrid, neurons: Any, stats: Any) -> dict:
    from clas_lens.models import model_info

    return {
        "grid": json.loads(json.dumps(grid.to_dict())),
        "model_info": model_info(model).to_dict(),
        "neurons_sha256": _neurons_fingerprint(neurons, grid),
        "stats_sha256": _stats_fingerprint(stats, grid),
    }


def _differences(stored: Mapping, current: Mapping) -> list[str]:
    out = []
    sg, cg = stored.get("grid", {}), current["grid"]
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
    for k, what in (("neurons_sha256", "neuron set"), ("stats_sha256", "statistics")):
        if stored.get(k) != current.get(k):
            out.append(f"{what}: fingerprint {str(stored.get(k))[:12]} in the directory, {str(current.get(k))[:12]} now")
    return out


def _cell_files(sweep_dir: Path) -> list[Path]:
    return sorted(sweep_dir.glob("cells*.jsonl"))


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-append) so the next append starts on a fresh line."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
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


def _finished(sweep_dir: Path) -> list[dict]:
    seen, out = set(), []
    for p in _cell_files(sweep_dir):
        for rec in read_jsonl(p):
            if isinstance(rec, dict) and "key" in rec and rec["key"] not in seen:
                seen.add(rec["key"])
                out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# running cells
# ---------------------------------------------------------------------------------------------
def cell_interventions(cell: SweepCell, grid: SweepGrid, neurons: Any, stats: Any = None) -> list:
    """The interventions of one cell (empty for the baseline)."""
    from clas_lens.steering import ClasSteering, Deactivate, SetNeurons

    layers = cell.param("layers")
    layers = list(layers) if isinstance(layers, tuple) else layers
    if cell.method == BASELINE:
        return []
    if cell.method == "clas":
        return [
            ClasSteering(
                neurons, cell.lang, layers=layers, alpha=cell.param("alpha"), beta=cell.param("beta"),
                gamma=cell.param("gamma"), shared=grid.shared, specific=grid.specific,
                positions=grid.positions, site=grid.site,
            )
        ]
    if cell.method == "int_mu":
        value = cell.param("value")
        if value == "mean":
            if stats is None:
                raise DataValidationError("The int_mu method with value 'mean' needs stats= (a NeuronStats).")
            return [SetNeurons.int_mu(neurons, stats, cell.lang, layers=layers, positions=grid.positions)]
        if isinstance(value, str) and value != "zero":
            raise DataValidationError(f"int_mu value {value!r} needs quantiles; use 'mean', 'zero' or a number.")
        site = getattr(stats, "site", None) or grid.site
        return [SetNeurons(neurons, value=value, target_lang=cell.lang, layers=layers, positions=grid.positions, site=site)]
    if cell.method == "deactivate":
        return [Deactivate(neurons, cell.lang, layers=layers, positions=grid.positions, site=grid.site)]
    raise DataValidationError(f"Unknown method {cell.method!r}.")  # pragma: no cover


def _cell_record(cell: SweepCell, task: Any, preds: pd.DataFrame, grid: SweepGrid, seconds: float) -> dict:
    from clas_lens.evaluation import metric_row

    metrics = list(task.metrics)
    rows = []
    for m in metrics:
        r = {"task": cell.task, "lang": cell.lang, "condition": cell.condition, "metric": m}
        r.update(metric_row(preds[m].to_numpy(dtype=float), n_boot=grid.n_boot, seed=grid.seed, alpha=grid.alpha))
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


def run_sweep(
    model,
    run_dir: str | os.PathLike,
    grid: SweepGrid,
    *,
    neurons: Any,
    stats: Any = None,
    restart: bool = False,
    cells: Sequence[SweepCell | str] | None = None,
    tasks: Mapping[str, Any] | None = None,
    shard: str | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run every unfinished cell of ``grid`` and return :func:`load_sweep`'s table.

    Args:
        model: a TransformerBridge.
        run_dir: the run directory; results go to ``run_dir/sweep/``.
        grid: the :class:`SweepGrid`.
        neurons: the NeuronSet (``identify_neurons``) CLAS / Int-mu / deactivation use.
        stats: NeuronStats for Int-mu means.
        restart: discard earlier results in ``run_dir/sweep`` and start again (also when the
            grid, model or neuron set changed).
        cells: run only these cells (``SweepCell`` or keys; e.g. ``grid.cells(rank=r,
            world_size=w)``).
        tasks: ``{name: Task}`` to use instead of ``load_task(name, langs=grid.all_langs)``.
        shard: write to ``cells.<shard>.jsonl`` (one file per process when several processes
            share ``run_dir``); finished cells of every shard are skipped.
        progress: tqdm bar of cells done (default: on unless there are fewer than 4 cells).

    Raises:
        MismatchError: ``run_dir/sweep`` holds a sweep of another grid, model or neuron set.

    >>> import tempfile, torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.steering import MaskSet
    >>> model = tiny_model("llama")
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> grid = SweepGrid(langs=["de"], tasks=["cloze"], betas=[0.5], limit=2, n_boot=50)
    >>> run = tempfile.mkdtemp()
    >>> df = run_sweep(model, run, grid, neurons=ns, progress=False)
    >>> sorted(set(df["method"])), len(load_sweep(run)) == len(df)
    (['baseline', 'clas'], True)
    """
    from tqdm.auto import tqdm

    sweep_dir = Path(run_dir) / "sweep"
    grid_path = sweep_dir / "grid.json"
    cells_path = sweep_dir / ("cells.jsonl" if shard is None else f"cells.{shard}.jsonl")
    if shard is not None and (not shard or any(c in shard for c in "/\\ ")):
        raise DataValidationError(f"shard={shard!r}: use a short name without slashes or spaces, e.g. 'rank0'.")
    ident = _identity(model, grid, neurons, stats)
    if restart:
        for p in _cell_files(sweep_dir):
            p.unlink()
    elif grid_path.exists():
        diffs = _differences(read_json(grid_path), ident)
        if diffs:
            raise MismatchError(
                f"{sweep_dir} holds a different sweep:\n  - " + "\n  - ".join(diffs) + "\nUse another run "
                "directory, or pass restart=True to discard its finished cells and start again."
            )
    elif _cell_files(sweep_dir):
        raise MismatchError(
            f"{sweep_dir} has cell results but no grid.json, so they cannot be matched to this grid. "
            "Use another run directory or restart=True."
        )
    if restart or not grid_path.exists():
        atomic_write_json(grid_path, ident)
    for p in _cell_files(sweep_dir):
        _repair_tail(p)

    every = grid.cells()
    by_key = {c.key: c for c in every}
    if cells is None:
        selected = every
    else:
        selected = []
        for c in cells:
            k = c.key if isinstance(c, SweepCell) else str(c)
            if k not in by_key:
                raise DataValidationError(f"Cell {k!r} is not in this grid.")
            selected.append(by_key[k])
    done = {rec["key"] for rec in _finished(sweep_dir)}
    todo = [c for c in selected if c.key not in done]

    task_objs: dict[str, Any] = {}
    for name in grid.tasks:
        if tasks is not None and name in tasks:
            task_objs[name] = tasks[name]
        elif any(c.task == name for c in todo):
            from clas_lens.data.tasks import load_task

            task_objs[name] = load_task(name, langs=grid.all_langs, **grid.task_options.get(name, {}))
    # Build every intervention (and its hooks) first: errors come before any forward pass.
    plans = []
    for c in todo:
        ivs = cell_interventions(c, grid, neurons, stats)
        for iv in ivs:
            iv.hooks(model)
        task_objs[c.task].items(c.lang)
        plans.append((c, ivs))

    from clas_lens.steering import steer

    show = progress if progress is not None else len(selected) >= 4
    with tqdm(total=len(selected), initial=len(selected) - len(todo), desc="sweep cells", unit="cell", disable=not show) as bar:
        for cell, ivs in plans:
            task = task_objs[cell.task]
            t0 = time.perf_counter()
            with steer(model, *ivs):
                preds = task.predict(model, cell.lang, limit=grid.limit, batch_size=grid.batch_size)
            append_jsonl(cells_path, _cell_record(cell, task, preds, grid, time.perf_counter() - t0))
            bar.update(1)
    return load_sweep(run_dir)


def load_sweep(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of every finished cell (all shards), with paired diffs vs the baseline.

    One row per (cell, metric); ``diff`` etc. compare a cell with its (task, lang) baseline cell
    on the same items (NaN for baseline cells and while the baseline is not finished).
    ``attrs``: ``grid``, ``model_info``, ``n_cells`` (finished), ``n_total`` (in the grid).
    """
    from clas_lens.evaluation import paired_row

    sweep_dir = Path(run_dir) / "sweep"
    grid_path = sweep_dir / "grid.json"
    if not grid_path.exists():
        raise DataValidationError(f"{sweep_dir} holds no sweep (no grid.json); run run_sweep first.")
    ident = read_json(grid_path)
    grid = SweepGrid.from_dict(ident["grid"])
    recs = _finished(sweep_dir)
    base = {(r["task"], r["lang"]): r for r in recs if r["method"] == BASELINE}
    rows = []
    for rec in recs:
        params = rec.get("params", {})
        b = base.get((rec["task"], rec["lang"]))
        for row in rec["rows"]:
            out = dict(row)
            out.update(
                method=rec["method"],
                alpha=params.get("alpha", math.nan),
                beta=params.get("beta", math.nan),
                gamma=params.get("gamma", math.nan),
                layers=_fmt(params["layers"]) if "layers" in params else None,
                value_kind=_fmt(params["value"]) if "value" in params else None,
                key=rec["key"],
            )
            m = row["metric"]
            if rec["method"] == BASELINE or b is None:
                out.update(diff=math.nan, diff_ci_low=math.nan, diff_ci_high=math.nan, p_value=math.nan)
            else:
                bv = dict(zip(b["items"]["item_id"], b["items"][m]))
                sv = dict(zip(rec["items"]["item_id"], rec["items"][m]))
                if set(bv) != set(sv):
                    raise DataValidationError(f"Cell {rec['key']} and its baseline scored different items.")
                ids = list(bv)
                out.update(paired_row([bv[i] for i in ids], [sv[i] for i in ids], n_boot=grid.n_boot, seed=grid.seed, alpha=grid.alpha))
            rows.append(out)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["grid"] = ident["grid"]
    df.attrs["model_info"] = ident.get("model_info")
    df.attrs["n_cells"] = len(recs)
    df.attrs["n_total"] = len(grid.cells())
    return df
