"""clas_lens.sweep.methods: the one registry of sweep methods and what each builds."""
from __future__ import annotations

import pytest
import torch

from _steering_toys import FakeNeurons, FakeStats
from clas_lens.errors import DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.stats import residual_means
from clas_lens.steering import ClasSteering, Deactivate, DiffMeanSteering, SetNeurons, UniformGain, steer
from clas_lens.sweep import METHODS, SweepGrid, cell_interventions, method_names, register_sweep_method, sweep_method
from clas_lens.sweep.methods import SWEEP_METHODS, SweepInputs, as_neuron_set, build_interventions, control_methods


def _cell(grid, method, lang="de", **params):
    for c in grid.cells():
        if c.method == method and c.lang == lang and all(c.param(k) == v for k, v in params.items()):
            return c
    raise AssertionError(f"no {method} cell {params}")


def test_registry_names_and_duplicates():
    assert METHODS == method_names() == ("clas", "int_mu", "deactivate", "lape_deactivate", "diffmean",
                                         "clas_random", "uniform_gain", "boost_only", "suppress_only")
    assert control_methods() == ("clas_random", "uniform_gain", "boost_only", "suppress_only")
    assert control_methods("int_mu") == () and sweep_method("clas").control_of is None
    assert sweep_method("clas").params == ("alpha", "beta", "gamma", "layers")
    assert sweep_method("clas_random").params == ("alpha", "beta", "gamma", "layers", "neuron_seed")
    with pytest.raises(DataValidationError, match="already registered"):
        register_sweep_method("int_mu", ("layers",))(lambda cell, grid, inputs: [])
    with pytest.raises(DataValidationError, match="unsteered"):
        register_sweep_method("baseline", ("layers",))(lambda cell, grid, inputs: [])
    with pytest.raises(DataValidationError, match="Unknown sweep method"):
        sweep_method("magic")


def test_a_registered_method_is_swept(tiny_llama):
    name = "test_zero_all"
    try:
        register_sweep_method(name, ("layers",))(
            lambda cell, grid, inputs: [Deactivate(torch.ones(2, 64, dtype=torch.bool), layers=cell.param("layers"))]
        )
        grid = SweepGrid(langs=["de"], methods=[name], layers=["last:1"])
        ivs = cell_interventions(_cell(grid, name), grid, neurons=None)
        assert isinstance(ivs[0], Deactivate) and ivs[0].layers == "last:1"
    finally:
        SWEEP_METHODS.pop(name, None)


