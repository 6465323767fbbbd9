"""Steering the embedded Gemma-3-270M: zero strength is bit-identical, CLAS changes logits,
steered generation is the same with and without the KV cache, padding is left alone."""
from __future__ import annotations

import warnings

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.generation import generate_tokens
from clas_lens.steering import ClasSteering, DiffMeanSteering, SetNeurons, residual_means, steer

pytestmark = pytest.mark.integration

LANGS = ["en", "de", "sw"]
PROMPTS = ["Die Hauptstadt von Frankreich ist", "Jumatatu, Jumanne,", "The capital of France is"]


@pytest.fixture(scope="module")
def corpus():
    from clas_lens.data.corpus import load_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = load_corpus("default", langs=LANGS)
    return c.subset(ids=c.ids[:6])


@pytest.fixture(scope="module")
def stats_and_neurons(gemma, corpus):
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats

    stats = collect_stats(gemma, corpus, site="act", layers="last:4", progress=False)
    return stats, identify_neurons(stats, "clas")


def test_noop_bit_identical_and_clas_changes_logits(gemma, stats_and_neurons):
    stats, ns = stats_and_neurons
    assert ns.mask("specific", "sw")[-4:].any() and ns.mask("partial_shared")[-4:].any()
    enc = encode(gemma, PROMPTS, padding_side="left")
    real = enc.attention_mask.bool()
    with torch.no_grad():
        base = gemma(enc.input_ids, attention_mask=enc.attention_mask)
        for zero in (ClasSteering(ns, "sw", beta=0.0, gamma=0.0), ClasSteering(ns, "sw", alpha=0.0),
                     SetNeurons.int_mu(ns, stats, "sw", alpha=0.0)):
            with steer(gemma, zero):
                assert torch.equal(gemma(enc.input_ids, attention_mask=enc.attention_mask), base)
        with steer(gemma, ClasSteering(ns, "sw")):  # defaults: last 4 layers, beta = gamma = 0.2
            steered = gemma(enc.input_ids, attention_mask=enc.attention_mask)
    d = (steered - base)[real].abs()
    assert d.max() > 1e-2
    # the hook leaves the model as it was
    with torch.no_grad():
        assert torch.equal(gemma(enc.input_ids, attention_mask=enc.attention_mask), base)


def test_steered_generation_cached_equals_uncached(gemma, stats_and_neurons, corpus):
    _, ns = stats_and_neurons
    means = residual_means(gemma, corpus, layers=[8], langs=["en", "sw"], batch_size=8)
    ivs = [ClasSteering(ns, "sw", beta=0.5, gamma=0.5), DiffMeanSteering("sw", "en", layers=[8], scale=20.0, means=means)]
    with steer(gemma, *ivs):
        cached = generate_tokens(gemma, PROMPTS[:2], 5, use_cache=True)
        uncached = generate_tokens(gemma, PROMPTS[:2], 5, use_cache=False)
    assert cached == uncached
    assert cached != generate_tokens(gemma, PROMPTS[:2], 5, use_cache=True)
