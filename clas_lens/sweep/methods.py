"""The one registry of sweep methods: name -> how a cell of that method is steered.

A sweep method declares the cell parameters it sweeps over (each listed by a
:class:`~clas_lens.sweep.grid.SweepGrid` field, see ``grid.PARAM_FIELDS``), builds the
interventions of one cell from the inputs of the sweep (:class:`SweepInputs`), and names the
input tensors it reads so that a sweep directory can refuse to resume with other ones. The
grid, the run configuration (``[steering] methods``) and the CLI read the allowed names from
here (:func:`method_names`); registering a name twice raises.

========================  ============================  ==========================================
name                      parameters                    interventions (docs/methods.md)
========================  ============================  ==========================================
``clas``                  alpha, beta, gamma, layers    :class:`~clas_lens.steering.ClasSteering`
``int_mu``                value, layers                 :class:`~clas_lens.steering.SetNeurons` on
                                                        the language's specific neurons ("mean"
                                                        is Int-mu; needs statistics; "median" /
                                                        "pNN" need quantiles)
``deactivate``            layers                        :class:`~clas_lens.steering.Deactivate` on
                                                        the neuron set's specific neurons
``lape_deactivate``       layers                        ``Deactivate`` on the LAPE-specific neurons
                                                        (``identify_neurons(stats, "lape")``)
``diffmean``              strength, layers              :class:`~clas_lens.steering.DiffMeanSteering`
                                                        from the language towards the anchor
                                                        (needs residual means)
``clas_random``           alpha, beta, gamma, layers,   control: CLAS on
                          neuron_seed                   :func:`~clas_lens.neurons.random_like`
                                                        neurons (same counts per layer, category
                                                        and language), one cell per seed
``uniform_gain``          alpha, beta, gamma, layers    control:
                                                        :meth:`~clas_lens.steering.UniformGain.matching`
                                                        the CLAS cell of the same setting
``boost_only``            alpha, beta, layers           control: ``ClasSteering.boost_only``
``suppress_only``         alpha, gamma, layers          control: ``ClasSteering.suppress_only``
========================  ============================  ==========================================

The last four are **controls of CLAS** (``SweepMethod.control_of == "clas"``): they read the
CLAS grid fields (alphas, betas, gammas, layers) and the CLAS options (shared, suppress,
positions, site), so a grid that holds one CLAS setting runs each control at that setting,
and every item is scored under CLAS and under the control (paired comparisons).
:func:`control_methods` lists them.

>>> method_names()[:5]
('clas', 'int_mu', 'deactivate', 'lape_deactivate', 'diffmean')
>>> control_methods()
('clas_random', 'uniform_gain', 'boost_only', 'suppress_only')
>>> sweep_method("int_mu").params
('value', 'layers')
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import torch

from clas_lens.errors import DataValidationError
from clas_lens.neurons import NeuronSet, identify_neurons, random_like
from clas_lens.specs import quantile_level
from clas_lens.steering import ClasSteering, Deactivate, DiffMeanSteering, SetNeurons, UniformGain
from clas_lens.steering.clas import SHARED_CATEGORIES
from clas_lens.vocab import is_unsteered

__all__ = [
    "SweepInputs",
    "SweepMethod",
    "SWEEP_METHODS",
    "METHODS",
    "register_sweep_method",
    "sweep_method",
    "method_names",
    "control_methods",
    "cell_interventions",
    "build_interventions",
]

#: ``[(name, tensor)]`` items whose hash identifies what a method reads, per identity key.
Fingerprint = dict[str, list[tuple[str, Any]]]


@dataclasses.dataclass
class SweepInputs:
    """What a sweep's cells are built from (only ``neurons`` is always needed).

    Args:
        neurons: the NeuronSet (``identify_neurons``) whose masks CLAS, Int-mu and
            ``deactivate`` use.
        stats: NeuronStats: Int-mu means, and the LAPE neurons of ``lape_deactivate``.
        quantiles, quantile_levels: :func:`clas_lens.collect_quantiles` output and its levels,
            for Int-mu values ``"median"`` / ``"pNN"``.
        residual_means: :func:`clas_lens.steering.residual_means` of every evaluated language
            at the swept layers, for ``diffmean``.
    """

    neurons: Any
    stats: Any = None
    quantiles: Any = None
    quantile_levels: Sequence[Any] | None = None
    residual_means: Any = None
    _lape: Any = dataclasses.field(default=None, init=False, repr=False)
    _random: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    def lape_neurons(self) -> Any:
        """The LAPE neuron set of ``stats`` (computed once)."""
        if self.stats is None:
            raise DataValidationError("The lape_deactivate method needs stats= (a NeuronStats) to find the LAPE neurons.")
        if self._lape is None:
            self._lape = identify_neurons(self.stats, "lape")
        return self._lape

    def random_neurons(self, seed: int, grid) -> Any:
        """``random_like(neurons, seed)`` (computed once per seed). A duck-typed neuron set
        (e.g. a :class:`~clas_lens.steering.MaskSet`) is first made a NeuronSet of the masks
        CLAS reads with the grid's options (shared categories, specific and active per
        language)."""
        if seed not in self._random:
            self._random[seed] = random_like(as_neuron_set(self.neurons, grid), seed=seed)
        return self._random[seed]


def as_neuron_set(neurons: Any, grid) -> NeuronSet:
    """``neurons`` as a :class:`~clas_lens.neurons.NeuronSet`: itself, or a NeuronSet of the
    masks CLAS reads under ``grid``'s options (for duck-typed sets such as ``MaskSet``)."""
    if isinstance(neurons, NeuronSet):
        return neurons
    if neurons is None:
        raise DataValidationError("The clas_random control needs neurons= (a NeuronSet).")
    langs = list(neurons.langs)
    masks: dict[str, dict[str | None, Any]] = {c: {None: neurons.mask(c)} for c in SHARED_CATEGORIES[grid.shared]}
    masks["specific"] = {l: neurons.mask("specific", l) for l in langs}
    if grid.shared == "partial_active":
        masks["active"] = {l: neurons.mask("active", l) for l in langs}
    shape = tuple(masks["specific"][langs[0]].shape)
    return NeuronSet(masks=masks, langs=langs, site=getattr(neurons, "site", None) or grid.site,
                     model_info=getattr(neurons, "model_info", None) or {}, method="given", params={},
                     stats_ref=None, layers=range(shape[0]), shape=shape)


