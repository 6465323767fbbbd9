"""The settings a sweep covers (:class:`SweepGrid`) and its units of work (:class:`SweepCell`).

A grid enumerates **cells**: one (task, language, method, parameters) each, plus one
:data:`~clas_lens.vocab.UNSTEERED` cell per (task, language). A cell's key is a stable string,
e.g. ``task=nli|lang=de|method=clas|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4``, so cells can
be split over processes or machines and merged again. Which parameters a method sweeps over is
declared by the method itself (:mod:`clas_lens.sweep.methods`); :data:`PARAM_FIELDS` names the
grid field that lists each parameter's values.

>>> SweepCell("nli", "de", "deactivate", (("layers", "last:2"),)).key
'task=nli|lang=de|method=deactivate|layers=last:2'
>>> format_param((3, 4)), format_param(1), format_param("mean")
('3,4', '1.0', 'mean')
"""
from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Any, Mapping, Sequence

from clas_lens.checks import float_list, positive_int, unique_langs
from clas_lens.errors import DataValidationError
from clas_lens.specs import LayerSpec, check_value_name
from clas_lens.steering import SHARED_OPTIONS, SUPPRESS_OPTIONS
from clas_lens.sweep.methods import method_names, sweep_method
from clas_lens.vocab import DEFAULT_CONFIDENCE, DEFAULT_SITE, DEFAULT_STEER_LAYERS, POSITIONS, SITES, UNSTEERED

__all__ = ["SweepCell", "SweepGrid", "PARAM_FIELDS", "format_param", "layer_option", "mu_value", "param_value"]

#: The grid field that lists the values of each cell parameter.
PARAM_FIELDS: dict[str, str] = {
    "alpha": "alphas",
    "beta": "betas",
    "gamma": "gammas",
    "layers": "layers",
    "value": "mu_values",
    "strength": "strengths",
    "neuron_seed": "neuron_seeds",
}


