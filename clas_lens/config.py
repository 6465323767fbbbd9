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

>>> cfg = RunConfig.from_dict({"run": {"name": "x"}, "eval": {"tasks": ["cloze"]}})
>>> cfg.eval.tasks, cfg.stats.site
(['cloze'], 'post')
>>> RunConfig.from_dict({"stats": {"site": "mlp"}})
Traceback (most recent call last):
...
clas_lens.errors.DataValidationError: config key 'stats.site' = 'mlp' is not allowed; allowed values: ['post', 'act']
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from clas_lens import clusters, plotting
from clas_lens.data.tasks import task_names
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.languages import EMBEDDED_LANGS
from clas_lens.neurons.registry import method_names as neuron_methods
from clas_lens.specs import LayerSpec
from clas_lens.steering import SHARED_OPTIONS, SUPPRESS_OPTIONS
from clas_lens.sweep.grid import mu_value
from clas_lens.sweep.methods import method_names as sweep_methods
from clas_lens.vocab import DEFAULT_CONFIDENCE, DEFAULT_SITE, DEFAULT_STEER_LAYERS, POSITIONS, SITES


@dataclass(kw_only=True)
class RunSection:
    name: str = "demo"
    out_dir: str = "runs"  # the run directory is out_dir/name
    seed: int = 0


@dataclass(kw_only=True)
class ModelSection:
    name: str = "default"
    device: str = "cpu"
    threads: int = 0  # 0: leave torch's default


@dataclass(kw_only=True)
class CorpusSection:
    name: str = "default"
    langs: list[str] = field(default_factory=lambda: list(EMBEDDED_LANGS))
    anchor: str = "en"
    stats_limit: int = 64  # parallel items used for neuron statistics (0 = all)
    cluster_limit: int = 48  # parallel items used for residual clusters (0 = all)


@dataclass(kw_only=True)
class StatsSection:
    site: str = DEFAULT_SITE
    batch_size: int = 16
    threshold: float = 0.0
    max_length: int = 128


@dataclass(kw_only=True)
class NeuronsSection:
    method: str = "clas"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class SteeringSection:
    layers: str | list[int] = DEFAULT_STEER_LAYERS
    alphas: list[float] = field(default_factory=lambda: [1.0])
    betas: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5])
    gammas: list[float] = field(default_factory=lambda: [0.2])
    methods: list[str] = field(default_factory=lambda: ["clas", "int_mu"])
    mu_values: list[str | float] = field(default_factory=lambda: ["mean"])  # Int-mu values
    strengths: list[float] = field(default_factory=lambda: [1.0])  # DiffMean strengths
    positions: str = "all"
    shared: str = "partial"
    suppress: str = "target"


@dataclass(kw_only=True)
class EvalSection:
    tasks: list[str] = field(default_factory=lambda: ["cloze", "nli"])
    limits: dict[str, int] = field(default_factory=lambda: {"nli": 24, "qa": 12})
    n_boot: int = 1000
    confidence: float = DEFAULT_CONFIDENCE
    # the sweep setting whose per-language gains feed the divergence test
    gain_task: str = "cloze"
    gain_metric: str = "accuracy"


@dataclass(kw_only=True)
class ClustersSection:
    pooling: str = "mean"
    layers: str | list[int] = "all"
    projection: str = "pca"
    divergence_metric: str = "silhouette_cosine"


@dataclass(kw_only=True)
class FiguresSection:
    formats: list[str] = field(default_factory=lambda: ["html", "png", "svg"])


_SECTIONS: dict[str, type] = {
    "run": RunSection,
    "model": ModelSection,
    "corpus": CorpusSection,
    "stats": StatsSection,
    "neurons": NeuronsSection,
    "steering": SteeringSection,
    "eval": EvalSection,
    "clusters": ClustersSection,
    "figures": FiguresSection,
}

#: Keys added after the first release: left out of a run's identity while at their defaults,
#: so run directories written before they existed still resume.
LATER_KEYS: tuple[str, ...] = (
    "steering.mu_values", "steering.strengths", "steering.positions", "steering.shared",
    "steering.suppress", "eval.confidence",
)


def allowed_values() -> dict[str, tuple]:
    """``{"section.key": allowed values}`` of every key with a fixed set, read from the module
    that consumes the value (on every call, so methods and tasks registered later count).
    Keys holding lists allow any subset.

    >>> allowed_values()["steering.methods"]
    ('clas', 'int_mu', 'deactivate', 'lape_deactivate', 'diffmean')
    """
    return {
        "stats.site": tuple(SITES),
        "neurons.method": tuple(neuron_methods()),
        "steering.methods": tuple(sweep_methods()),
        "steering.positions": tuple(POSITIONS),
        "steering.shared": tuple(SHARED_OPTIONS),
        "steering.suppress": tuple(SUPPRESS_OPTIONS),
        "corpus.langs": tuple(EMBEDDED_LANGS),
        "eval.tasks": tuple(task_names()),
        "clusters.pooling": tuple(clusters.POOLINGS),
        "clusters.projection": tuple(clusters.PROJECTIONS),
        "clusters.divergence_metric": tuple(clusters.PER_LANGUAGE_METRICS),
        "figures.formats": ("html",) + tuple(plotting.STATIC_FORMATS),
    }


