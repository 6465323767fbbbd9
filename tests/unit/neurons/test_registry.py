"""clas_lens.neurons.registry: registration (duplicates refused), METHODS, parameter validation."""
from __future__ import annotations

import pytest

import clas_lens.neurons as neurons
from clas_lens.neurons.registry import check_params, get_method, method_names, register_method, unregister_method
from clas_lens.vocab import CATEGORIES

from ._neuron_toys import CLAS_P, make_stats


def test_builtin_methods_and_categories():
    assert neurons.METHODS == ("clas", "lape", "ap", "mean")
    assert method_names()[:4] == neurons.METHODS
    assert neurons.CATEGORIES is CATEGORIES
    assert get_method("lape").params == ("top_rate", "filter_rate", "langs")


def test_register_refuses_duplicates_and_plugs_in():
    with pytest.raises(ValueError, match="already registered"):
        register_method("clas", ("langs",))(lambda stats, langs=None: None)

    @register_method("first_lang", ("langs",))
    def first_lang(stats, langs=None):
        langs = list(langs or stats.langs)
        full = stats.active_prob(langs[0]) > 0.5
        return {"specific": {langs[0]: full}}, {}, {"langs": langs}, langs

    try:
        ns = neurons.identify_neurons(make_stats(CLAS_P), "first_lang")
        assert ns.method == "first_lang" and ns.mask("specific", "en").sum() == 4  # 0.9, 0.9, 0.9, 0.6
        with pytest.raises(TypeError, match="unknown parameter"):
            neurons.identify_neurons(make_stats(CLAS_P), "first_lang", top_k=1)
    finally:
        unregister_method("first_lang")
    assert "first_lang" not in method_names()


def test_check_params():
    assert check_params("mean", {"top_fraction": 0.1}).name == "mean"
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['x'\]"):
        check_params("ap", {"x": 1})
    with pytest.raises(ValueError, match="Unknown method 'magic'"):
        check_params("magic", {})
