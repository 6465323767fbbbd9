"""The pipeline's steering sweeps: each method's setting chosen on dev, every method and every
control of CLAS reported on test (docs/methods.md, "Evaluation").

1. :func:`dev_sweep_step`: the methods with more than one setting in ``[steering]`` (CLAS's
   betas x gammas x layer options, Int-mu's values x layer options, ...) on the ``dev`` items of
   ``[eval] gain_task`` (``sweeps/dev/<task>/``, ``sweep_dev.csv``);
2. :func:`selection_step`: one setting per method by :data:`~clas_lens.pipeline.select.SELECT_RULE`
   on ``[eval] gain_metric`` (``selection.csv``; ``selection.json`` says what was chosen, on what);
3. :func:`report_sweep_step`: every ``[eval] tasks`` task on its ``test`` items, each method at
   its chosen setting and the controls of CLAS (:func:`clas_lens.sweep.methods.control_methods`)
   at CLAS's (``sweeps/test/<task>/``, ``sweep.csv``).

Tasks built from the corpus (``lm``, ``completion``) read the run's corpus; ``split`` is set
by the step (a ``split`` in ``[eval.options]`` is replaced).
"""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.data.tasks import task_spec
from clas_lens.io import atomic_write_json, read_json
from clas_lens.pipeline.corpora import REPORT_SPLIT, SELECT_SPLIT
from clas_lens.pipeline.rundir import write_csv
from clas_lens.pipeline.select import SELECT_RULE, chosen_params, select_settings
from clas_lens.sweep import SweepGrid, finished_records, load_sweep, run_sweep
from clas_lens.sweep.methods import control_methods

__all__ = [
    "SELECTION_JSON", "grouped_warnings", "layer_options", "split_task_options", "design_grid", "dev_methods", "sweep_dir",
    "dev_sweep_step", "dev_gains", "selection_step", "report_sweep_step", "load_selection",
]

Log = Callable[[str], None]
#: What the selection chose, on what, by which rule.
SELECTION_JSON = "selection.json"


