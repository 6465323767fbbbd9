"""clas_lens: Cross-Lingual Activation Steering (CLAS) and language-neuron analysis.

A workbench on TransformerLens's ``TransformerBridge``: load a causal LM, record per-language
MLP neuron statistics on parallel text, sort neurons into shared and language-specific ones,
steer them at inference, evaluate per language, and measure language clusters in the residual
stream before and after steering.

Axis names used in shapes everywhere: ``batch``, ``pos``, ``layer``, ``neuron`` (d_mlp),
``lang``, ``sentence``, ``d_model``.

Imports are lazy: ``import clas_lens`` is cheap, the heavy stack loads on first use.

>>> import clas_lens
>>> sorted(n for n in ("load_model", "collect_stats", "identify_neurons") if n in clas_lens.__all__)
['collect_stats', 'identify_neurons', 'load_model']
>>> clas_lens.vocab.UNSTEERED
'unsteered'
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # models and sites
    "load_model": "clas_lens.models",
    "model_info": "clas_lens.models",
    "ModelInfo": "clas_lens.models",
    "neuron_sites": "clas_lens.sites",
    "NeuronSites": "clas_lens.sites",
    "generate": "clas_lens.generation",
    "encode": "clas_lens.batching",
    # data
    "ParallelCorpus": "clas_lens.data.corpus",
    "load_corpus": "clas_lens.data.corpus",
    "load_task": "clas_lens.data.tasks",
    "detect_language": "clas_lens.data.langid",
    # statistics, neurons, attribution
    "collect_stats": "clas_lens.stats",
    "NeuronStats": "clas_lens.stats",
    "collect_quantiles": "clas_lens.stats",
    "identify_neurons": "clas_lens.neurons",
    "NeuronSet": "clas_lens.neurons",
    "random_like": "clas_lens.neurons",
    "neuron_stability": "clas_lens.neurons",
    "stability_selection": "clas_lens.neurons",
    "attribute_neurons": "clas_lens.attribution",
    "ablation_check": "clas_lens.attribution",
    # steering and evaluation
    "steer": "clas_lens.steering",
    "ClasSteering": "clas_lens.steering",
    "SetNeurons": "clas_lens.steering",
    "Deactivate": "clas_lens.steering",
    "AddNeurons": "clas_lens.steering",
    "DiffMeanSteering": "clas_lens.steering",
    "evaluate": "clas_lens.evaluation",
    "sentence_nll": "clas_lens.lm_nll",
    "deactivation_matrix": "clas_lens.positive_control",
    "diagonal_dominance": "clas_lens.positive_control",
    "run_sweep": "clas_lens.sweep",
    "SweepGrid": "clas_lens.sweep",
    # clusters
    "residual_reps": "clas_lens.clusters",
    "Reps": "clas_lens.clusters",
    "cluster_metrics": "clas_lens.clusters",
    "compare_reps": "clas_lens.clusters",
    "divergence_test": "clas_lens.clusters",
    "project": "clas_lens.clusters",
    # figures
    "save_figure": "clas_lens.plotting",
}
#: Modules reachable as attributes (``clas_lens.sweep``) and imported by ``from clas_lens import *``.
_SUBMODULES = {
    "errors", "io", "vocab", "specs", "languages", "models", "sites", "data", "metrics", "stats",
    "neurons", "attribution", "steering", "evaluation", "sweep", "clusters", "distributed",
    "plotting", "config", "pipeline", "testing", "report", "prefix", "positive_control",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"clas_lens.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'clas_lens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
