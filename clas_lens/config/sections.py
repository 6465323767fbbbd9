"""The run configuration's shape: one ``@dataclass(kw_only=True)`` per TOML section, with its
defaults, and :class:`RunConfig`, the whole file (reading a table checks every key and value with
:mod:`clas_lens.config.allowed` and the whole config with :mod:`clas_lens.config.consistency`).

>>> RunConfig.from_dict({"run": {"name": "x"}}).run_dir.as_posix()
'runs/x'
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clas_lens.config.allowed import check_value
from clas_lens.config.consistency import check_corpus, check_ranges, check_task, task_languages
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.languages import EMBEDDED_LANGS
from clas_lens.vocab import DEFAULT_CONFIDENCE, DEFAULT_SITE, DEFAULT_STEER_LAYERS


@dataclass(kw_only=True)
class RunSection:
    name: str = "demo"
    out_dir: str = "runs"  # the run directory is out_dir/name
    seed: int = 0


@dataclass(kw_only=True)
class ModelSection:
    name: str = "default"  # "default", a local HF folder or a hub id ("meta-llama/Llama-3.1-8B")
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", "mps"
    threads: int = 0  # 0: leave torch's default
    dtype: str = "float32"  # parameter dtype: "bfloat16", "float16" or "float32"
    device_map: str | dict = ""  # "": the whole model on `device`; "auto", "balanced", ... or {module: device}


@dataclass(kw_only=True)
class CorpusSection:
    name: str = "default"
    langs: list[str] = field(default_factory=lambda: list(EMBEDDED_LANGS))
    anchor: str = "en"
    stats_limit: int = 64  # parallel items used for neuron statistics (0 = all)
    cluster_limit: int = 48  # parallel items used for residual clusters (0 = all)
    drop_incomplete: bool = False  # drop items missing a text in some language (reported), instead of failing


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
    stability_splits: int = 5  # random split halves of the stats sentences for split-half Jaccard (0: none)
    control_method: str = "lape"  # neurons whose deactivation is the positive control
    control_langs: list[str] = field(default_factory=list)  # languages of the positive control (empty: corpus.langs)
    control_limit: int = 8  # held-out test sentences per language for the positive control (0: none)


@dataclass(kw_only=True)
class SteeringSection:
    layers: str | list[int] | list[str] = DEFAULT_STEER_LAYERS  # one spec, or a list of spec strings (chosen on dev)
    alphas: list[float] = field(default_factory=lambda: [1.0])
    betas: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5])
    gammas: list[float] = field(default_factory=lambda: [0.2])
    methods: list[str] = field(default_factory=lambda: ["clas", "int_mu"])
    mu_values: list[str | float] = field(default_factory=lambda: ["mean"])  # Int-mu values
    strengths: list[float] = field(default_factory=lambda: [1.0])  # DiffMean strengths
    positions: str = "all"
    shared: str = "partial"
    suppress: str = "target"
    random_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # random-neuron control (clas_random)


@dataclass(kw_only=True)
class EvalSection:
    tasks: list[str] = field(default_factory=lambda: ["cloze", "nli"])
    limits: dict[str, int] = field(default_factory=lambda: {"nli": 24, "qa": 12})
    n_boot: int = 1000
    confidence: float = DEFAULT_CONFIDENCE
    # the sweep setting whose per-language gains feed the divergence test
    gain_task: str = "cloze"
    gain_metric: str = "accuracy"
    # per-task languages ({task: [codes]}; default corpus.langs) and load_task options
    # ({task: {dataset, hub_config, hub_split, split, data_files, template, ...}})
    langs: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_size: int = 32  # sequences per forward pass when scoring tasks
    # replay the unsteered blocks before the first edited layer across a sweep's conditions
    # (clas_lens.prefix; results identical, so not part of the run's identity)
    prefix_reuse: bool = True
    dev_limits: dict[str, int] = field(default_factory=dict)  # dev items per language for choosing settings (default: limits)
    # TOST margins per metric: the anchor is "kept" only when its change is shown to lie within them
    anchor_margins: dict[str, float] = field(
        default_factory=lambda: {"neg_nll": 0.05, "margin": 0.25, "gold_logprob": 0.25, "accuracy": 0.05, "f1": 0.05}
    )


@dataclass(kw_only=True)
class ClustersSection:
    pooling: str = "mean"
    layers: str | list[int] = "all"
    projection: str = "pca"
    divergence_metric: str = "silhouette_cosine"
    batch_size: int = 16  # sentences per forward pass for residual representations


@dataclass(kw_only=True)
class FiguresSection:
    formats: list[str] = field(default_factory=lambda: ["html", "png", "svg"])


#: The TOML sections and the dataclass of each.
SECTIONS: dict[str, type] = {
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
    "steering.suppress", "eval.confidence", "model.dtype", "model.device_map", "corpus.drop_incomplete",
    "eval.langs", "eval.options", "eval.batch_size", "clusters.batch_size",
    "neurons.stability_splits", "neurons.control_method", "neurons.control_langs", "neurons.control_limit",
    "steering.random_seeds", "eval.dev_limits", "eval.anchor_margins",
)
#: Keys that change only how fast a run goes, never its results: not part of its identity.
SPEED_KEYS: tuple[str, ...] = ("eval.prefix_reuse",)


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
        """sha256 of the settings that decide a run's results (figures and :data:`SPEED_KEYS`
        excluded; keys of :data:`LATER_KEYS` only when changed from their defaults).

        >>> RunConfig().identity() == RunConfig.from_dict({"figures": {"formats": ["html"]}}).identity()
        True
        >>> RunConfig().identity() == RunConfig.from_dict({"eval": {"prefix_reuse": False}}).identity()
        True
        """
        d = {k: dict(v) for k, v in self.to_dict().items() if k != "figures"}
        for dotted in SPEED_KEYS:
            section, key = dotted.split(".")
            d[section].pop(key, None)
        defaults = RunConfig().to_dict()
        for dotted in LATER_KEYS:
            section, key = dotted.split(".")
            if d[section].get(key) == defaults[section][key]:
                del d[section][key]
        return sha256_json(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise DataValidationError(
                f"unknown config section {unknown[0]!r}; allowed sections: {sorted(SECTIONS)}"
            )
        sections = {}
        for name, klass in SECTIONS.items():
            if not isinstance(data.get(name, {}) or {}, dict):
                raise DataValidationError(f"config section [{name}] must be a table, got {data[name]!r}")
            raw = dict(data.get(name, {}) or {})
            fields = {f.name: f for f in dataclasses.fields(klass)}
            bad = sorted(set(raw) - set(fields))
            if bad:
                raise DataValidationError(
                    f"unknown config key '{name}.{bad[0]}'; allowed keys in [{name}]: {sorted(fields)}"
                )
            sections[name] = klass(**raw)
            for key, value in raw.items():
                check_value(f"{name}.{key}", value, fields[key])
        cfg = cls(**sections)
        if cfg.corpus.anchor not in cfg.corpus.langs:
            raise DataValidationError(
                f"config key 'corpus.anchor' = {cfg.corpus.anchor!r} must be one of corpus.langs {cfg.corpus.langs}"
            )
        outside = [lang for lang in cfg.neurons.control_langs if lang not in cfg.corpus.langs]
        if outside:
            raise DataValidationError(
                f"config key 'neurons.control_langs' has {outside[0]!r}, which is not in corpus.langs {cfg.corpus.langs}"
            )
        if cfg.eval.gain_task not in cfg.eval.tasks:
            raise DataValidationError(
                f"config key 'eval.gain_task' = {cfg.eval.gain_task!r} must be one of eval.tasks {cfg.eval.tasks}"
            )
        if not 0.0 < float(cfg.eval.confidence) < 1.0:
            raise DataValidationError(f"config key 'eval.confidence' = {cfg.eval.confidence!r} must be in (0, 1), e.g. 0.95")
        check_ranges(cfg)
        check_corpus(cfg)
        for key in ("langs", "options"):
            extra = [t for t in getattr(cfg.eval, key) if t not in cfg.eval.tasks]
            if extra:
                raise DataValidationError(f"config key 'eval.{key}.{extra[0]}': task {extra[0]!r} is not in eval.tasks {cfg.eval.tasks}")
        for task in cfg.eval.tasks:
            check_task(cfg, task)
        return cfg

    def task_langs(self, task: str) -> list[str]:
        """The languages ``task`` is evaluated in: ``[eval.langs] task`` (each must be one the
        task has), else the languages of ``corpus.langs`` the task has (XQuAD has no ``sw``).
        The anchor is always evaluated too.

        >>> RunConfig.from_dict({"eval": {"tasks": ["cloze"], "langs": {"cloze": ["en", "de"]}}}).task_langs("cloze")
        ['en', 'de']
        >>> "sw" in RunConfig.from_dict({"eval": {"tasks": ["xquad"], "gain_task": "xquad"}}).task_langs("xquad")
        False
        """
        if task in self.eval.langs:
            return list(self.eval.langs[task])
        have = task_languages(task, self.task_options(task))
        return [lang for lang in self.corpus.langs if have is None or lang in have]

    def task_options(self, task: str) -> dict[str, Any]:
        """The :func:`~clas_lens.data.tasks.load_task` options of ``task`` (``[eval.options.task]``)."""
        return dict(self.eval.options.get(task, {}))

    @classmethod
    def from_toml(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.exists():
            raise DataValidationError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise DataValidationError(f"{path} is not valid TOML (UTF-8 text): {e}") from e
        return cls.from_dict(data)
