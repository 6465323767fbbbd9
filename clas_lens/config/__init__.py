"""Run configuration: one TOML file describes a whole pipeline run.

Every section is a ``@dataclass(kw_only=True)`` with defaults; unknown sections or keys, and
values outside their allowed set, raise :class:`~clas_lens.errors.DataValidationError` naming
the key and the allowed values. The allowed values are read from the registries and constants
of the modules that consume them (:func:`allowed_values`), never copied here: neuron methods
from :mod:`clas_lens.neurons`, sweep methods from :mod:`clas_lens.sweep.methods`, tasks from
:mod:`clas_lens.data.tasks`, sites and positions from :mod:`clas_lens.vocab`, layer specs and
value names from :mod:`clas_lens.specs`, per-language cluster metrics, poolings and projections
from :mod:`clas_lens.clusters`, figure formats from :mod:`clas_lens.plotting`. The resolved config
is saved into every run directory.

The package: :mod:`~clas_lens.config.sections` (the sections and :class:`RunConfig`),
:mod:`~clas_lens.config.allowed` (allowed values of single keys), :mod:`~clas_lens.config.consistency`
(checks of a whole config), :mod:`~clas_lens.config.loading` (:func:`load` with overrides).

>>> cfg = RunConfig.from_dict({"run": {"name": "x"}, "eval": {"tasks": ["cloze"]}})
>>> cfg.eval.tasks, cfg.stats.site
(['cloze'], 'post')
>>> RunConfig.from_dict({"stats": {"site": "mlp"}})
Traceback (most recent call last):
...
clas_lens.errors.DataValidationError: config key 'stats.site' = 'mlp' is not allowed; allowed values: ['post', 'act']
"""
from clas_lens.config.allowed import DEVICE_MAPS, allowed_values, check_value
from clas_lens.config.consistency import check_corpus, check_ranges, check_task, task_languages
from clas_lens.config.loading import config_path, default_config_path, load, packaged_configs, parse_override
from clas_lens.config.sections import (
    LATER_KEYS,
    SPEED_KEYS,
    SECTIONS,
    ClustersSection,
    CorpusSection,
    EvalSection,
    FiguresSection,
    ModelSection,
    NeuronsSection,
    RunConfig,
    RunSection,
    StatsSection,
    SteeringSection,
)

__all__ = [
    "DEVICE_MAPS", "LATER_KEYS", "SPEED_KEYS", "SECTIONS", "ClustersSection", "CorpusSection", "EvalSection", "FiguresSection",
    "ModelSection", "NeuronsSection", "RunConfig", "RunSection", "StatsSection", "SteeringSection",
    "allowed_values", "check_corpus", "check_ranges", "check_task", "check_value", "config_path", "default_config_path", "load", "packaged_configs",
    "parse_override", "task_languages",
]
