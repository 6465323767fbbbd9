"""clas_lens.stats.neuron_stats: exact merge, state round trip, persistence (with checksum), model checks."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.stats import Accumulator, NeuronStats, collect_stats

from _steering_toys import DuckCorpus
from ._stats_ref import TEXTS
from ._stats_ref import assert_same_stats as _assert_same


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
    g = torch.Generator().manual_seed(seed)
    shards, allv = [], []
    for n in sizes:
        v = torch.randn(n, 2, 5, generator=g, dtype=torch.float64) * 3 + 1
        allv.append(v)
        state = {"en": Accumulator(torch.tensor(n), (v > 0).sum(0), v.sum(0), (v * v).sum(0))}
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


def test_load_refuses_a_flipped_byte_in_a_tensor(tmp_path, tiny_llama):
    s = collect_stats(tiny_llama, TEXTS, langs=["en"])
    path = s.save(tmp_path / "stats.safetensors")
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    data[8 + header_len + 20] ^= 0x01  # a byte inside the tensor data, not the header
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="checksum"):
        NeuronStats.load(path)