def format_param(v: Any) -> str:
    """A parameter value as written in a cell key (numbers as floats, layer lists as ``a,b``)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return repr(float(v))
    if isinstance(v, (list, tuple)):
        return ",".join(str(int(x)) for x in v)
    return str(v)


def layer_option(v: Any) -> str | tuple[int, ...]:
    """One ``layers`` option of a grid, checked by :class:`~clas_lens.specs.LayerSpec`:
    ``"all"``, ``"last:k"``, ``"first:k"`` stay strings, everything else becomes a tuple of ints.

    >>> layer_option("last:4"), layer_option([3, 4]), layer_option("0,2"), layer_option(5)
    ('last:4', (3, 4), (0, 2), (5,))
    """
    spec = LayerSpec.parse(v)
    j = spec.to_json()
    return j if isinstance(j, str) else tuple(int(x) for x in j)


def mu_value(v: Any) -> str | float:
    """One Int-mu value: a value name (:func:`clas_lens.specs.check_value_name`) or a number.

    >>> mu_value("P75"), mu_value(0)
    ('p75', 0.0)
    """
    if isinstance(v, str):
        return check_value_name(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataValidationError(f"Int-mu value {v!r}: use a value name ('mean', 'zero', 'median', 'pNN') or a number.")
    return float(v)


def param_value(name: str, v: Any) -> Any:
    """One value of cell parameter ``name`` in its canonical form: strengths as floats, layer
    options by :func:`layer_option`, Int-mu values by :func:`mu_value`, neuron seeds as ints.

    >>> param_value("beta", 1), param_value("layers", "0,2"), param_value("neuron_seed", 3.0)
    (1.0, (0, 2), 3)
    """
    if name == "layers":
        return layer_option(v)
    if name == "value":
        return mu_value(v)
    if name == "neuron_seed":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 0:
            raise DataValidationError(f"neuron seed {v!r}: use a whole number >= 0.")
        return int(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataValidationError(f"{name} value {v!r}: use a number.")
    return float(v)


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
        parts += [f"{k}={format_param(v)}" for k, v in self.params]
        return "|".join(parts)

    @property
    def condition(self) -> str:
        """The key without task and language: the same setting across languages.

        >>> SweepCell("nli", "de", "unsteered").condition
        'unsteered'
        """
        return "|".join(self.key.split("|")[2:]).removeprefix("method=")

    def param(self, name: str, default: Any = None) -> Any:
        """The value of parameter ``name`` (``default`` when the cell has none)."""
        return dict(self.params).get(name, default)


@dataclasses.dataclass(kw_only=True)
class SweepGrid:
    """The settings a sweep covers.

    Args:
        tasks: task names for :func:`clas_lens.data.tasks.load_task` (or keys of ``tasks=``
            given to :func:`~clas_lens.sweep.run_sweep`).
        langs: languages; ``anchor`` is added (first) if missing.
        methods: names from the sweep-method registry (:func:`clas_lens.sweep.methods.method_names`):
            ``"clas"`` (alphas x betas x gammas x layers), ``"int_mu"`` (mu_values x layers),
            ``"deactivate"`` and ``"lape_deactivate"`` (layers), ``"diffmean"`` (strengths x
            layers). An unsteered cell per (task, lang) is always included.
        alphas, betas, gammas: CLAS strengths.
        layers: layer options, each a layer spec (:class:`~clas_lens.specs.LayerSpec`:
            ``"last:k"``, ``"all"``, a list of block indices ...).
        mu_values: Int-mu values: value names (``"mean"`` needs statistics, ``"median"`` /
            ``"pNN"`` need quantiles) or numbers.
        strengths: DiffMean strengths (residual-stream units).
        neuron_seeds: seeds of the random neuron sets of the ``clas_random`` control
            (:func:`clas_lens.neurons.random_like`), one cell per seed.
        method_params: ``{method: {parameter: [values]}}``: values that replace the grid
            field's for that method only, e.g. ``{"int_mu": {"layers": ["last:2"]}}`` when
            each method runs at its own chosen setting.
        shared, suppress, positions, site: CLAS options (docs/methods.md, "The CLAS rule");
            ``specific=`` is the deprecated name of ``suppress``.
        task_options: ``{task name: load_task options}`` (templates, label words, data files).
        limit: first n items per language; seed, n_boot, confidence: bootstrap settings
            (``alpha=`` for the significance level is deprecated: use ``confidence``).
        batch_size: passed to :func:`clas_lens.evaluation.predict`.

    >>> g = SweepGrid(langs=["de"], tasks=["nli"], betas=[0.1, 0.2])
    >>> [c.key for c in g.cells()][:2]
    ['task=nli|lang=en|method=unsteered', 'task=nli|lang=en|method=clas|alpha=1.0|beta=0.1|gamma=0.2|layers=last:4']
    >>> len(g.cells()), SweepGrid.from_dict(g.to_dict()) == g
    (6, True)
    """

    langs: Sequence[str]
    tasks: Sequence[str] = ("nli",)
    methods: Sequence[str] = ("clas",)
    alphas: Sequence[float] = (1.0,)
    betas: Sequence[float] = (0.2,)
    gammas: Sequence[float] = (0.2,)
    layers: Sequence[Any] = (DEFAULT_STEER_LAYERS,)
    mu_values: Sequence[Any] = ("mean",)
    strengths: Sequence[float] = (1.0,)
    neuron_seeds: Sequence[int] = (0,)
    method_params: Mapping[str, Mapping[str, Sequence[Any]]] = dataclasses.field(default_factory=dict)
    anchor: str | None = "en"
    shared: str = "partial"
    suppress: str = "target"
    positions: str = "all"
    site: str = DEFAULT_SITE
    task_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    limit: int | None = None
    seed: int = 0
    n_boot: int = 1000
    confidence: float = DEFAULT_CONFIDENCE
    batch_size: int = 32
    alpha: dataclasses.InitVar[float | None] = None
    specific: dataclasses.InitVar[str | None] = None

    def __post_init__(self, alpha: float | None = None, specific: str | None = None) -> None:
        if specific is not None:
            warnings.warn("SweepGrid(specific=...) is deprecated: use suppress=.", DeprecationWarning, stacklevel=3)
            self.suppress = specific
        if alpha is not None:
            warnings.warn(
                "SweepGrid(alpha=...) is deprecated: give the confidence level, confidence=1 - alpha.",
                DeprecationWarning,
                stacklevel=3,
            )
            self.confidence = 1.0 - float(alpha)
        if isinstance(self.langs, str) or isinstance(self.tasks, str) or isinstance(self.methods, str):
            raise DataValidationError("SweepGrid: langs, tasks and methods are lists, e.g. langs=['de'].")
        self.langs = tuple(self.langs)
        self.tasks = tuple(self.tasks)
        self.methods = tuple(self.methods)
        # lists of finite numbers: "12" is not [1.0, 2.0], NaN is not a strength
        self.alphas = tuple(float_list(self.alphas, "SweepGrid.alphas", nonempty=False))
        self.betas = tuple(float_list(self.betas, "SweepGrid.betas", nonempty=False))
        self.gammas = tuple(float_list(self.gammas, "SweepGrid.gammas", nonempty=False))
        self.strengths = tuple(float_list(self.strengths, "SweepGrid.strengths", nonempty=False))
        self.layers = tuple(layer_option(l) for l in self.layers)
        self.mu_values = tuple(mu_value(v) for v in self.mu_values)
        self.neuron_seeds = tuple(param_value("neuron_seed", v) for v in self.neuron_seeds)
        self.confidence = float(self.confidence)
        self.task_options = {str(k): dict(v) for k, v in dict(self.task_options).items()}
        unknown = sorted(set(self.task_options) - set(self.tasks))
        if unknown:
            raise DataValidationError(f"SweepGrid.task_options names task(s) {unknown} that are not in tasks={list(self.tasks)}.")
        if not self.langs:
            raise DataValidationError("SweepGrid needs at least one language (langs=[...]).")
        unique_langs(list(self.langs), "SweepGrid.langs")
        if not self.tasks:
            raise DataValidationError("SweepGrid needs at least one task (tasks=[...]).")
        bad = [m for m in self.methods if m not in method_names()]
        if bad:
            raise DataValidationError(f"Unknown sweep method(s) {bad}; choose from {list(method_names())}.")
        for name in PARAM_FIELDS.values():
            if not getattr(self, name):
                raise DataValidationError(f"SweepGrid.{name} is empty: give at least one value.")
        self.method_params = self._checked_method_params(self.method_params)
        for name, value, allowed in (
            ("shared", self.shared, SHARED_OPTIONS),
            ("suppress", self.suppress, SUPPRESS_OPTIONS),
            ("positions", self.positions, POSITIONS),
            ("site", self.site, SITES),
        ):
            if value not in allowed:
                raise DataValidationError(f"SweepGrid.{name}={value!r}: choose one of {list(allowed)}.")
        if not 0.0 < self.confidence < 1.0:
            raise DataValidationError(f"SweepGrid.confidence={self.confidence} must be in (0, 1), e.g. 0.95.")
        positive_int(self.limit, "SweepGrid.limit", none_ok=True)
        positive_int(self.n_boot, "SweepGrid.n_boot")
        positive_int(self.batch_size, "SweepGrid.batch_size")

    def _checked_method_params(self, given: Mapping) -> dict[str, dict[str, tuple]]:
        out: dict[str, dict[str, tuple]] = {}
        for method, params in dict(given).items():
            if method not in self.methods:
                raise DataValidationError(
                    f"SweepGrid.method_params names method {method!r}, which is not in methods={list(self.methods)}."
                )
            declared = sweep_method(method).params
            out[method] = {}
            for name, values in dict(params).items():
                if name not in declared:
                    raise DataValidationError(
                        f"SweepGrid.method_params[{method!r}] names parameter {name!r}; {method!r} has {list(declared)}."
                    )
                if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                    raise DataValidationError(
                        f"SweepGrid.method_params[{method!r}][{name!r}] must be a non-empty list of values, got {values!r}."
                    )
                out[method][name] = tuple(param_value(name, v) for v in values)
        return out

    @property
    def all_langs(self) -> list[str]:
        """The languages evaluated: the anchor first (added if missing), then ``langs``."""
        langs = list(self.langs)
        if self.anchor is not None and self.anchor not in langs:
            langs = [self.anchor] + langs
        return langs

    def settings(self, method: str) -> list[tuple[tuple[str, Any], ...]]:
        """Every parameter setting of ``method``: the product of its parameters' grid values,
        in the order the method declares them.

        >>> SweepGrid(langs=["de"], layers=["last:1", [0]]).settings("deactivate")
        [(('layers', 'last:1'),), (('layers', (0,)),)]
        >>> g = SweepGrid(langs=["de"], methods=["clas", "int_mu"], method_params={"int_mu": {"layers": ["last:2"]}})
        >>> g.settings("int_mu"), len(g.settings("clas"))
        ([(('value', 'mean'), ('layers', 'last:2'))], 1)
        """
        params = sweep_method(method).params
        missing = [p for p in params if p not in PARAM_FIELDS]
        if missing:
            raise DataValidationError(f"Sweep method {method!r} declares parameter(s) {missing} that no SweepGrid field lists.")
        own = self.method_params.get(method, {})
        values = [own.get(p) or getattr(self, PARAM_FIELDS[p]) for p in params]
        return [tuple(zip(params, combo)) for combo in itertools.product(*values)]

    def cells(self, *, rank: int = 0, world_size: int = 1) -> list[SweepCell]:
        """Every cell, in a fixed order (task, lang, unsteered first, then methods); with
        ``world_size > 1`` only every ``world_size``-th cell starting at ``rank``."""
        if not 0 <= rank < world_size:
            raise DataValidationError(f"rank={rank} must be in [0, world_size={world_size}).")
        out = []
        for task in self.tasks:
            for lang in self.all_langs:
                out.append(SweepCell(task, lang, UNSTEERED))
                for method in self.methods:
                    out += [SweepCell(task, lang, method, s) for s in self.settings(method)]
        return out[rank::world_size]

    def to_dict(self) -> dict:
        """Plain JSON-able fields (tuples as lists)."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        d["method_params"] = {
            m: {p: [list(x) if isinstance(x, tuple) else x for x in vals] for p, vals in params.items()}
            for m, params in self.method_params.items()
        }
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "SweepGrid":
        """Rebuild from :meth:`to_dict`; grids saved by older releases are read too (a bootstrap
        ``alpha`` becomes ``confidence = 1 - alpha``, ``specific`` is ``suppress``)."""
        d = dict(d)
        if "specific" in d:
            d.setdefault("suppress", d.pop("specific"))
        if "alpha" in d:
            old = d.pop("alpha")
            d.setdefault("confidence", 1.0 - float(old))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataValidationError(f"Unknown SweepGrid field(s) {unknown}; known: {sorted(known)}.")
        return cls(**d)
