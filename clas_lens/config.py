"""Run configuration: one TOML file describes a whole pipeline run.

Every section is a ``@dataclass(kw_only=True)`` with defaults; unknown sections or keys, and
values outside their allowed set, raise :class:`~clas_lens.errors.DataValidationError` naming
the key and the allowed values. The resolved config is saved into every run directory.

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
from typing import Any

from clas_lens.errors import DataValidationError

from clas_lens.languages import EMBEDDED_LANGS  # noqa: E402


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
    site: str = "post"
    batch_size: int = 16
    threshold: float = 0.0
    max_length: int = 128


@dataclass(kw_only=True)
class NeuronsSection:
    method: str = "clas"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class SteeringSection:
    layers: str | list[int] = "last:4"
    alphas: list[float] = field(default_factory=lambda: [1.0])
    betas: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5])
    gammas: list[float] = field(default_factory=lambda: [0.2])
    methods: list[str] = field(default_factory=lambda: ["clas", "int_mu"])


@dataclass(kw_only=True)
class EvalSection:
    tasks: list[str] = field(default_factory=lambda: ["cloze", "nli"])
    limits: dict[str, int] = field(default_factory=lambda: {"nli": 24, "qa": 12})
    n_boot: int = 1000
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

_ALLOWED: dict[str, list] = {
    "stats.site": ["post", "act"],
    "neurons.method": ["clas", "lape", "ap", "mean"],
    "clusters.pooling": ["mean", "last"],
    "clusters.projection": ["pca", "umap"],
    "eval.gain_metric": ["accuracy", "f1", "exact_match"],
}
_ALLOWED_ITEMS: dict[str, list] = {
    "corpus.langs": list(EMBEDDED_LANGS),
    "steering.methods": ["clas", "int_mu", "lape_deactivate", "diffmean"],
    "eval.tasks": ["cloze", "nli", "qa", "xnli", "xquad"],
    "figures.formats": ["html", "png", "svg", "pdf"],
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
    if key in _ALLOWED and value not in _ALLOWED[key]:
        raise DataValidationError(
            f"config key {key!r} = {value!r} is not allowed; allowed values: {_ALLOWED[key]}"
        )
    if key in _ALLOWED_ITEMS:
        if not isinstance(value, list):
            raise DataValidationError(f"config key {key!r} must be a list, got {value!r}")
        bad = [v for v in value if v not in _ALLOWED_ITEMS[key]]
        if bad:
            raise DataValidationError(
                f"config key {key!r} has {bad[0]!r}, which is not allowed; allowed values: {_ALLOWED_ITEMS[key]}"
            )
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
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
