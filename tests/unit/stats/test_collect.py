"""clas_lens.stats.collect: known answers against plain HF forward hooks, invariances, validation."""
from __future__ import annotations

import warnings

import pytest
import torch

from clas_lens.errors import ContextLengthError, DataValidationError
from clas_lens.stats import collect_stats

from _steering_toys import DuckCorpus
from ._stats_ref import TEXTS, reference_values


@pytest.mark.parametrize("site", ["post", "act"])
def test_matches_hf_reference(tiny, site):
    stats = collect_stats(tiny, TEXTS, site=site, threshold=0.05, batch_size=3, per_sentence=True)
    for lang in TEXTS:
        vals, sent = reference_values(tiny, TEXTS[lang], site)
        n = vals[0].shape[0]
        assert stats.n_tokens(lang) == n
        for l in range(2):
            v = vals[l]
            torch.testing.assert_close(stats.mean(lang)[l], v.mean(0), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(stats.std(lang)[l], v.std(0, unbiased=False), rtol=1e-4, atol=1e-5)
            ref_p = (v > 0.05).double().mean(0)
            # a value within float noise of the threshold may flip; allow one token of slack
            assert (stats.active_prob(lang)[l] - ref_p).abs().max() <= 1.0 / n + 1e-12
            torch.testing.assert_close(
                stats.sentence_means(lang)[:, l].double(), sent[l], rtol=2e-3, atol=2e-3
            )


def test_keep_bos_counts_one_more_token_per_sentence(tiny_llama):
    a = collect_stats(tiny_llama, TEXTS)
    b = collect_stats(tiny_llama, TEXTS, keep_bos=True)
    for lang in TEXTS:
        assert b.n_tokens(lang) == a.n_tokens(lang) + len(TEXTS[lang])
    vals, _ = reference_values(tiny_llama, TEXTS["en"], "post", keep_bos=True)
    torch.testing.assert_close(b.mean("en")[1], vals[1].mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "gemma3"])
def test_batching_and_padding_do_not_change_stats(arch):
    from clas_lens.testing import tiny_model

    model = tiny_model(arch)
    ref = collect_stats(model, TEXTS, batch_size=1, site="act")
    for bs, side in [(2, "right"), (3, "left"), (16, "left"), (16, "right")]:
        s = collect_stats(model, TEXTS, batch_size=bs, padding_side=side, site="act")
        for lang in TEXTS:
            assert s.n_tokens(lang) == ref.n_tokens(lang)
            torch.testing.assert_close(s.mean(lang), ref.mean(lang), rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(s.std(lang), ref.std(lang), rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(s.active_prob(lang), ref.active_prob(lang), rtol=0, atol=0)


def test_layers_subset_and_no_unembedding(tiny_llama):
    calls = []
    handle = tiny_llama.unembed.register_forward_hook(lambda *a: calls.append(1))
    try:
        full = collect_stats(tiny_llama, TEXTS)
        first = collect_stats(tiny_llama, TEXTS, layers=[0])
    finally:
        handle.remove()
    assert calls == [], "statistics must stop before the unembedding"
    assert first.layers == [0] and first.shape == (2, 64)
    torch.testing.assert_close(first.mean("en")[0], full.mean("en")[0], rtol=1e-6, atol=1e-7)
    assert first.mean("en")[1].isnan().all() and first.active_prob("de")[1].isnan().all()
    assert collect_stats(tiny_llama, TEXTS, layers="last:1").layers == [1]
    assert not first.layer_mask()[1].any() and first.layer_mask()[0].all()


def test_langs_subset_and_corpus_validation(tiny_gpt2):
    s = collect_stats(tiny_gpt2, DuckCorpus(TEXTS), langs=["ru", "en"])
    assert s.langs == ["ru", "en"] and s.corpus_hash == "hash-x0-x1-x2-x3"
    with pytest.raises(DataValidationError, match="not in the corpus"):
        collect_stats(tiny_gpt2, TEXTS, langs=["xx"])
    with pytest.raises(DataValidationError, match="same number"):
        collect_stats(tiny_gpt2, {"en": ["a", "b"], "de": ["c"]})
    with pytest.raises(ValueError, match="site"):
        collect_stats(tiny_gpt2, TEXTS, site="resid")
    with pytest.raises(KeyError, match="No statistics for language 'fr'"):
        s.mean("fr")


def test_truncation_warns_once_with_count_or_raises(tiny_llama):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = collect_stats(tiny_llama, TEXTS, max_length=4, batch_size=2)
    msgs = [str(x.message) for x in w if "Truncated" in str(x.message)]
    long_ = sum(len(tiny_llama.tokenizer(t)["input_ids"]) > 4 for texts in TEXTS.values() for t in texts)
    assert len(msgs) == 1 and msgs[0].startswith(f"Truncated {long_} of 12")
    assert s.n_truncated == long_
    assert all(s.n_tokens(l) <= 3 * 4 for l in TEXTS)  # at most 3 real tokens per text (BOS cut)
    with pytest.raises(ContextLengthError):
        collect_stats(tiny_llama, TEXTS, max_length=4, truncation="error")