@contextlib.contextmanager
def grouped_warnings(log: Log, what: str) -> Iterator[None]:
    """Warnings raised inside, each distinct one once (a sweep repeats every item per
    condition); the tokenization notes of option scoring (a prompt and an option merged into one
    token, e.g. in Thai) are counted in one log line instead.

    >>> with grouped_warnings(print, "demo"):
    ...     for _ in range(3):
    ...         warnings.warn("Tokenizing prompt + option 'x' merged tokens across the boundary")
    demo: 1 option(s) merged tokens with their prompt and were scored from the first differing token, e.g. Tokenizing prompt + option 'x' merged tokens across the boundary
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: dict[tuple, warnings.WarningMessage] = {}
    for w in caught:
        seen.setdefault((w.category, str(w.message)), w)
    merged = [m for _, m in seen if m.startswith("Tokenizing prompt + option")]
    if merged:
        log(f"{what}: {len(merged)} option(s) merged tokens with their prompt and were scored from the first "
            f"differing token, e.g. {merged[0].split(';')[0]}")
    for (category, message), w in seen.items():
        if not message.startswith("Tokenizing prompt + option"):
            warnings.warn_explicit(message, category, w.filename, w.lineno)


def layer_options(spec: Any) -> list:
    """The layer options of ``[steering] layers``: a list of layer-spec strings is several
    options (chosen among on dev), anything else one spec.

    >>> layer_options("last:4"), layer_options(["last:2", "last:4"]), layer_options([10, 11])
    (['last:4'], ['last:2', 'last:4'], [[10, 11]])
    """
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(x, str) for x in spec):
        return list(spec)
    return [spec]


def split_task_options(cfg: RunConfig, task: str, split: str | None) -> dict[str, Any]:
    """``load_task`` options of ``task`` for ``split``: ``[eval.options]``, the run's corpus for
    tasks built from a corpus, and ``split`` (when given).

    >>> split_task_options(RunConfig(), "lm", "dev")
    {'corpus': 'default', 'split': 'dev'}
    """
    options = cfg.task_options(task)
    if "corpus" in task_spec(task).options:
        options.setdefault("corpus", cfg.corpus.name)
    if split is not None:
        options["split"] = split
    return options


def design_grid(cfg: RunConfig, task: str, split: str | None = None, chosen: dict | None = None,
                methods: list[str] | None = None) -> SweepGrid:
    """The sweep of ``task`` on ``split`` (None: every item): every value of ``[steering]``, or
    with ``chosen`` (``{method: params}``) each method at its chosen setting -- CLAS's values
    fill the grid fields its controls read too. ``methods``: default ``[steering] methods``.
    Dev items per language: ``[eval] dev_limits`` (default ``limits``); test: ``limits``.

    >>> g = design_grid(RunConfig.from_dict({"steering": {"methods": ["clas", "int_mu", "boost_only"]}}), "cloze",
    ...                 "test", chosen={"clas": {"alpha": 1.0, "beta": 0.5, "gamma": 0.2, "layers": "last:2"},
    ...                                 "int_mu": {"value": "mean", "layers": "last:4"}})
    >>> [c.key for c in g.cells() if c.lang == "de"][1:]  # doctest: +NORMALIZE_WHITESPACE
    ['task=cloze|lang=de|method=clas|alpha=1.0|beta=0.5|gamma=0.2|layers=last:2',
     'task=cloze|lang=de|method=int_mu|value=mean|layers=last:4',
     'task=cloze|lang=de|method=boost_only|alpha=1.0|beta=0.5|layers=last:2']
    """
    s, anchor = cfg.steering, cfg.corpus.anchor
    methods = list(s.methods if methods is None else methods)
    fields: dict[str, Any] = dict(alphas=s.alphas, betas=s.betas, gammas=s.gammas, layers=layer_options(s.layers),
                                  mu_values=s.mu_values, strengths=s.strengths)
    method_params: dict[str, dict[str, list]] = {}
    for method, params in (chosen or {}).items():
        if method == "clas":
            fields.update(alphas=[params["alpha"]], betas=[params["beta"]], gammas=[params["gamma"]],
                          layers=[params["layers"]])
        elif method in methods:
            method_params[method] = {k: [v] for k, v in params.items()}
    options = split_task_options(cfg, task, split)
    limit = cfg.eval.limits.get(task)
    if split == SELECT_SPLIT:
        limit = cfg.eval.dev_limits.get(task, limit)
    dev_only_targets = split == SELECT_SPLIT and "diffmean" not in methods
    return SweepGrid(
        langs=[l for l in cfg.task_langs(task) if l != anchor], anchor=None if dev_only_targets else anchor,
        tasks=[task], task_options={task: options} if options else {}, batch_size=cfg.eval.batch_size,
        methods=methods, method_params=method_params, neuron_seeds=s.random_seeds, positions=s.positions,
        shared=s.shared, suppress=s.suppress, limit=limit, seed=cfg.run.seed, n_boot=cfg.eval.n_boot,
        confidence=cfg.eval.confidence, **fields,
    )


def dev_methods(cfg: RunConfig) -> list[str]:
    """The methods whose setting is chosen on dev: those of ``[steering] methods`` that are not
    controls and have more than one setting.

    >>> dev_methods(RunConfig.from_dict({"steering": {"methods": ["clas", "int_mu", "boost_only"]}}))
    ['clas']
    """
    grid = design_grid(cfg, cfg.eval.gain_task)
    controls = set(control_methods())
    return [m for m in cfg.steering.methods if m not in controls and len(grid.settings(m)) > 1]


def sweep_dir(run_dir: Path, split: str, task: str) -> Path:
    """Where the sweep of ``task`` on ``split`` lives: ``run_dir/sweeps/<split>/<task>``."""
    return Path(run_dir) / "sweeps" / split / task


def dev_sweep_step(cfg: RunConfig, model, run_dir: Path, log: Log, inputs: dict) -> pd.DataFrame | None:
    """The dev sweep of the gain task (None when no method has a choice to make)."""
    methods = dev_methods(cfg)
    if not methods:
        return None
    task = cfg.eval.gain_task
    grid = design_grid(cfg, task, SELECT_SPLIT, methods=methods)
    t0 = time.perf_counter()
    with grouped_warnings(log, f"dev sweep {task}"):
        df = run_sweep(model, sweep_dir(run_dir, SELECT_SPLIT, task), grid, reuse=cfg.eval.prefix_reuse, **inputs)
    write_csv(df, Path(run_dir) / "sweep_dev.csv")
    log(f"dev sweep {task} ({', '.join(methods)}): {len(grid.cells())} cells ready ({time.perf_counter() - t0:.0f} s)")
    return df


def dev_gains(cfg: RunConfig, run_dir: Path) -> pd.DataFrame:
    """Per (method, setting, target language) of the dev sweep: the gain in ``[eval]
    gain_metric`` and the setting's parameters (columns method, condition, params, lang, gain)."""
    d = sweep_dir(run_dir, SELECT_SPLIT, cfg.eval.gain_task)
    df = load_sweep(d)
    params = {r["key"]: r.get("params", {}) for r in finished_records(d / "sweep")}
    rows = df[(df.metric == cfg.eval.gain_metric) & (df.method != "unsteered") & (df.lang != cfg.corpus.anchor)]
    return pd.DataFrame({"method": rows.method.to_numpy(), "condition": rows.condition.to_numpy(),
                         "params": [params[k] for k in rows.key], "lang": rows.lang.to_numpy(),
                         "gain": rows["diff"].to_numpy(dtype=float)})


