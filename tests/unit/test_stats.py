"""clas_lens.stats: known answers against plain HF forward hooks, invariances, exact merge."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clas_lens.errors import ContextLengthError, DataValidationError, MismatchError
from clas_lens.sites import neuron_sites
from clas_lens.stats import NeuronStats, collect_quantiles, collect_stats
from clas_lens.testing import hf_reference
from _steering_toys import DuckCorpus

TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps in the garden today."],
    "de": ["Der Hund schläft im Garten.", "Die Katze", "Eins zwei drei vier fünf", "Hallo"],
    "ru": ["Привет, как дела?", "Мир", "Кошка сидит на коврике.", "Один два три"],
}




# ---------------------------------------------------------------------------------------------
# independent reference: plain HF model, plain torch hooks, one sentence at a time
# ---------------------------------------------------------------------------------------------


def _mlp_modules(hf):
    if hasattr(hf, "transformer"):  # GPT-2
        return [blk.mlp for blk in hf.transformer.h]
    return [layer.mlp for layer in hf.model.layers]


def reference_values(model, texts, site, keep_bos=False):
    """{layer: [tokens, d_mlp]} and per-sentence means, from HF hooks on single sentences."""
    hf = hf_reference(model)
    mlps = _mlp_modules(hf)
    got = {}
    handles = []
    for l, mlp in enumerate(mlps):
        if hasattr(mlp, "c_proj"):  # GPT-2: act(c_fc(x)) enters c_proj; act == post
            handles.append(mlp.c_proj.register_forward_pre_hook(lambda m, a, l=l: got.__setitem__(l, a[0])))
        elif site == "post":
            handles.append(mlp.down_proj.register_forward_pre_hook(lambda m, a, l=l: got.__setitem__(l, a[0])))
        else:
            handles.append(
                mlp.gate_proj.register_forward_hook(lambda m, a, out, l=l, f=mlp.act_fn: got.__setitem__(l, f(out)))
            )
    per_layer = {l: [] for l in range(len(mlps))}
    per_sent = {l: [] for l in range(len(mlps))}
    tok = model.tokenizer
    with torch.no_grad():
        for t in texts:
            ids = tok(t)["input_ids"]
            hf(torch.tensor([ids]))
            start = 0 if keep_bos or ids[0] != tok.bos_token_id else 1
            for l in per_layer:
                v = got[l][0, start:].double()
                per_layer[l].append(v)
                per_sent[l].append(v.mean(0))
    for h in handles:
        h.remove()
    return {l: torch.cat(v) for l, v in per_layer.items()}, {l: torch.stack(v) for l, v in per_sent.items()}


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


# ---------------------------------------------------------------------------------------------
# merge, state, persistence, mismatch
# ---------------------------------------------------------------------------------------------


def _assert_same(a: NeuronStats, b: NeuronStats, rtol=1e-12):
    assert a.langs == b.langs
    for lang in a.langs:
        assert a.n_tokens(lang) == b.n_tokens(lang)
        assert torch.equal(a.active_prob(lang).nan_to_num(-1), b.active_prob(lang).nan_to_num(-1))
        torch.testing.assert_close(a.mean(lang), b.mean(lang), rtol=rtol, atol=1e-15, equal_nan=True)
        torch.testing.assert_close(a.std(lang), b.std(lang), rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.fixture(scope="module")
def single_pass(tiny_llama):
    return collect_stats(tiny_llama, DuckCorpus(TEXTS), batch_size=1, per_sentence=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(assign=st.lists(st.integers(0, 2), min_size=4, max_size=4), order=st.permutations([0, 1, 2]))
def test_merge_of_random_shards_equals_single_pass(tiny_llama, single_pass, assign, order):
    shards = []
    for k in sorted(set(assign)):
        rows = [i for i, a in enumerate(assign) if a == k]
        data = {lang: [TEXTS[lang][i] for i in rows] for lang in TEXTS}
        shards.append(collect_stats(tiny_llama, DuckCorpus(data, ids=[f"x{i}" for i in rows]), batch_size=1, per_sentence=True))
    shards = [shards[i] for i in order if i < len(shards)]
    merged = shards[0]
    for s in shards[1:]:
        merged = merged.merge(s)
    _assert_same(merged, single_pass)
    for lang in TEXTS:  # per-sentence values travel with their ids
        pos = {i: k for k, i in enumerate(merged.sentence_ids(lang))}
        perm = [pos[i] for i in single_pass.sentence_ids(lang)]
        assert torch.equal(merged.sentence_means(lang)[perm], single_pass.sentence_means(lang))


def test_merge_of_languages_and_state_round_trip(tiny_llama, single_pass):
    en = collect_stats(tiny_llama, TEXTS, langs=["en"], batch_size=1)
    rest = collect_stats(tiny_llama, TEXTS, langs=["de", "ru"], batch_size=1)
    both = en + rest
    _assert_same(both, single_pass.without_sentences())
    # raw sums add: state of a merge == elementwise sum of states (same language in both)
    m = en.merge(en)
    for k, v in en.state_tensors().items():
        assert torch.equal(m.state_tensors()[k], v + v)
    again = NeuronStats.from_state({k: v.clone() for k, v in both.state_tensors().items()}, both.meta())
    _assert_same(again, both, rtol=0)
    assert again.meta()["model_info"] == both.meta()["model_info"]


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=2, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_merge_is_exact_on_synthetic_shards(sizes, seed):
    """Pure-tensor property: merging shards of raw values equals summarising all of them."""
    from clas_lens.stats import _LangState

    g = torch.Generator().manual_seed(seed)
    shards, allv = [], []
    for n in sizes:
        v = torch.randn(n, 2, 5, generator=g, dtype=torch.float64) * 3 + 1
        allv.append(v)
        state = {"en": _LangState(torch.tensor(n), (v > 0).sum(0), v.sum(0), (v * v).sum(0))}
        shards.append(NeuronStats(site="post", threshold=0.0, layers=[0, 1], shape=(2, 5),
                                  model_info={"weights_sha256": "x"}, state=state))
    merged = shards[0]
    for s in shards[1:]:
        merged = merged.merge(s)
    v = torch.cat(allv)
    assert merged.n_tokens("en") == v.shape[0]
    if v.shape[0]:
        torch.testing.assert_close(merged.mean("en"), v.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(merged.active_prob("en"), (v > 0).double().mean(0), rtol=0, atol=0)
        torch.testing.assert_close(merged.std("en"), v.std(0, unbiased=False), rtol=1e-9, atol=1e-9)
    else:
        assert merged.mean("en").isnan().all()


def test_merge_refuses_incompatible_stats(tiny_llama, tiny_gpt2, single_pass):
    base = single_pass.without_sentences()
    with pytest.raises(MismatchError, match="site"):
        base.merge(collect_stats(tiny_llama, TEXTS, site="act"))
    with pytest.raises(MismatchError, match="threshold"):
        base.merge(collect_stats(tiny_llama, TEXTS, threshold=0.5))
    with pytest.raises(MismatchError, match="weights sha256"):
        base.merge(collect_stats(tiny_gpt2, TEXTS))
    with pytest.raises(MismatchError, match="per-sentence"):
        single_pass.merge(base)


def test_save_load_round_trip(tmp_path, single_pass, tiny_llama):
    path = single_pass.save(tmp_path / "sub" / "stats.safetensors")
    assert sorted(p.name for p in path.parent.iterdir()) == ["stats.safetensors"]  # no temp files left
    back = NeuronStats.load(path)
    _assert_same(back, single_pass, rtol=0)
    assert back.site == "post" and back.threshold == 0.0 and back.layers == [0, 1]
    assert back.corpus_hash == single_pass.corpus_hash
    assert set(back.versions) == {"torch", "transformers", "transformer-lens", "clas_lens"}
    assert back.model_info["weights_sha256"] == single_pass.model_info["weights_sha256"]
    for lang in TEXTS:
        assert back.sentence_ids(lang) == single_pass.sentence_ids(lang)
        assert torch.equal(back.sentence_means(lang), single_pass.sentence_means(lang))
        assert back.sentence_means(lang).dtype == torch.float16
    back.check_model(tiny_llama, site="post")
    with pytest.raises(DataValidationError, match="clas_lens metadata"):
        from safetensors.torch import save_file

        save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
        NeuronStats.load(tmp_path / "other.safetensors")


def test_check_model_names_both_models_and_sites(single_pass, tiny_gpt2, tiny_llama):
    with pytest.raises(MismatchError) as e:
        single_pass.check_model(tiny_gpt2)
    msg = str(e.value)
    assert single_pass.model_info["weights_sha256"][:16] in msg
    from clas_lens.models import model_info

    assert model_info(tiny_gpt2).weights_sha256[:16] in msg
    with pytest.raises(MismatchError, match="'post'.*'act'"):
        single_pass.check_model(tiny_llama, site="act")


def test_no_sentence_store_gives_clear_error(tiny_llama):
    s = collect_stats(tiny_llama, TEXTS)
    with pytest.raises(DataValidationError, match="per_sentence=True"):
        s.sentence_means("en")


# ---------------------------------------------------------------------------------------------
# quantiles
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", ["post", "act"])
def test_quantiles_match_numpy_on_reference_values(tiny, site):
    sites = neuron_sites(tiny)
    mask = torch.zeros(sites.shape, dtype=torch.bool)
    mask[0, [1, 5]] = True
    mask[1, [0, 7, 9]] = True
    q = collect_quantiles(tiny, TEXTS, mask, ["median", 0.1, "p90"], site=site, batch_size=3)
    for lang in TEXTS:
        vals, _ = reference_values(tiny, TEXTS[lang], site)
        assert q[lang].shape == (3,) + sites.shape
        assert q[lang][:, ~mask].isnan().all()
        for l in range(2):
            cols = mask[l].nonzero().squeeze(1)
            ref = np.quantile(vals[l][:, cols].numpy(), [0.5, 0.1, 0.9], axis=0)
            np.testing.assert_allclose(q[lang][:, l, cols].numpy(), ref, rtol=1e-4, atol=1e-5)


def test_quantiles_argument_errors(tiny_llama):
    mask = torch.zeros(2, 64, dtype=torch.bool)
    with pytest.raises(DataValidationError, match="shape"):
        collect_quantiles(tiny_llama, TEXTS, torch.zeros(3, 64, dtype=torch.bool), 0.5)
    with pytest.raises(ValueError, match="outside"):
        collect_quantiles(tiny_llama, TEXTS, mask, 1.5)
    with pytest.raises(ValueError, match="Unknown quantile"):
        collect_quantiles(tiny_llama, TEXTS, mask, "middle")
    empty = collect_quantiles(tiny_llama, TEXTS, mask, 0.5)
    assert all(math.isnan(float(v.max())) or v.isnan().all() for v in empty.values())


def test_sorted_quantiles_known_answer():
    from clas_lens.stats import sorted_quantiles

    v = torch.tensor([[4.0], [1.0], [3.0], [2.0]])
    assert sorted_quantiles(v, [0.0, 0.5, 1.0, 1 / 3]).squeeze(1).tolist() == [1.0, 2.5, 4.0, 2.0]
