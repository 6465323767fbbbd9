"""random_like (clas_lens/neurons/random_like.py): counts per (category, language, layer) kept,
relations between masks kept, seeded, eligible neurons respected, a NeuronSet that saves and
loads. Steering a random set against the hook reference is in tests/unit/steering/test_clas.py."""
from __future__ import annotations

import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.neurons import NeuronSet
from clas_lens.neurons.random_like import RANDOM_METHOD, random_like

LANGS = ["en", "de", "ru", "tr"]


def clas_like(shape=(3, 200), seed=0, unmeasured=(2,), p=0.4):
    """A NeuronSet built the way the "clas" method defines its categories (python, by hand)."""
    g = torch.Generator().manual_seed(seed)
    active = {l: torch.rand(shape, generator=g) < p for l in LANGS}
    for l in LANGS:
        for layer in unmeasured:
            active[l][layer] = False
    n = sum(a.long() for a in active.values())
    measured = torch.ones(shape, dtype=torch.bool)
    for layer in unmeasured:
        measured[layer] = False
    masks = {
        "all_shared": {None: n == len(LANGS)},
        "partial_shared": {None: (n >= 2) & (n < len(LANGS))},
        "specific": {l: active[l] & (n == 1) for l in LANGS},
        "non_activated": {None: (n == 0) & measured},
        "active": active,
    }
    layers = [l for l in range(shape[0]) if l not in unmeasured]
    scores = {"prob": {l: torch.rand(shape, generator=g) for l in LANGS}}
    return NeuronSet(masks=masks, langs=LANGS, site="act", model_info={"model_id": "m", "weights_sha256": "a" * 64},
                     method="clas", params={"criterion": "prob"}, stats_ref={"sha": "x"}, layers=layers,
                     shape=shape, scores=scores)


def per_layer_counts(ns, cat, lang):
    return ns.mask(cat, lang).sum(1).tolist()


def test_counts_identical_per_category_language_layer():
    ns = clas_like()
    r = random_like(ns, seed=3)
    assert r.counts().equals(ns.counts())  # every (layer, category, lang) row, same order
    for cat, lang in [("all_shared", None), ("partial_shared", None), ("non_activated", None)] + [
        (c, l) for c in ("specific", "active") for l in LANGS
    ]:
        assert per_layer_counts(r, cat, lang) == per_layer_counts(ns, cat, lang), (cat, lang)
    # the metadata that steering and the identity checks read
    assert (r.langs, r.site, r.model_info, r.stats_ref, r.layers, r.shape) == (
        ns.langs, ns.site, ns.model_info, ns.stats_ref, ns.layers, ns.shape)
    assert r.method == RANDOM_METHOD and r.params["of"] == {"method": "clas", "params": {"criterion": "prob"}}
    assert r.params["seed"] == 3 and r.params["eligible"] is None and r.scores == {}


def test_relations_between_masks_are_kept():
    ns = clas_like()
    r = random_like(ns, seed=1)
    cats = [r.mask("all_shared"), r.mask("partial_shared"), r.mask("non_activated")] + [r.mask("specific", l) for l in LANGS]
    total = sum(c.long() for c in cats)
    measured = torch.zeros(ns.shape, dtype=torch.bool)
    measured[ns.layers] = True
    assert torch.equal(total, measured.long())  # a partition of the measured layers, as the original
    for l in LANGS:
        assert not (r.mask("specific", l) & ~r.mask("active", l)).any()
        # partial-shared neurons active in a language: same number per layer
        assert (r.mask("partial_shared", l)).sum(1).tolist() == ns.mask("partial_shared", l).sum(1).tolist()
    assert not r.mask("active").any(dim=1)[2]  # the unmeasured layer stays empty


def test_seeded_and_different_seeds_differ():
    ns = clas_like()
    a, b, c = random_like(ns, seed=0), random_like(ns, seed=0), random_like(ns, seed=1)
    for cat, lang in [("partial_shared", None), ("specific", "de"), ("active", "ru")]:
        assert torch.equal(a.mask(cat, lang), b.mask(cat, lang))
        assert not torch.equal(a.mask(cat, lang), c.mask(cat, lang))
        assert not torch.equal(a.mask(cat, lang), ns.mask(cat, lang))


def test_round_trip_through_a_file(tmp_path):
    ns = clas_like()
    r = random_like(ns, seed=5)
    back = NeuronSet.load(r.save(tmp_path / "random.safetensors"))
    assert back.method == RANDOM_METHOD and back.params == r.params and back.categories == r.categories
    for cat, lang in [("partial_shared", None), ("non_activated", None)] + [("specific", l) for l in LANGS]:
        assert torch.equal(back.mask(cat, lang), r.mask(cat, lang))
    assert back.counts().equals(ns.counts())


def test_eligible_neurons_only():
    ns = clas_like(p=0.2)  # about 60 % of a layer in the masks, 80 % eligible
    g = torch.Generator().manual_seed(9)
    elig = torch.rand(ns.shape, generator=g) < 0.8
    r = random_like(ns, seed=2, eligible=elig)
    for cat, lang in [("all_shared", None), ("partial_shared", None)] + [("specific", l) for l in LANGS]:
        assert not (r.mask(cat, lang) & ~elig).any(), (cat, lang)
    assert r.counts().equals(ns.counts()) and r.params["eligible"] == elig.sum(1).tolist()
    # the rest of the layer (non_activated) takes the neurons left over, ineligible ones included
    assert (r.mask("non_activated") & ~elig).any()
    with pytest.raises(DataValidationError, match="layer 0 has .* only"):
        random_like(ns, eligible=torch.zeros(ns.shape, dtype=torch.bool))
    with pytest.raises(DataValidationError, match="Bool\\[layer, neuron\\]"):
        random_like(ns, eligible=torch.ones(2, 5, dtype=torch.bool))


def test_excluding_a_small_set():
    """A set of language neurons only (as lape/mean give): exclude the originals entirely."""
    shape = (2, 300)
    g = torch.Generator().manual_seed(4)
    spec = {l: torch.zeros(shape, dtype=torch.bool) for l in LANGS}
    perm = torch.randperm(300, generator=g)
    for i, l in enumerate(LANGS):
        spec[l][:, perm[i * 10 : i * 10 + 5 + i]] = True
    ns = NeuronSet(masks={"specific": spec}, langs=LANGS, site="post", model_info={}, method="lape", params={},
                   stats_ref=None, layers=[0, 1], shape=shape)
    r = random_like(ns, seed=0, eligible=~ns.mask("specific"))
    for l in LANGS:
        assert per_layer_counts(r, "specific", l) == per_layer_counts(ns, "specific", l)
        assert not (r.mask("specific", l) & ns.mask("specific")).any()


def test_draw_is_uniform_over_eligible_neurons():
    """Each eligible neuron is drawn with probability count / n_eligible (loose check)."""
    shape = (1, 40)
    spec = torch.zeros(shape, dtype=torch.bool)
    spec[0, :10] = True
    ns = NeuronSet(masks={"specific": {"en": spec}}, langs=["en"], site="post", model_info={}, method="mean",
                   params={}, stats_ref=None, layers=[0], shape=shape)
    elig = torch.ones(shape, dtype=torch.bool)
    elig[0, 30:] = False
    hits = torch.zeros(40)
    n = 600
    for seed in range(n):
        hits += random_like(ns, seed=seed, eligible=elig).mask("specific", "en")[0].float()
    freq = hits / n
    assert freq[30:].eq(0).all()
    assert (freq[:30] - 10 / 30).abs().max() < 0.085  # binomial sd ~0.019
