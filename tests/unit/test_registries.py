"""One source of truth: every value the run config allows is read from the module that consumes
it, and is accepted there (and the other way round); constants that several modules expose are
the same; the CLI offers what the config allows. Fails when any two places disagree."""
from __future__ import annotations

import pytest
import torch

import clas_lens
from clas_lens import clusters, neurons, plotting, specs, steering, sweep, vocab
from clas_lens.cli import build_parser
from clas_lens.config import RunConfig, allowed_values
from clas_lens.data.tasks import task_names
from clas_lens.errors import DataValidationError

TEXTS = {
    "en": ["the cat sat on the mat", "one two three", "Monday Tuesday", "the dog sleeps"],
    "de": ["die Katze sass", "eins zwei drei", "Montag Dienstag", "der Hund schläft"],
    "ru": ["кошка сидела", "один два три", "понедельник", "собака спит"],
}


def test_allowed_values_are_the_owners_registries():
    allowed = allowed_values()
    assert allowed["stats.site"] == vocab.SITES
    assert allowed["neurons.method"] == neurons.METHODS == neurons.registry.method_names()
    assert allowed["steering.methods"] == sweep.METHODS == sweep.method_names() == tuple(sweep.SWEEP_METHODS)
    assert allowed["steering.positions"] == vocab.POSITIONS
    assert allowed["steering.shared"] == steering.SHARED_OPTIONS
    assert allowed["steering.suppress"] == steering.SUPPRESS_OPTIONS
    assert "corpus.langs" not in allowed  # any code languages.check_lang_code knows (tests/unit/test_config_gpu.py)
    assert allowed["eval.tasks"] == task_names()
    assert allowed["clusters.pooling"] == clusters.POOLINGS
    assert allowed["clusters.projection"] == clusters.PROJECTIONS
    assert allowed["clusters.divergence_metric"] == clusters.PER_LANGUAGE_METRICS
    assert allowed["figures.formats"] == ("html",) + plotting.STATIC_FORMATS


def test_every_allowed_single_value_passes_the_config_and_others_do_not():
    for dotted, values in allowed_values().items():
        section, key = dotted.split(".")
        if dotted in ("corpus.langs", "eval.tasks", "steering.methods", "figures.formats"):
            for v in values:
                data = {section: {key: [v]}}
                if dotted == "corpus.langs":
                    data[section]["anchor"] = v
                if dotted == "eval.tasks":
                    data[section]["gain_task"] = v
                RunConfig.from_dict(data)
            with pytest.raises(DataValidationError, match=dotted):
                RunConfig.from_dict({section: {key: ["not-a-value"]}})
        else:
            for v in values:
                RunConfig.from_dict({section: {key: v}})
            with pytest.raises(DataValidationError, match=dotted):
                RunConfig.from_dict({section: {key: "not-a-value"}})


def test_sites_positions_and_options_are_accepted_by_their_consumers(tiny_llama):
    mask = torch.zeros(2, 64, dtype=torch.bool)
    for site in allowed_values()["stats.site"]:
        s = clas_lens.collect_stats(tiny_llama, {"en": TEXTS["en"][:2]}, site=site)
        assert s.site == site
        steering.Deactivate(mask, site=site)
    ns = steering.MaskSet(langs=["en", "de"], specific={l: mask for l in ["en", "de"]},
                          categories={c: mask for c in vocab.CATEGORIES if c not in vocab.PER_LANGUAGE_CATEGORIES},
                          active={l: mask for l in ["en", "de"]})
    for positions in allowed_values()["steering.positions"]:
        steering.ClasSteering(ns, "de", positions=positions).hooks(tiny_llama)
        sweep.SweepGrid(langs=["de"], positions=positions)
    for shared in allowed_values()["steering.shared"]:
        steering.ClasSteering(ns, "de", shared=shared).hooks(tiny_llama)
        sweep.SweepGrid(langs=["de"], shared=shared)
    for suppress in allowed_values()["steering.suppress"]:
        steering.ClasSteering(ns, "de", suppress=suppress).hooks(tiny_llama)
        sweep.SweepGrid(langs=["de"], suppress=suppress)


def test_neuron_methods_are_accepted_by_identify_neurons(tiny_llama):
    stats = clas_lens.collect_stats(tiny_llama, TEXTS, site="act", per_sentence=True)
    small = {"ap": {"top_k": 5, "bottom_k": 5}}  # the defaults ask for more neurons than a tiny model has
    for method in allowed_values()["neurons.method"]:
        found = clas_lens.identify_neurons(stats, method, **small.get(method, {}))
        assert found.method == method
    with pytest.raises(ValueError, match="Unknown method"):
        clas_lens.identify_neurons(stats, "not-a-method")