def selection_step(cfg: RunConfig, model, run_dir: Path, log: Log) -> dict[str, dict[str, Any]]:
    """Choose each method's setting (``selection.csv``, ``selection.json``); methods with one
    setting keep it. Returns ``{method: params}`` for every non-control method."""
    run_dir = Path(run_dir)
    methods = dev_methods(cfg)
    chosen: dict[str, dict[str, Any]] = {}
    table = None
    if methods:
        table = select_settings(dev_gains(cfg, run_dir), n_layers=int(model.cfg.n_layers))
        write_csv(table, run_dir / "selection.csv")
        chosen = chosen_params(table)
    grid = design_grid(cfg, cfg.eval.gain_task)
    controls = set(control_methods())
    fixed = {m: dict(grid.settings(m)[0]) for m in cfg.steering.methods if m not in controls and m not in methods}
    for params in fixed.values():
        params.update({k: list(v) for k, v in params.items() if isinstance(v, tuple)})
    dev = design_grid(cfg, cfg.eval.gain_task, SELECT_SPLIT, methods=methods or None)
    record = {
        "rule": SELECT_RULE, "task": cfg.eval.gain_task, "metric": cfg.eval.gain_metric, "split": SELECT_SPLIT,
        "limit": dev.limit, "langs": list(dev.langs), "chosen": chosen, "fixed": fixed,
        "mean_gain": {} if table is None else {r.method: r.mean_gain for r in table[table.chosen].itertuples()},
        "n_settings": {} if table is None else table.groupby("method").size().to_dict(),
    }
    atomic_write_json(run_dir / SELECTION_JSON, record)
    for method, params in chosen.items():
        log(f"chosen on dev for {method}: {params} (mean {cfg.eval.gain_metric} gain {record['mean_gain'][method]:+.4f})")
    return {**fixed, **chosen}


def load_selection(run_dir: Path) -> dict[str, Any]:
    """``selection.json`` of a run directory ({} when absent)."""
    path = Path(run_dir) / SELECTION_JSON
    return read_json(path) if path.exists() else {}


def report_sweep_step(cfg: RunConfig, model, run_dir: Path, log: Log, inputs: dict, chosen: dict) -> pd.DataFrame:
    """Every task on its test items, each method at its chosen setting, with CLAS's controls
    (``sweep.csv``)."""
    frames = []
    for task in cfg.eval.tasks:
        grid = design_grid(cfg, task, REPORT_SPLIT, chosen=chosen)
        t0 = time.perf_counter()
        with grouped_warnings(log, f"test sweep {task}"):
            frames.append(run_sweep(model, sweep_dir(run_dir, REPORT_SPLIT, task), grid, reuse=cfg.eval.prefix_reuse,
                                    **inputs))
        log(f"test sweep {task}: {len(grid.cells())} cells ready ({time.perf_counter() - t0:.0f} s)")
    df = pd.concat(frames, ignore_index=True)
    write_csv(df, Path(run_dir) / "sweep.csv")
    return df

