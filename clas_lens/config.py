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

from clas_lens import checks, clusters, plotting
from clas_lens.data.loaders import FLORES_NAMES, embedded_languages
from clas_lens.data.tasks import task_names, task_spec
from clas_lens.data.tasks.options import check_options
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.languages import EMBEDDED_LANGS, check_lang_code, flores_code
from clas_lens.models import DTYPES
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
    "steering.suppress", "eval.confidence", "model.dtype", "model.device_map", "corpus.drop_incomplete",
    "eval.langs", "eval.options", "eval.batch_size", "clusters.batch_size",
    "neurons.stability_splits", "neurons.control_method", "neurons.control_langs", "neurons.control_limit",
    "steering.random_seeds", "eval.dev_limits", "eval.anchor_margins",
)


def allowed_values() -> dict[str, tuple]:
    """``{"section.key": allowed values}`` of every key with a fixed set, read from the module
    that consumes the value (on every call, so methods and tasks registered later count).
    Keys holding lists allow any subset. Language codes are not a fixed set: any code
    :func:`~clas_lens.languages.check_lang_code` knows passes (the corpus and each task then
    say which they have).

    >>> allowed_values()["steering.methods"][:5]
    ('clas', 'int_mu', 'deactivate', 'lape_deactivate', 'diffmean')
    """
    return {
        "model.dtype": tuple(DTYPES),
        "stats.site": tuple(SITES),
        "neurons.method": tuple(neuron_methods()),
        "neurons.control_method": tuple(neuron_methods()),
        "steering.methods": tuple(sweep_methods()),
        "steering.positions": tuple(POSITIONS),
        "steering.shared": tuple(SHARED_OPTIONS),
        "steering.suppress": tuple(SUPPRESS_OPTIONS),
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


def _check_layer_options(key: str, value: Any) -> None:
    """One layer spec, or a list of layer-spec strings: options chosen among on dev."""
    several = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    for v in value if several else [value]:
        _check_layers(key, v)


def _check_mu_values(key: str, value: Any) -> None:
    for v in value if isinstance(value, list) else [value]:
        try:
            mu_value(v)
        except DataValidationError as e:
            raise DataValidationError(f"config key {key!r} has {v!r}: {e}") from None


def _check_langs(key: str, value: Any) -> None:
    if not isinstance(value, list):
        raise DataValidationError(f"config key {key!r} must be a list of language codes, got {value!r}")
    for lang in value:
        try:
            check_lang_code(lang)
        except DataValidationError as e:
            raise DataValidationError(f"config key {key!r} has {lang!r}: {e}") from None
    if not value:
        raise DataValidationError(f"config key {key!r} is empty: give at least one language")


def _check_task_table(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise DataValidationError(f"config key {key!r} must be a table {{task: ...}}, got {value!r}")
    for task, v in value.items():
        if task not in task_names():
            raise DataValidationError(f"config key '{key}.{task}': unknown task; allowed values: {list(task_names())}")
        if key == "eval.langs":
            _check_langs(f"{key}.{task}", v)
        elif not isinstance(v, dict):
            raise DataValidationError(f"config key '{key}.{task}' must be a table of load_task options, got {v!r}")


def _check_device(key: str, value: Any) -> None:
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type == "meta":
        raise DataValidationError(f"config key {key!r} = {value!r} is not a torch device; e.g. 'cpu', 'cuda', 'cuda:1', 'mps'")


#: ``model.device_map`` strings (Hugging Face / accelerate placements); a table maps modules to devices.
DEVICE_MAPS: tuple[str, ...] = ("auto", "balanced", "balanced_low_0", "sequential")


def _check_device_map(key: str, value: Any) -> None:
    if value == "" or value in DEVICE_MAPS:
        return
    if isinstance(value, dict) and value and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value.values()):
        return
    raise DataValidationError(
        f"config key {key!r} = {value!r} is not allowed; allowed values: '' (the whole model on model.device), "
        f"{list(DEVICE_MAPS)} or a table {{module = device}}"
    )


def _check_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataValidationError(f"config key {key!r} must be a number (a whole number >= 1), got {value!r}")


#: Keys checked by a parser of their own (the one parser of that kind of value).
_PARSED: dict[str, Callable[[str, Any], None]] = {
    "steering.layers": _check_layer_options,
    "clusters.layers": _check_layers,
    "steering.mu_values": _check_mu_values,
    "corpus.langs": _check_langs,
    "eval.langs": _check_task_table,
    "eval.options": _check_task_table,
    "model.device": _check_device,
    "model.device_map": _check_device_map,
    "stats.batch_size": _check_positive,
    "eval.batch_size": _check_positive,
    "clusters.batch_size": _check_positive,
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
                _check_value(f"{name}.{key}", value, fields[key])
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
        _check_corpus(cfg)
        for key in ("langs", "options"):
            extra = [t for t in getattr(cfg.eval, key) if t not in cfg.eval.tasks]
            if extra:
                raise DataValidationError(f"config key 'eval.{key}.{extra[0]}': task {extra[0]!r} is not in eval.tasks {cfg.eval.tasks}")
        for task in cfg.eval.tasks:
            _check_task(cfg, task)
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
    if isinstance(default, bool) and not isinstance(value, bool):
        raise DataValidationError(f"config key {key!r} must be true or false, got {value!r}")
    if isinstance(default, bool) or default is None:
        return
    if isinstance(default, numeric) and not (isinstance(value, numeric) and not isinstance(value, bool)):
        raise DataValidationError(f"config key {key!r} must be a number, got {value!r}")
    if isinstance(default, list) and not isinstance(value, list):  # "12" is not [1, 2]
        raise DataValidationError(f"config key {key!r} must be a list, e.g. {key.split('.')[1]} = {default!r}; got {value!r}")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise DataValidationError(f"config key {key!r} must be a table, got {value!r}")


def _strings(node: Any, key: str) -> None:
    if isinstance(node, str):
        checks.text(node, f"config key {key!r}")
    elif isinstance(node, dict):
        for k, v in node.items():
            _strings(k, key)
            _strings(v, f"{key}.{k}")
    elif isinstance(node, (list, tuple)):
        for v in node:
            _strings(v, key)


def _once(key: str, values: list) -> None:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise DataValidationError(f"config key {key!r} = {values!r} is not allowed: use each value once ({seen[0]!r} is repeated)")


def check_ranges(cfg: RunConfig) -> None:
    """Every number of ``cfg`` of the right type and in its range, every list a list of distinct
    values, every string valid UTF-8 and the run name one plain folder name (validators of
    :mod:`clas_lens.checks`; the message names the key and the allowed range).

    >>> RunConfig.from_dict({"corpus": {"stats_limit": -1}})
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: config key 'corpus.stats_limit' = -1 is not allowed: use a whole number >= 0 (0: all)
    """
    k = "config key {!r}".format
    for section, values in cfg.to_dict().items():
        _strings(values, section)
    checks.path_component(cfg.run.name, k("run.name"))
    checks.text(cfg.run.out_dir, k("run.out_dir"), nonempty=True)
    checks.non_negative_int(cfg.run.seed, k("run.seed"))
    checks.non_negative_int(cfg.model.threads, k("model.threads"), zero_means="torch's default")
    checks.unique_langs(cfg.corpus.langs, k("corpus.langs"))
    checks.non_negative_int(cfg.corpus.stats_limit, k("corpus.stats_limit"), zero_means="all")
    checks.non_negative_int(cfg.corpus.cluster_limit, k("corpus.cluster_limit"), zero_means="all")
    checks.positive_int(cfg.stats.batch_size, k("stats.batch_size"))
    checks.finite_float(cfg.stats.threshold, k("stats.threshold"))
    checks.positive_int(cfg.stats.max_length, k("stats.max_length"), none_ok=True)
    for name in ("alphas", "betas", "gammas", "strengths"):
        checks.float_list(getattr(cfg.steering, name), k(f"steering.{name}"))
    for v in cfg.steering.mu_values:
        if not isinstance(v, str):
            checks.finite_float(v, k("steering.mu_values"))
    _once("steering.methods", cfg.steering.methods)
    _once("eval.tasks", cfg.eval.tasks)
    for task, limit in cfg.eval.limits.items():
        if task not in task_names():
            raise DataValidationError(f"config key 'eval.limits.{task}': unknown task; allowed values: {list(task_names())}")
        checks.positive_int(limit, k(f"eval.limits.{task}"))
    checks.positive_int(cfg.eval.n_boot, k("eval.n_boot"))
    checks.probability(cfg.eval.confidence, k("eval.confidence"), open_low=True, open_high=True)


def _check_corpus(cfg: RunConfig) -> None:
    """The corpus's languages as far as they can be known before loading it."""
    name, langs = cfg.corpus.name, cfg.corpus.langs
    if name == "default":
        have = embedded_languages("corpus")
        missing = [lang for lang in langs if lang not in have]
        if missing:
            raise DataValidationError(
                f"config key 'corpus.langs' has {missing[0]!r}, which the embedded corpus does not have; allowed "
                f"values: {have}. For other languages set corpus.name = 'flores' or the path of JSON-lines files."
            )
    elif name.lower() in FLORES_NAMES:
        for lang in langs:
            try:
                flores_code(lang)
            except DataValidationError as e:
                raise DataValidationError(f"config key 'corpus.langs' has {lang!r}: {e}") from None


def task_languages(task: str, options: dict[str, Any]) -> list[str] | None:
    """The languages task ``task`` has with ``options`` (None: any language, e.g. cloze)."""
    spec = task_spec(task)
    if spec.any_language:
        return None
    try:
        return list(spec.languages(**{k: v for k, v in options.items() if k not in ("split", "split_fractions")}))
    except DataValidationError as e:
        raise DataValidationError(f"config key 'eval.options.{task}': {e}") from None


def _check_task(cfg: RunConfig, task: str) -> None:
    """A task's options and languages, checked as :func:`~clas_lens.data.tasks.load_task` will
    (without reading its data)."""
    spec = task_spec(task)
    options = cfg.task_options(task)
    try:
        check_options(task, options, spec.options)
    except DataValidationError as e:
        raise DataValidationError(f"config key 'eval.options.{task}': {e}") from None
    langs = cfg.task_langs(task)
    key = f"eval.langs.{task}" if task in cfg.eval.langs else "corpus.langs"
    outside = [lang for lang in langs if lang not in cfg.corpus.langs]
    if outside:
        raise DataValidationError(
            f"config key {key!r} has {outside[0]!r}, which is not in corpus.langs {cfg.corpus.langs}: steering a "
            "language needs its neurons, found on the corpus; add it to corpus.langs"
        )
    available = task_languages(task, options)
    if available is None:
        return
    missing = [lang for lang in [cfg.corpus.anchor, *langs] if lang not in available]
    if missing:
        what = "the anchor (corpus.anchor, evaluated with every task)" if missing[0] == cfg.corpus.anchor else key
        raise DataValidationError(
            f"config key {key!r}: task {task!r} has no language {missing[0]!r} ({what}); allowed values: {available}. "
            f"Set [eval.langs] {task} = [...] to the languages it has."
        )


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) < 2 or not all(parts):
        raise DataValidationError(f"override {dotted!r}: use section.key (e.g. model.device), or section.key.sub")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise DataValidationError(f"override {dotted!r}: {part!r} is not a table")
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, value)``: the value in TOML syntax (a bare word is a string).

    >>> parse_override("model.device=cuda"), parse_override("steering.betas=[0.1, 0.2]")
    (('model.device', 'cuda'), ('steering.betas', [0.1, 0.2]))
    """
    if "=" not in text:
        raise DataValidationError(f"override {text!r}: use KEY=VALUE, e.g. model.dtype=bfloat16")
    key, raw = (x.strip() for x in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | tuple = ()) -> RunConfig:
    """The run config of TOML file ``path`` (default: the embedded demo config) with
    ``overrides`` applied before it is checked: ``{"model.device": "cuda"}`` or
    ``["model.device=cuda", "eval.langs.xquad=['en', 'de']"]`` (see :func:`parse_override`).

    >>> load(overrides=["model.dtype=bfloat16"]).model.dtype
    'bfloat16'
    """
    path = Path(path) if path is not None else default_config_path()
    if not path.exists():
        raise DataValidationError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataValidationError(f"{path} is not valid TOML (UTF-8 text): {e}") from e
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(o) for o in overrides]
    for key, value in items:
        _set_dotted(data, key, value)
    return RunConfig.from_dict(data)


def default_config_path() -> Path:
    """The embedded demo config shipped with the package."""
    return Path(__file__).parent / "configs" / "demo.toml"
