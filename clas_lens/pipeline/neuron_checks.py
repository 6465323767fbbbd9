"""The two checks of the identified neurons the pipeline runs: split-half stability and the
positive control (docs/methods.md, "Neuron categories" and "Peer methods").

* :func:`stats_with_stability`: neuron statistics of the ``stats`` sentences and, from the same
  forward pass, ``k`` random split halves of them (:func:`clas_lens.neurons.stability.weighted_stats`);
  the neurons are identified on each half and the halves compared by Jaccard
  (:func:`~clas_lens.neurons.stability.stability_table`, ``split="half"``).
* :func:`positive_control_step`: the neurons of ``[neurons] control_method`` (LAPE by default)
  are zeroed language by language and the NLL of every language's held-out ``test`` sentences
  measured (:func:`clas_lens.positive_control.deactivation_matrix`); does each deactivation
  hurt its own language most (:func:`~clas_lens.positive_control.diagonal_dominance`)?
  Files: ``control/deactivation.csv``, ``control/dominance.json``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd

from clas_lens.config import RunConfig
from clas_lens.errors import DataValidationError
from clas_lens.io import atomic_write_json, read_json
from clas_lens.neurons import identify_neurons
from clas_lens.neurons.stability import resample_weights, stability_table, weighted_stats
from clas_lens.pipeline.corpora import REPORT_SPLIT, corpus_part
from clas_lens.pipeline.rundir import write_csv
from clas_lens.positive_control import deactivation_matrix, diagonal_dominance
from clas_lens.stats import NeuronStats, collect_stats

__all__ = ["stats_with_stability", "positive_control_step", "control_langs", "read_dominance", "STABILITY_CSV", "CONTROL_DIR"]

Log = Callable[[str], None]
#: The split-half Jaccard table of a run directory.
STABILITY_CSV = "neurons_stability.csv"
#: The folder of the positive control's files.
CONTROL_DIR = "control"


def stats_with_stability(cfg: RunConfig, model, corpus) -> tuple[NeuronStats, pd.DataFrame | None]:
    """``(stats, stability)``: the statistics of ``corpus`` and, with ``[neurons]
    stability_splits = k > 0``, the split-half Jaccard table of ``k`` random splits (None for
    ``k = 0``). One forward pass either way.

    >>> from clas_lens.testing import tiny_model
    >>> cfg = RunConfig.from_dict({"stats": {"site": "act"}, "neurons": {"params": {"criterion": "quantile"},
    ...                                                                  "stability_splits": 2}})
    >>> stats, table = stats_with_stability(cfg, tiny_model("gemma3"), {"en": ["a b", "c d", "e f g", "h"],
    ...                                                                 "de": ["i j", "k", "l m", "n o p"]})
    >>> sorted(stats.langs), sorted(table.replicate.unique().tolist())
    (['de', 'en'], [0, 1])
    """
    s, k = cfg.stats, int(cfg.neurons.stability_splits)
    per_sentence = cfg.neurons.method == "ap"
    if k <= 0:
        stats = collect_stats(model, corpus, site=s.site, batch_size=s.batch_size, threshold=s.threshold,
                              max_length=s.max_length, per_sentence=per_sentence)
        return stats, None
    n = len(corpus.ids) if hasattr(corpus, "ids") else len(next(iter(corpus.values())))
    weights = resample_weights(n, split="half", n_boot=k, seed=cfg.run.seed)
    reps = weighted_stats(model, corpus, weights, site=s.site, threshold=s.threshold, batch_size=s.batch_size,
                          max_length=s.max_length, per_sentence=per_sentence)
    method, params = cfg.neurons.method, cfg.neurons.params
    full = identify_neurons(reps[0], method, **params)
    halves = [identify_neurons(r, method, **params) for r in reps[1:]]
    return reps[0], stability_table(full, halves, "half")


def control_langs(cfg: RunConfig) -> list[str]:
    """The languages of the positive control: ``[neurons] control_langs`` or ``corpus.langs``.

    >>> control_langs(RunConfig.from_dict({"corpus": {"langs": ["en", "de"]}}))
    ['en', 'de']
    """
    langs = list(cfg.neurons.control_langs or cfg.corpus.langs)
    outside = [l for l in langs if l not in cfg.corpus.langs]
    if outside:
        raise DataValidationError(
            f"config key 'neurons.control_langs' has {outside[0]!r}, which is not in corpus.langs {cfg.corpus.langs}"
        )
    return langs


def positive_control_step(cfg: RunConfig, model, stats: NeuronStats, run_dir: Path, log: Log) -> pd.DataFrame | None:
    """The deactivation matrix and its diagonal-dominance test (reused when saved); None when
    ``[neurons] control_limit = 0``."""
    limit = int(cfg.neurons.control_limit)
    if limit <= 0:
        return None
    out = Path(run_dir) / CONTROL_DIR
    path, dom_path = out / "deactivation.csv", out / "dominance.json"
    if path.exists() and dom_path.exists():
        return pd.read_csv(path)
    t0 = time.perf_counter()
    langs = control_langs(cfg)
    corpus = corpus_part(cfg, REPORT_SPLIT, limit).subset(langs=langs)
    neurons = identify_neurons(stats, cfg.neurons.control_method)
    frame = deactivation_matrix(model, corpus, neurons, langs=langs, batch_size=cfg.eval.batch_size,
                                max_length=cfg.stats.max_length, confidence=cfg.eval.confidence)
    dom = diagonal_dominance(frame, seed=cfg.run.seed) if frame["deactivated"].nunique() >= 2 else {}
    dom.update(neurons=cfg.neurons.control_method, split=REPORT_SPLIT, n_sentences=len(corpus), langs=langs)
    write_csv(frame, path)
    atomic_write_json(dom_path, dom)
    log(f"positive control ({cfg.neurons.control_method} deactivation, {len(langs)} languages x {len(corpus)} "
        f"held-out sentences): score {dom.get('score', float('nan')):+.3f}, p = {dom.get('p_value', float('nan')):.3g} "
        f"({time.perf_counter() - t0:.0f} s)")
    return frame


def read_dominance(run_dir: Path) -> dict:
    """``control/dominance.json`` of a run directory ({} when the control did not run)."""
    path = Path(run_dir) / CONTROL_DIR / "dominance.json"
    return read_json(path) if path.exists() else {}
