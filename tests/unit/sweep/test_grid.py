"""clas_lens.sweep.grid: cells, keys, round trips, and the one layer-spec / value-name parsers."""
from __future__ import annotations

import json

import pytest

from clas_lens.errors import DataValidationError
from clas_lens.specs import VALUE_NAMES
from clas_lens.sweep import SweepCell, SweepGrid
from clas_lens.vocab import UNSTEERED


def test_grid_cells_and_round_trip():
    g = SweepGrid(langs=["de", "ru"], tasks=["nli", "qa"], methods=["clas", "int_mu", "deactivate"],
                  alphas=[0.5, 1], layers=["last:2", [3, 4]], mu_values=["mean", 0])
    cells = g.cells()
    per_lang = 1 + 2 * 1 * 1 * 2 + 2 * 2 + 2
    assert len(cells) == 2 * 3 * per_lang
    keys = [c.key for c in cells]
    assert len(set(keys)) == len(keys)
    assert "task=nli|lang=en|method=clas|alpha=0.5|beta=0.2|gamma=0.2|layers=3,4" in keys
    assert "task=qa|lang=ru|method=int_mu|value=0.0|layers=last:2" in keys
    assert SweepGrid.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert [c.key for c in SweepGrid.from_dict(g.to_dict()).cells()] == keys  # stable
    shards = [g.cells(rank=r, world_size=3) for r in range(3)]
    assert sorted(c.key for s in shards for c in s) == sorted(keys)
    with pytest.raises(DataValidationError, match="method"):
        SweepGrid(langs=["de"], methods=["magic"])
    with pytest.raises(DataValidationError, match="language"):
        SweepGrid(langs=[])
    with pytest.raises(DataValidationError, match="Unknown SweepGrid field"):
        SweepGrid.from_dict({"langs": ["de"], "betaz": [1]})


def test_unsteered_cell_first_per_task_and_language():
    g = SweepGrid(langs=["de"], tasks=["cloze"], methods=["deactivate", "diffmean"], strengths=[1, 4])
    cells = g.cells()
    assert [c.method for c in cells[:4]] == [UNSTEERED, "deactivate", "diffmean", "diffmean"]
    assert cells[0].key == "task=cloze|lang=en|method=unsteered" and cells[0].condition == UNSTEERED
    assert cells[2].key == "task=cloze|lang=en|method=diffmean|strength=1.0|layers=last:4"
    assert g.settings("lape_deactivate") == [(("layers", "last:4"),)]


def test_cell_keys_are_stable_strings():
    c = SweepCell("nli", "de", "clas", (("alpha", 1), ("beta", 0.25), ("gamma", 0.2), ("layers", (10, 11))))
    assert c.key == "task=nli|lang=de|method=clas|alpha=1.0|beta=0.25|gamma=0.2|layers=10,11"
    assert c.condition == "clas|alpha=1.0|beta=0.25|gamma=0.2|layers=10,11"
    assert c.param("beta") == 0.25 and c.param("value", "none") == "none"


def test_layer_options_use_the_one_layer_spec():
    g = SweepGrid(langs=["de"], layers=["last:4", "first:2", "ALL", "0,3", "2-4", 5, [1, -1]])
    assert g.layers == ("last:4", "first:2", "all", (0, 3), (2, 3, 4), (5,), (1, -1))
    for bad in ("last:0", "middle", [], "3-1"):
        with pytest.raises(DataValidationError, match="layers"):
            SweepGrid(langs=["de"], layers=[bad])


def test_mu_values_use_the_one_value_name_parser():
    g = SweepGrid(langs=["de"], methods=["int_mu"], mu_values=list(VALUE_NAMES) + ["P90", "p33", 0, 1.5])
    assert g.mu_values == tuple(VALUE_NAMES) + ("p90", "p33", 0.0, 1.5)
    for bad in ("average", "p", True):
        with pytest.raises(DataValidationError, match="value"):
            SweepGrid(langs=["de"], mu_values=[bad])


def test_options_are_checked_against_their_owners():
    for field, bad in (("shared", "most"), ("suppress", "none"), ("positions", "first"), ("site", "mlp")):
        with pytest.raises(DataValidationError, match=field):
            SweepGrid(langs=["de"], **{field: bad})
    with pytest.raises(DataValidationError, match="strengths"):
        SweepGrid(langs=["de"], strengths=[])
    with pytest.raises(DataValidationError, match="confidence"):
        SweepGrid(langs=["de"], confidence=95)


def test_suppress_replaces_specific():
    with pytest.warns(DeprecationWarning, match="suppress"):
        g = SweepGrid(langs=["de"], specific="all")
    assert g.suppress == "all" and "specific" not in g.to_dict()
    old = {**SweepGrid(langs=["de"], suppress="all").to_dict()}
    old["specific"] = old.pop("suppress")  # a grid.json of an older release
    assert SweepGrid.from_dict(old) == g


def test_confidence_replaces_bootstrap_alpha():
    with pytest.warns(DeprecationWarning, match="confidence"):
        g = SweepGrid(langs=["de"], alpha=0.1)
    assert g.confidence == pytest.approx(0.9) and "alpha" not in g.to_dict()
    old = {**SweepGrid(langs=["de"]).to_dict(), "alpha": 0.05}  # a grid.json of an older release
    del old["confidence"], old["strengths"]
    assert SweepGrid.from_dict(old) == SweepGrid(langs=["de"])


def test_method_params_replace_the_grid_values_for_one_method():
    g = SweepGrid(langs=["de"], methods=["clas", "int_mu", "boost_only"], betas=[0.2, 0.5], layers=["last:4"],
                  method_params={"int_mu": {"layers": ["last:2", [1, 2]], "value": ["zero"]}, "boost_only": {"beta": [1]}})
    assert g.settings("int_mu") == [(("value", "zero"), ("layers", "last:2")), (("value", "zero"), ("layers", (1, 2)))]
    assert g.settings("boost_only") == [(("alpha", 1.0), ("beta", 1.0), ("layers", "last:4"))]
    assert len(g.settings("clas")) == 2  # the grid fields, as before
    assert SweepGrid.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    for bad, match in (({"deactivate": {"layers": ["all"]}}, "not in methods"), ({"int_mu": {"beta": [1]}}, "parameter"),
                       ({"int_mu": {"layers": []}}, "non-empty"), ({"int_mu": {"layers": ["middle"]}}, "layers")):
        with pytest.raises(DataValidationError, match=match):
            SweepGrid(langs=["de"], methods=["clas", "int_mu"], method_params=bad)


def test_neuron_seeds_are_cell_parameters_of_the_random_control():
    g = SweepGrid(langs=["de"], methods=["clas_random"], neuron_seeds=[0, 2.0])
    assert g.neuron_seeds == (0, 2)
    assert [c.key for c in g.cells() if c.lang == "de"][1:] == [
        f"task=nli|lang=de|method=clas_random|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4|neuron_seed={s}" for s in ("0.0", "2.0")
    ]
    with pytest.raises(DataValidationError, match="seed"):
        SweepGrid(langs=["de"], neuron_seeds=[-1])
    old = SweepGrid(langs=["de"]).to_dict()
    del old["neuron_seeds"], old["method_params"]  # a grid.json written before these fields
    assert SweepGrid.from_dict(old) == SweepGrid(langs=["de"])