@dataclasses.dataclass(frozen=True)
class SweepMethod:
    """One registry entry: the cell parameters, the builder and the inputs' fingerprint."""

    name: str
    params: tuple[str, ...]
    build: Callable[[Any, Any, SweepInputs], list]
    fingerprint: Callable[[Any, SweepInputs], Fingerprint] | None = None
    summary: str = ""
    control_of: str | None = None


#: name -> :class:`SweepMethod`, in registration order.
SWEEP_METHODS: dict[str, SweepMethod] = {}


def register_sweep_method(
    name: str,
    params: Sequence[str],
    *,
    fingerprint: Callable[[Any, SweepInputs], Fingerprint] | None = None,
    summary: str = "",
    control_of: str | None = None,
) -> Callable:
    """Decorator: register ``build(cell, grid, inputs) -> [interventions]`` under ``name``.

    >>> @register_sweep_method("clas", ("layers",))
    ... def again(cell, grid, inputs):
    ...     return []
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Sweep method 'clas' is already registered.
    """

    def wrap(build: Callable[[Any, Any, SweepInputs], list]) -> Callable:
        if name in SWEEP_METHODS or is_unsteered(name):
            what = "is already registered" if name in SWEEP_METHODS else "names the unsteered condition"
            raise DataValidationError(f"Sweep method {name!r} {what}.")
        SWEEP_METHODS[name] = SweepMethod(name, tuple(params), build, fingerprint, summary, control_of)
        return build

    return wrap


def sweep_method(name: str) -> SweepMethod:
    """The registry entry of ``name``; raises naming the registered methods."""
    if name not in SWEEP_METHODS:
        raise DataValidationError(f"Unknown sweep method {name!r}; choose from {list(SWEEP_METHODS)}.")
    return SWEEP_METHODS[name]


def method_names() -> tuple[str, ...]:
    """Every registered sweep method, in registration order."""
    return tuple(SWEEP_METHODS)


def control_methods(of: str = "clas") -> tuple[str, ...]:
    """The registered controls of method ``of``, in registration order."""
    return tuple(name for name, m in SWEEP_METHODS.items() if m.control_of == of)


def _layers(cell) -> Any:
    layers = cell.param("layers")
    return list(layers) if isinstance(layers, tuple) else layers


def _langs_in(grid, available: Any) -> list[str]:
    have = set(available)
    return [l for l in grid.all_langs if l in have]


