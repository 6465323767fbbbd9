"""The pipeline's residual-stream steps: language clusters on held-out sentences, unsteered and
under CLAS at its chosen setting, and the divergence test (docs/methods.md, "Clusters and the
divergence test").

* :func:`clusters_step`: :func:`~clas_lens.clusters.residual_reps` of the first
  ``[corpus] cluster_limit`` ``test`` sentences (``ids=``: never the ``stats`` ones that chose
  the neurons), unsteered (``reps/unsteered``) and under CLAS (``reps/clas``); cluster metrics
  and their deltas, centred per layer (``clusters/metrics.csv``, ``clusters/deltas.csv``);
* :func:`divergence_step`: per-language test gains of CLAS (``clusters/gains.csv``) against the
  separation and the alignment deltas and their difference, at the layer chosen by the
  unsteered separation alone (``layer="rule"``), with CIs, p-values, n and the detectable
  ``|r|`` (``clusters/divergence.csv``, how the layer was chosen in ``clusters/divergence.json``),
  and a 2-D projection at that layer.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from clas_lens.clusters import Reps, cluster_metrics, compare_reps, divergence_test, project, residual_reps
from clas_lens.config import RunConfig
from clas_lens.io import atomic_write_json
from clas_lens.pipeline.corpora import REPORT_SPLIT, corpus_part, run_corpus
from clas_lens.pipeline.rundir import write_csv
from clas_lens.pipeline.sweeps import layer_options, load_selection
from clas_lens.sites import neuron_sites
from clas_lens.specs import LayerSpec
from clas_lens.steering import ClasSteering
from clas_lens.vocab import UNSTEERED

__all__ = ["ALIGNMENT_METRIC", "clas_setting", "resolved_layers", "clas_template", "clusters_step", "language_gains",
           "divergence_step"]

Log = Callable[[str], None]
#: The alignment metric set beside the separation metric in the divergence test.
ALIGNMENT_METRIC = "parallel_cosine"


def clas_setting(cfg: RunConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """CLAS's setting: the one chosen on dev (``selection.json`` of ``run_dir``), else the
    first value of each ``[steering]`` list and the strongest beta.

    >>> clas_setting(RunConfig())
    {'alpha': 1.0, 'beta': 0.5, 'gamma': 0.2, 'layers': 'last:4'}
    """
    sel = load_selection(run_dir) if run_dir is not None else {}
    found = (sel.get("chosen") or {}).get("clas") or (sel.get("fixed") or {}).get("clas")
    if found:
        return dict(found)
    s = cfg.steering
    return {"alpha": float(s.alphas[0]), "beta": float(max(s.betas)), "gamma": float(s.gammas[0]),
            "layers": layer_options(s.layers)[0]}


def resolved_layers(model, spec) -> list[int] | None:
    """A config layer spec as the model's layer indices (None for every layer)."""
    parsed = LayerSpec.parse(spec)
    return None if parsed.kind == "all" else parsed.resolve(neuron_sites(model).n_layers)


def clas_template(cfg: RunConfig, neurons, run_dir: Path | None = None) -> ClasSteering:
    """CLAS at :func:`clas_setting`, a template that ``residual_reps`` binds per language."""
    f, s = clas_setting(cfg, run_dir), cfg.steering
    return ClasSteering(neurons, layers=f["layers"], alpha=f["alpha"], beta=f["beta"], gamma=f["gamma"],
                        shared=s.shared, suppress=s.suppress, positions=s.positions)


