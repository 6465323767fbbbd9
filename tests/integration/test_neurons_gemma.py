"""Statistics and neuron categories on the embedded Gemma-3-270M (16 sentences x 4 languages).

Findings this pins (site "act", threshold 0, CLAS prob_threshold 0.5): language-specific neurons concentrate in the last layers (and layer 0), the
middle layers are mostly shared or non-activated -- the shape LAPE and "Sharing Matters" report.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from clas_lens.neurons import identify_neurons
from clas_lens.stats import NeuronStats, collect_stats

pytestmark = pytest.mark.integration

LANGS = ["en", "de", "ru", "zh"]


@pytest.fixture(scope="module")
def corpus():
    from clas_lens.data.corpus import load_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # language-ID notes on single items
        c = load_corpus("default", langs=LANGS)
    return c.subset(ids=c.ids[:16])


@pytest.fixture(scope="module")
def stats(gemma, corpus):
    return collect_stats(gemma, corpus, site="act", per_sentence=True)


def test_stats_shape_and_parity_with_run_with_cache(gemma, corpus, stats):
    assert stats.shape == (18, 2048) and stats.langs == LANGS
    assert all(stats.n_tokens(l) > 100 for l in LANGS)
    assert stats.corpus_hash == corpus.hash()
    # one sentence against the bridge's own cache: act = act_fn(gate) at the last layer
    text = corpus.texts("ru")[0]
    one = collect_stats(gemma, {"ru": [text]}, site="act", layers=[17])
    _, cache = gemma.run_with_cache(text, names_filter=lambda n: n == "blocks.17.mlp.hook_pre")
    from clas_lens.sites import neuron_sites

    act = neuron_sites(gemma).act_fns[17](cache["blocks.17.mlp.hook_pre"][0, 1:]).double()  # drop BOS
    assert one.n_tokens("ru") == act.shape[0]
    torch.testing.assert_close(one.mean("ru")[17], act.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(one.active_prob("ru")[17], (act > 0).double().mean(0), rtol=0, atol=1.0 / act.shape[0])


def test_clas_categories_on_gemma(stats):
    ns = identify_neurons(stats, "clas")
    cats = [ns.mask(c) for c in ("all_shared", "partial_shared", "specific", "non_activated")]
    assert torch.equal(sum(c.int() for c in cats), torch.ones(18, 2048, dtype=torch.int32))
    assert int(cats[0].sum()) > 1000 and int(cats[1].sum()) > 1000
    for lang in LANGS:
        assert int(ns.mask("specific", lang).sum()) > 100
    per_layer = ns.mask("specific").sum(1)
    assert per_layer[14:].sum() > 2 * per_layer[5:9].sum()  # specific neurons sit near the output


def test_lape_and_ap_on_gemma(stats, gemma, tmp_path):
    lape = identify_neurons(stats, "lape")
    n = int(lape.mask("specific").sum())
    assert 100 < n <= round(0.01 * 18 * 2048)
    per_layer = lape.mask("specific").sum(1)
    assert per_layer[12:].sum() > per_layer[1:12].sum()
    ap = identify_neurons(stats, "ap", top_k=100, bottom_k=100)
    for lang in LANGS:
        assert float(ap.scores["ap"][lang].max()) > 0.9  # some neuron separates each language
    # persistence and model checks on the real model
    back = NeuronStats.load(stats.save(tmp_path / "stats.safetensors"))
    back.check_model(gemma, site="act")
    assert torch.equal(back.active_prob("zh"), stats.active_prob("zh"))