# ---------------------------------------------------------------------------------------------
# the built-in methods
# ---------------------------------------------------------------------------------------------
@register_sweep_method("clas", ("alpha", "beta", "gamma", "layers"), summary="CLAS (alpha x beta x gamma x layers)")
def _clas(cell, grid, inputs: SweepInputs) -> list:
    return [
        ClasSteering(
            inputs.neurons, cell.lang, layers=_layers(cell), alpha=cell.param("alpha"), beta=cell.param("beta"),
            gamma=cell.param("gamma"), shared=grid.shared, suppress=grid.suppress,
            positions=grid.positions, site=grid.site,
        )
    ]


def _int_mu_fingerprint(grid, inputs: SweepInputs) -> Fingerprint:
    out: Fingerprint = {}
    if inputs.stats is not None and "mean" in grid.mu_values:
        out["stats_sha256"] = [(f"mean/{l}", inputs.stats.mean(l)) for l in _langs_in(grid, inputs.stats.langs)]
    named = [v for v in grid.mu_values if quantile_level(v) is not None]
    if inputs.quantiles is not None and named:
        items = [(f"quantiles/{l}", inputs.quantiles[l]) for l in _langs_in(grid, inputs.quantiles)]
        levels = [quantile_level(x) if isinstance(x, str) else float(x) for x in (inputs.quantile_levels or [])]
        out["quantiles_sha256"] = items + [("levels", torch.tensor(levels, dtype=torch.float64))]
    return out


@register_sweep_method("int_mu", ("value", "layers"), fingerprint=_int_mu_fingerprint, summary="Int-mu (values x layers)")
def _int_mu(cell, grid, inputs: SweepInputs) -> list:
    value, layers = cell.param("value"), _layers(cell)
    stats = inputs.stats
    if value == "mean":
        if stats is None:
            raise DataValidationError("The int_mu method with value 'mean' needs stats= (a NeuronStats).")
        return [SetNeurons.int_mu(inputs.neurons, stats, cell.lang, layers=layers, positions=grid.positions)]
    site = getattr(stats, "site", None) or grid.site
    if isinstance(value, str) and quantile_level(value) is not None:
        if inputs.quantiles is None:
            raise DataValidationError(
                f"The int_mu method with value {value!r} needs quantiles= (clas_lens.collect_quantiles with that "
                "level) and quantile_levels=[...]."
            )
        return [
            SetNeurons(
                inputs.neurons, value=value, target_lang=cell.lang, layers=layers, positions=grid.positions,
                site=site, quantiles=inputs.quantiles, quantile_levels=inputs.quantile_levels,
            )
        ]
    return [SetNeurons(inputs.neurons, value=value, target_lang=cell.lang, layers=layers, positions=grid.positions, site=site)]


@register_sweep_method("deactivate", ("layers",), summary="zero the neuron set's specific neurons (layers)")
def _deactivate(cell, grid, inputs: SweepInputs) -> list:
    return [Deactivate(inputs.neurons, cell.lang, layers=_layers(cell), positions=grid.positions, site=grid.site)]


def _lape_fingerprint(grid, inputs: SweepInputs) -> Fingerprint:
    if inputs.stats is None:
        return {}
    lape = inputs.lape_neurons()
    return {"lape_sha256": [(f"specific/{l}", lape.mask("specific", l)) for l in _langs_in(grid, lape.langs)]}


@register_sweep_method("lape_deactivate", ("layers",), fingerprint=_lape_fingerprint,
                       summary="zero the LAPE-specific neurons of the statistics (layers)")
def _lape_deactivate(cell, grid, inputs: SweepInputs) -> list:
    return [Deactivate(inputs.lape_neurons(), cell.lang, layers=_layers(cell), positions=grid.positions, site=grid.site)]


def _diffmean_fingerprint(grid, inputs: SweepInputs) -> Fingerprint:
    rm = inputs.residual_means
    if rm is None:
        return {}
    items = [(f"means/{l}", rm.means[l]) for l in _langs_in(grid, rm.langs)]
    return {"residual_means_sha256": items + [("layers", torch.tensor(list(rm.layers), dtype=torch.int64))]}


@register_sweep_method("diffmean", ("strength", "layers"), fingerprint=_diffmean_fingerprint,
                       summary="DiffMean from each language towards the anchor (strengths x layers)")
def _diffmean(cell, grid, inputs: SweepInputs) -> list:
    if inputs.residual_means is None:
        raise DataValidationError(
            "The diffmean method needs residual_means= (clas_lens.steering.residual_means of every evaluated "
            "language at the swept layers)."
        )
    if grid.anchor is None:
        raise DataValidationError("The diffmean method steers towards the anchor language: set SweepGrid.anchor.")
    return [
        DiffMeanSteering(
            cell.lang, grid.anchor, layers=_layers(cell), strength=cell.param("strength"),
            means=inputs.residual_means, positions=grid.positions,
        )
    ]