def clusters_step(cfg: RunConfig, model, corpus, neurons, run_dir: Path, log: Log):
    """Residual reps of held-out test sentences unsteered and under CLAS, their cluster metrics
    and deltas. ``corpus``: the run's corpus (or its test part); the test sentences are taken
    from it by :func:`~clas_lens.pipeline.corpora.corpus_part`."""
    run_dir = Path(run_dir)
    ids = corpus_part(cfg, REPORT_SPLIT, cfg.corpus.cluster_limit, corpus).ids
    whole = run_corpus(cfg)
    out = {}
    for cond, iv in ((UNSTEERED, None), ("clas", clas_template(cfg, neurons, run_dir))):
        path = run_dir / "reps" / cond
        if path.exists() and any(path.iterdir()):
            try:
                reps = Reps.load(path)
                if list(reps.meta.get("sentence_ids") or []) == list(ids):
                    out[cond] = reps
                    continue
            except Exception:  # a torn folder from a crash: recompute
                pass
            shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        reps = residual_reps(
            model, whole, layers=resolved_layers(model, cfg.clusters.layers), pooling=cfg.clusters.pooling,
            intervention=iv, condition=cond, batch_size=cfg.clusters.batch_size, ids=ids,
        )
        reps.save(path)
        out[cond] = reps
        log(f"residual reps ({cond}, {len(ids)} held-out {REPORT_SPLIT} sentences x {len(whole.langs)} languages): "
            f"{time.perf_counter() - t0:.0f} s")
    anchor = cfg.corpus.anchor
    metrics = pd.concat(
        [cluster_metrics(out[UNSTEERED], anchor=anchor), cluster_metrics(out["clas"], anchor=anchor)],
        ignore_index=True,
    )
    deltas = compare_reps(out[UNSTEERED], out["clas"], anchor=anchor)
    write_csv(metrics, run_dir / "clusters" / "metrics.csv")
    write_csv(deltas, run_dir / "clusters" / "deltas.csv")
    return out, metrics, deltas


def language_gains(sweep: pd.DataFrame, cfg: RunConfig, method: str = "clas") -> pd.DataFrame:
    """Per language: ``method``'s gain (steered minus unsteered, mean over the items) on
    ``[eval] gain_task`` / ``gain_metric`` of a sweep table holding one setting per method
    (several conditions of a method, e.g. the seeds of ``clas_random``, are averaged).

    >>> sweep = pd.DataFrame({"task": "lm", "metric": "neg_nll", "method": ["clas", "clas", "unsteered"],
    ...                       "lang": ["de", "ru", "de"], "diff": [0.1, 0.2, None]})
    >>> language_gains(sweep, RunConfig.from_dict({"eval": {"tasks": ["lm"], "gain_task": "lm",
    ...                                                     "gain_metric": "neg_nll"}})).values.tolist()
    [['de', 0.1], ['ru', 0.2]]
    """
    rows = sweep[(sweep.task == cfg.eval.gain_task) & (sweep.metric == cfg.eval.gain_metric) & (sweep.method == method)]
    gains = rows.groupby("lang", sort=False)["diff"].mean()
    return gains.rename("gain").reset_index()


def divergence_step(cfg: RunConfig, sweep: pd.DataFrame, deltas: pd.DataFrame, reps, run_dir: Path, log: Log) -> pd.DataFrame:
    """The divergence test (test gains vs cluster-metric deltas at the rule layer) and the 2-D
    projection at that layer."""
    run_dir = Path(run_dir)
    gains = language_gains(sweep, cfg)
    gains = gains[gains.lang != cfg.corpus.anchor]
    test = divergence_test(gains, deltas, x=cfg.clusters.divergence_metric, layer="rule", alignment=ALIGNMENT_METRIC,
                           seed=cfg.run.seed, confidence=cfg.eval.confidence)
    write_csv(test, run_dir / "clusters" / "divergence.csv")
    atomic_write_json(run_dir / "clusters" / "divergence.json",
                      {k: v for k, v in test.attrs.items() if isinstance(v, (str, int, float, list))})
    write_csv(gains, run_dir / "clusters" / "gains.csv")
    layer = int(test["layer"].iloc[0])
    proj = project([reps[UNSTEERED], reps["clas"]], method=cfg.clusters.projection, layer=layer, seed=cfg.run.seed)
    write_csv(proj, run_dir / "clusters" / "projection.csv")
    log(f"divergence test at layer {layer} ({test.attrs.get('layer_choice')}): done")
    return test