def test_builders(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns, stats = FakeNeurons(shape), FakeStats(shape)
    grid = SweepGrid(langs=["de"], methods=list(METHODS), betas=[0.5], layers=[[1]], mu_values=["mean", "zero", 2])
    assert build_interventions(grid.cells()[0], grid, SweepInputs(ns)) == []  # the unsteered cell
    (clas,) = cell_interventions(_cell(grid, "clas"), grid, ns)
    assert isinstance(clas, ClasSteering) and (clas.beta, clas.target_lang, clas.layers) == (0.5, "de", [1])
    (mean,) = cell_interventions(_cell(grid, "int_mu", value="mean"), grid, ns, stats)
    assert isinstance(mean, SetNeurons) and mean.value == "mean"
    (zero,) = cell_interventions(_cell(grid, "int_mu", value="zero"), grid, ns, stats)
    (two,) = cell_interventions(_cell(grid, "int_mu", value=2.0), grid, ns)
    assert zero.value == "zero" and two.value == 2.0
    (off,) = cell_interventions(_cell(grid, "deactivate"), grid, ns)
    assert isinstance(off, Deactivate) and off.target_lang == "de"
    with pytest.raises(DataValidationError, match="stats"):
        cell_interventions(_cell(grid, "int_mu", value="mean"), grid, ns)
    with pytest.raises(DataValidationError, match="stats"):
        cell_interventions(_cell(grid, "lape_deactivate"), grid, ns)
    with pytest.raises(DataValidationError, match="residual_means"):
        cell_interventions(_cell(grid, "diffmean"), grid, ns)


def test_int_mu_accepts_every_value_name_the_grid_accepts(tiny_llama):
    from clas_lens.specs import VALUE_NAMES

    shape = neuron_sites(tiny_llama).shape
    ns, stats = FakeNeurons(shape), FakeStats(shape)
    grid = SweepGrid(langs=["de"], methods=["int_mu"], layers=[[1]], mu_values=list(VALUE_NAMES))
    levels = ["median", "p75", "p90", "p95"]
    q = {l: torch.rand(len(levels), *shape, generator=torch.Generator().manual_seed(1)) for l in ("en", "de")}
    for v in VALUE_NAMES:
        (iv,) = cell_interventions(_cell(grid, "int_mu", value=v), grid, ns, stats, quantiles=q, quantile_levels=levels)
        assert isinstance(iv, SetNeurons) and iv.value == v
        iv.hooks(tiny_llama)
    with pytest.raises(DataValidationError, match="quantiles"):
        cell_interventions(_cell(grid, "int_mu", value="p75"), grid, ns, stats)


def test_lape_deactivate_zeroes_the_lape_neurons(tiny_llama):
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats

    texts = {"en": ["the cat sat on the mat", "one two three"], "de": ["der Hund schläft", "eins zwei drei"],
             "ru": ["Привет, как дела", "один два"]}
    stats = collect_stats(tiny_llama, texts, site="act")
    grid = SweepGrid(langs=["de"], methods=["lape_deactivate"], layers=["all"])
    (iv,) = cell_interventions(_cell(grid, "lape_deactivate"), grid, neurons=None, stats=stats)
    lape = identify_neurons(stats, "lape")
    assert isinstance(iv, Deactivate) and iv.target_lang == "de"
    assert torch.equal(iv.mask.mask("specific", "de"), lape.mask("specific", "de"))


def test_diffmean_steers_towards_the_anchor(tiny_llama):
    rm = residual_means(tiny_llama, {"en": ["the cat sat"], "de": ["der Hund schläft"]}, layers=[1])
    grid = SweepGrid(langs=["de"], methods=["diffmean"], strengths=[3.0], layers=[[1]])
    (iv,) = cell_interventions(_cell(grid, "diffmean"), grid, None, residual_means=rm)
    assert isinstance(iv, DiffMeanSteering) and (iv.source_lang, iv.target_lang) == ("de", "en")
    tokens = tiny_llama.to_tokens("der Hund")
    with steer(tiny_llama, iv):
        steered = tiny_llama(tokens)
    assert not torch.equal(steered, tiny_llama(tokens))
    (anchor,) = cell_interventions(_cell(grid, "diffmean", lang="en"), grid, None, residual_means=rm)
    assert anchor.is_noop  # the anchor steered towards itself
    with pytest.raises(DataValidationError, match="anchor"):
        g = SweepGrid(langs=["de"], methods=["diffmean"], anchor=None)
        cell_interventions(g.cells()[1], g, None, residual_means=rm)


def test_controls_of_clas_follow_the_clas_setting(tiny_llama):
    """Each control reads CLAS's grid values and options; random neurons keep every count."""
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    grid = SweepGrid(langs=["de"], methods=["clas", *control_methods()], betas=[0.5], gammas=[0.3], layers=["last:1"],
                     neuron_seeds=[0, 1], shared="both", suppress="others")
    (clas,) = cell_interventions(_cell(grid, "clas"), grid, ns)
    (boost,) = cell_interventions(_cell(grid, "boost_only"), grid, ns)
    (supp,) = cell_interventions(_cell(grid, "suppress_only"), grid, ns)
    assert (boost.beta, boost.gamma, supp.beta, supp.gamma) == (0.5, 0.0, 0.0, 0.3)
    assert {boost.shared, supp.suppress, boost.layers} == {"both", "others", "last:1"}
    (ug,) = cell_interventions(_cell(grid, "uniform_gain"), grid, ns)
    assert isinstance(ug, UniformGain) and ug.gain == pytest.approx(UniformGain.matching(clas).gain)
    (r0,) = cell_interventions(_cell(grid, "clas_random", neuron_seed=0), grid, ns)
    (r1,) = cell_interventions(_cell(grid, "clas_random", neuron_seed=1), grid, ns)
    assert r0.neurons.method == "random_like" and not torch.equal(r0.neurons.mask("specific", "de"),
                                                                  r1.neurons.mask("specific", "de"))
    for cat, lang in (("partial_shared", None), ("all_shared", None), ("specific", "de")):
        assert torch.equal(r0.neurons.mask(cat, lang).sum(1), ns.mask(cat, lang).sum(1))  # same counts per layer
    tokens = tiny_llama.to_tokens("der Hund")
    with steer(tiny_llama, r0):
        steered = tiny_llama(tokens)
    assert not torch.equal(steered, tiny_llama(tokens))
    assert [c.param("neuron_seed") for c in grid.cells() if c.method == "clas_random" and c.lang == "de"] == [0, 1]


def test_as_neuron_set_keeps_a_neuron_set_and_wraps_a_duck_typed_one(tiny_llama):
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    grid = SweepGrid(langs=["de"])
    wrapped = as_neuron_set(ns, grid)
    assert wrapped.categories == ["partial_shared", "specific"] and as_neuron_set(wrapped, grid) is wrapped
    with pytest.raises(DataValidationError, match="neurons"):
        as_neuron_set(None, grid)