# ---------------------------------------------------------------------------------------------
# the controls of CLAS (docs/methods.md, "The CLAS rule")
# ---------------------------------------------------------------------------------------------
def _clas_options(grid) -> dict[str, Any]:
    return {"shared": grid.shared, "suppress": grid.suppress, "positions": grid.positions, "site": grid.site}


def _shared_fingerprint(grid, inputs: SweepInputs) -> Fingerprint:
    """The shared masks the controls read (the specific ones are in every sweep's identity)."""
    ns = inputs.neurons
    if ns is None or not hasattr(ns, "mask"):
        return {}
    items = [(c, ns.mask(c)) for c in SHARED_CATEGORIES[grid.shared]]
    if grid.shared == "partial_active":
        items += [(f"active/{l}", ns.mask("active", l)) for l in _langs_in(grid, ns.langs)]
    return {"control_masks_sha256": items}


@register_sweep_method("clas_random", ("alpha", "beta", "gamma", "layers", "neuron_seed"), fingerprint=_shared_fingerprint,
                       summary="control: CLAS on random neurons matched in number (seeds)", control_of="clas")
def _clas_random(cell, grid, inputs: SweepInputs) -> list:
    ns = inputs.random_neurons(cell.param("neuron_seed"), grid)
    return [ClasSteering(ns, cell.lang, layers=_layers(cell), alpha=cell.param("alpha"), beta=cell.param("beta"),
                         gamma=cell.param("gamma"), **_clas_options(grid))]


@register_sweep_method("uniform_gain", ("alpha", "beta", "gamma", "layers"), fingerprint=_shared_fingerprint,
                       summary="control: one gain on every neuron, CLAS's mean gain", control_of="clas")
def _uniform_gain(cell, grid, inputs: SweepInputs) -> list:
    clas = ClasSteering(inputs.neurons, cell.lang, layers=_layers(cell), alpha=cell.param("alpha"),
                        beta=cell.param("beta"), gamma=cell.param("gamma"), **_clas_options(grid))
    return [UniformGain.matching(clas)]


@register_sweep_method("boost_only", ("alpha", "beta", "layers"), fingerprint=_shared_fingerprint,
                       summary="control: CLAS with gamma = 0", control_of="clas")
def _boost_only(cell, grid, inputs: SweepInputs) -> list:
    return [ClasSteering.boost_only(inputs.neurons, cell.lang, beta=cell.param("beta"), layers=_layers(cell),
                                    alpha=cell.param("alpha"), **_clas_options(grid))]


@register_sweep_method("suppress_only", ("alpha", "gamma", "layers"),
                       summary="control: CLAS with beta = 0", control_of="clas")
def _suppress_only(cell, grid, inputs: SweepInputs) -> list:
    return [ClasSteering.suppress_only(inputs.neurons, cell.lang, gamma=cell.param("gamma"), layers=_layers(cell),
                                       alpha=cell.param("alpha"), **_clas_options(grid))]


#: The built-in method names (the registry itself is :data:`SWEEP_METHODS`).
METHODS: tuple[str, ...] = method_names()


def build_interventions(cell, grid, inputs: SweepInputs) -> list:
    """The interventions of one cell (none for the unsteered cell).

    >>> from clas_lens.sweep.grid import SweepCell, SweepGrid
    >>> build_interventions(SweepCell("nli", "de", "unsteered"), SweepGrid(langs=["de"]), SweepInputs(None))
    []
    """
    if is_unsteered(cell.method):
        return []
    return sweep_method(cell.method).build(cell, grid, inputs)


def cell_interventions(
    cell,
    grid,
    neurons: Any,
    stats: Any = None,
    *,
    quantiles: Any = None,
    quantile_levels: Sequence[Any] | None = None,
    residual_means: Any = None,
) -> list:
    """The interventions of one cell (empty for the unsteered cell).

    >>> import torch
    >>> from clas_lens.steering import MaskSet
    >>> from clas_lens.sweep.grid import SweepGrid
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.zeros(2, 64, dtype=torch.bool) for l in ["en", "de"]})
    >>> grid = SweepGrid(langs=["de"], methods=["deactivate"])
    >>> [type(iv).__name__ for c in grid.cells()[:2] for iv in cell_interventions(c, grid, ns)]
    ['Deactivate']
    """
    inputs = SweepInputs(neurons, stats, quantiles, quantile_levels, residual_means)
    return build_interventions(cell, grid, inputs)