def test_sweep_methods_are_accepted_by_grid_and_builders(tiny_llama):
    from _steering_toys import FakeNeurons

    stats = clas_lens.collect_stats(tiny_llama, TEXTS, site="act")
    rm = clas_lens.steering.residual_means(tiny_llama, TEXTS, layers="last:1")
    inputs = dict(neurons=FakeNeurons((2, 64)), stats=stats, residual_means=rm)
    for method in allowed_values()["steering.methods"]:
        grid = sweep.SweepGrid(langs=["de"], methods=[method], layers=["last:1"])
        cell = next(c for c in grid.cells() if c.method == method and c.lang == "de")
        for iv in sweep.cell_interventions(cell, grid, **inputs):
            iv.hooks(tiny_llama)
    with pytest.raises(DataValidationError):
        sweep.SweepGrid(langs=["de"], methods=["not-a-method"])


def test_value_names_and_layer_specs_agree_everywhere(tiny_llama):
    from _steering_toys import FakeNeurons, FakeStats

    parser = build_parser()
    names = list(specs.VALUE_NAMES)
    assert tuple(steering.VALUE_NAMES) == specs.VALUE_NAMES
    RunConfig.from_dict({"steering": {"mu_values": names}})
    grid = sweep.SweepGrid(langs=["de"], methods=["int_mu"], mu_values=names, layers=[[1]])
    levels = [v for v in names if specs.quantile_level(v) is not None]
    q = {l: torch.rand(len(levels), 2, 64) for l in ("en", "de")}
    for cell in grid.cells():
        if cell.method == "int_mu" and cell.lang == "de":
            for iv in sweep.cell_interventions(cell, grid, FakeNeurons((2, 64)), FakeStats((2, 64)), quantiles=q,
                                               quantile_levels=levels):
                iv.hooks(tiny_llama)
    for spec in ("all", "last:1", "last:9", "first:1", "0,1", "1-1", "-1"):
        RunConfig.from_dict({"steering": {"layers": spec}, "clusters": {"layers": spec}})
        grid = sweep.SweepGrid(langs=["de"], layers=[spec])
        parsed = parser.parse_args(["eval", "--layers", spec]).layers
        assert parsed == specs.LayerSpec.parse(spec).to_json() == specs.LayerSpec.parse(grid.layers[0]).to_json()
        layers = specs.resolve_layers(spec, 2)
        mask = torch.ones(2, 64, dtype=torch.bool)
        steering.Deactivate(mask, layers=parsed).hooks(tiny_llama)
        assert clas_lens.steering.residual_means(tiny_llama, {"en": ["a cat"]}, layers=parsed).layers == layers


def test_neuron_site_readers_take_every_layer_spec(tiny_llama):
    for spec in ("last:9", "first:1", "1-1"):
        assert clas_lens.collect_stats(tiny_llama, {"en": ["a cat"]}, layers=spec).layers == specs.resolve_layers(spec, 2)


def test_cluster_choices_are_accepted_by_clusters(tiny_llama):
    reps = {}
    for pooling in allowed_values()["clusters.pooling"]:
        reps[pooling] = clusters.residual_reps(tiny_llama, TEXTS, pooling=pooling)
    r = reps["mean"]
    deltas = clusters.compare_reps(r, r.with_condition("clas"), anchor="en")
    for metric in allowed_values()["clusters.divergence_metric"]:
        assert set(deltas[deltas.metric == metric].lang) >= {"de", "ru"}, metric
    for kind in allowed_values()["clusters.projection"]:
        if kind != "umap":  # umap-learn compiles with numba on first use (slow); its name is checked below
            clusters.project([r], method=kind, layer=r.layers[-1])
    assert "umap" in allowed_values()["clusters.projection"]
    with pytest.raises((DataValidationError, ValueError)):
        clusters.residual_reps(tiny_llama, TEXTS, pooling="not-a-pooling")


def test_shared_constants_agree():
    assert steering.CATEGORIES == neurons.CATEGORIES == plotting.CATEGORIES == vocab.CATEGORIES
    assert steering.POSITIONS == vocab.POSITIONS
    assert steering.DEFAULT_CLAS_LAYERS == vocab.DEFAULT_STEER_LAYERS == sweep.SweepGrid(langs=["de"]).layers[0]
    assert plotting.UNSTEERED == vocab.UNSTEERED == sweep.BASELINE
    from clas_lens import languages
    from clas_lens.data import tasks

    assert tasks.XNLI_LANGS == languages.XNLI_LANGS and tasks.XQUAD_LANGS == languages.XQUAD_LANGS
    assert set(tasks.NO_SPACE_LANGS) == set(languages.NO_SPACE_LANGS)
    assert sweep.SweepGrid(langs=["de"]).site == RunConfig().stats.site == vocab.DEFAULT_SITE
    assert sweep.SweepGrid(langs=["de"]).confidence == RunConfig().eval.confidence == vocab.DEFAULT_CONFIDENCE


def test_cli_offers_what_the_config_allows():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    choices = {
        ("neurons", "method"): "neurons.method",
        ("eval", "task"): "eval.tasks",
        ("clusters", "pooling"): "clusters.pooling",
        ("stats", "site"): "stats.site",
    }
    for (cmd, dest), key in choices.items():
        action = next(a for a in sub[cmd]._actions if a.dest == dest)
        assert tuple(action.choices) == allowed_values()[key], (cmd, dest)