def _check_layers(key: str, value: Any) -> None:
    try:
        LayerSpec.parse(value)
    except DataValidationError as e:
        raise DataValidationError(f"config key {key!r}: {e}") from None


def _check_mu_values(key: str, value: Any) -> None:
    for v in value if isinstance(value, list) else [value]:
        try:
            mu_value(v)
        except DataValidationError as e:
            raise DataValidationError(f"config key {key!r} has {v!r}: {e}") from None


#: Keys checked by a parser of their own (the one parser of that kind of value).
_PARSED: dict[str, Callable[[str, Any], None]] = {
    "steering.layers": _check_layers,
    "clusters.layers": _check_layers,
    "steering.mu_values": _check_mu_values,
}


@dataclass(kw_only=True)
class RunConfig:
    """The whole pipeline's settings (see ``clas_lens/configs/demo.toml``)."""

    run: RunSection = field(default_factory=RunSection)
    model: ModelSection = field(default_factory=ModelSection)
    corpus: CorpusSection = field(default_factory=CorpusSection)
    stats: StatsSection = field(default_factory=StatsSection)
    neurons: NeuronsSection = field(default_factory=NeuronsSection)
    steering: SteeringSection = field(default_factory=SteeringSection)
    eval: EvalSection = field(default_factory=EvalSection)
    clusters: ClustersSection = field(default_factory=ClustersSection)
    figures: FiguresSection = field(default_factory=FiguresSection)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.out_dir) / self.run.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> str:
        """sha256 of the settings that decide a run's results (figures excluded; keys of
        :data:`LATER_KEYS` only when changed from their defaults).

        >>> RunConfig().identity() == RunConfig.from_dict({"figures": {"formats": ["html"]}}).identity()
        True
        """
        d = {k: dict(v) for k, v in self.to_dict().items() if k != "figures"}
        defaults = RunConfig().to_dict()
        for dotted in LATER_KEYS:
            section, key = dotted.split(".")
            if d[section].get(key) == defaults[section][key]:
                del d[section][key]
        return sha256_json(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise DataValidationError(
                f"unknown config section {unknown[0]!r}; allowed sections: {sorted(_SECTIONS)}"
            )
        sections = {}
        for name, klass in _SECTIONS.items():
            raw = dict(data.get(name, {}) or {})
            fields = {f.name: f for f in dataclasses.fields(klass)}
            bad = sorted(set(raw) - set(fields))
            if bad:
                raise DataValidationError(
                    f"unknown config key '{name}.{bad[0]}'; allowed keys in [{name}]: {sorted(fields)}"
                )
            sections[name] = klass(**raw)
            for key, value in raw.items():
                _check_value(f"{name}.{key}", value, fields[key])
        cfg = cls(**sections)
        if cfg.corpus.anchor not in cfg.corpus.langs:
            raise DataValidationError(
                f"config key 'corpus.anchor' = {cfg.corpus.anchor!r} must be one of corpus.langs {cfg.corpus.langs}"
            )
        if cfg.eval.gain_task not in cfg.eval.tasks:
            raise DataValidationError(
                f"config key 'eval.gain_task' = {cfg.eval.gain_task!r} must be one of eval.tasks {cfg.eval.tasks}"
            )
        if not 0.0 < float(cfg.eval.confidence) < 1.0:
            raise DataValidationError(f"config key 'eval.confidence' = {cfg.eval.confidence!r} must be in (0, 1), e.g. 0.95")
        return cfg

    @classmethod
    def from_toml(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.exists():
            raise DataValidationError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise DataValidationError(f"{path} is not valid TOML: {e}") from e
        return cls.from_dict(data)


def _check_value(key: str, value: Any, f: dataclasses.Field) -> None:
    allowed = allowed_values()
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if key in _PARSED:
        _PARSED[key](key, value)
    if key in allowed:
        choices = list(allowed[key])
        if isinstance(default, list):
            if not isinstance(value, list):
                raise DataValidationError(f"config key {key!r} must be a list, got {value!r}")
            bad = [v for v in value if v not in choices]
            if bad:
                raise DataValidationError(
                    f"config key {key!r} has {bad[0]!r}, which is not allowed; allowed values: {choices}"
                )
        elif value not in choices:
            raise DataValidationError(f"config key {key!r} = {value!r} is not allowed; allowed values: {choices}")
    numeric = (int, float)
    if isinstance(default, bool) or default is None:
        return
    if isinstance(default, numeric) and not (isinstance(value, numeric) and not isinstance(value, bool)):
        raise DataValidationError(f"config key {key!r} must be a number, got {value!r}")
    if isinstance(default, list) and not isinstance(value, (list, str)):
        raise DataValidationError(f"config key {key!r} must be a list, got {value!r}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise DataValidationError(f"config key {key!r} must be a table, got {value!r}")


def default_config_path() -> Path:
    """The embedded demo config shipped with the package."""
    return Path(__file__).parent / "configs" / "demo.toml"
