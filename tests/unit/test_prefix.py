"""Prefix reuse (clas_lens/prefix.py): logits equal the full forward for every intervention type
on the three tiny architectures, left and right padding; early hooks fall back to the full path;
the KV-cached option scoring and the lm NLL replay the prefix and give the same numbers."""
from __future__ import annotations

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError
from clas_lens.lm_nll import sentence_nll
from clas_lens.prefix import best_start, first_hooked_layer, first_layer_of, forward_at, reuse_prefix, reuse_steps
from clas_lens.scoring import option_logprobs, score_choices
from clas_lens.sites import neuron_sites
from clas_lens.steering import AddNeurons, ClasSteering, Deactivate, DiffMeanSteering, SetNeurons, residual_means, steer

from steering._reference import FakeNeurons  # tests/unit/steering (a test package)

TEXTS = ["the cat sat on the mat", "one two", "Der Hund schläft im Garten heute", "x"]


def _interventions(model, layer):
    shape = neuron_sites(model).shape
    ns = FakeNeurons(shape, p_spec=0.3)
    only = torch.zeros(shape, dtype=torch.bool)
    only[layer] = ns.mask("specific", "en")[layer]
    values = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rm = residual_means(model, {"en": ["the cat sat"], "de": ["Der Hund schläft"]}, layers=None)
    return {
        "clas": ClasSteering(ns, target_lang="en", layers=[layer], beta=0.5, gamma=0.5),
        "set": SetNeurons(only, value=values, strength=0.7, layers=[layer]),
        "deactivate": Deactivate(only, layers=[layer]),
        "add": AddNeurons(only, values.float(), strength=0.5, positions="last", layers=[layer]),
        "diffmean": DiffMeanSteering("en", "de", layers=[layer], strength=4.0, means=rm),
    }


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["clas", "set", "deactivate", "add", "diffmean"])
def test_reuse_equals_full_path(tiny, kind, side):
    n = tiny.cfg.n_layers
    layer = n - 1
    iv = _interventions(tiny, layer)[kind]
    enc = encode(tiny, TEXTS, padding_side=side)
    real = enc.attention_mask.bool()
    with torch.no_grad(), steer(tiny, iv):
        full = forward_at(tiny, enc.input_ids, enc.attention_mask)
    with torch.no_grad(), reuse_prefix(tiny, start=layer) as memo:
        with steer(tiny):  # an unsteered call first stores the prefix
            forward_at(tiny, enc.input_ids, enc.attention_mask)
        with steer(tiny, iv):
            fast = forward_at(tiny, enc.input_ids, enc.attention_mask)
    assert memo.misses == 1 and memo.hits == 1 and memo.fallbacks == 0
    assert (full - fast).abs()[real].max().item() <= 1e-5


def test_logits_only_at_scored_positions(tiny):
    enc = encode(tiny, TEXTS, padding_side="left")
    pos = torch.tensor([[1, 5], [4, 5], [2, 3], [5, 5]])
    with torch.no_grad():
        full = forward_at(tiny, enc.input_ids, enc.attention_mask)
        with reuse_prefix(tiny, start=1):
            forward_at(tiny, enc.input_ids, enc.attention_mask, pos)
            some = forward_at(tiny, enc.input_ids, enc.attention_mask, pos)
    ref = full.gather(1, pos[..., None].expand(-1, -1, full.shape[-1]))
    assert some.shape == ref.shape
    assert (some - ref).abs().max().item() <= 1e-5


def test_early_hook_falls_back(tiny_llama):
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    iv = _interventions(tiny_llama, 0)["deactivate"]
    with torch.no_grad(), steer(tiny_llama, iv):
        full = forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
    with torch.no_grad(), reuse_prefix(tiny_llama, start=1) as memo:
        forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
        with steer(tiny_llama, iv):
            assert first_hooked_layer(tiny_llama) == 0
            fast = forward_at(tiny_llama, enc.input_ids, enc.attention_mask)
    assert memo.fallbacks == 1
    assert torch.equal(full, fast)


def test_different_tokens_are_not_confused(tiny_gpt2):
    a = encode(tiny_gpt2, ["one two three"], padding_side="right")
    b = encode(tiny_gpt2, ["four five six"], padding_side="right")
    with torch.no_grad():
        ref_b = forward_at(tiny_gpt2, b.input_ids, b.attention_mask)
        with reuse_prefix(tiny_gpt2, start=1) as memo:
            forward_at(tiny_gpt2, a.input_ids, a.attention_mask)
            got_b = forward_at(tiny_gpt2, b.input_ids, b.attention_mask)
    assert memo.misses == 2 and torch.allclose(ref_b, got_b, atol=1e-6)


def test_scope_restores_blocks_and_validates(tiny_gpt2):
    with pytest.raises(DataValidationError, match="start"):
        with reuse_prefix(tiny_gpt2, start=99):
            pass
    enc = encode(tiny_gpt2, TEXTS, padding_side="right")
    with torch.no_grad():
        before = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
        with reuse_prefix(tiny_gpt2, start=1):
            forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
            forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
        after = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
    assert torch.equal(before, after)  # no replay left behind


ITEMS = [
    ("Monday, Tuesday, Wednesday,", [" Thursday", " Mon", " 1 2 3 4 5", " Привет мир"]),
    ("Der Hund", [" schläft", " läuft"]),
    ("你好", ["世界"]),
    ("one two", [" three"]),
]


@pytest.mark.parametrize("kind", ["clas", "deactivate", "diffmean"])
def test_cached_option_scoring_replays_the_prefix(tiny, kind):
    """Prompt pass + option pass on its KV cache, as one reuse_steps unit: the replayed blocks
    leave placeholders of the right length in the cache (GPT-2, Llama, Gemma-3 sliding layers)."""
    layer = tiny.cfg.n_layers - 1
    iv = _interventions(tiny, layer)[kind]
    with steer(tiny, iv):
        full = score_choices(tiny, ITEMS, batch_size=5)
    with reuse_prefix(tiny, start=layer) as memo:
        score_choices(tiny, ITEMS, batch_size=5)  # unsteered: stores
        with steer(tiny, iv):
            fast = score_choices(tiny, ITEMS, batch_size=5)
    assert memo.misses == 2 and memo.hits == 2 and memo.fallbacks == 0  # two batches
    for a, b in zip(full, fast):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_one_token_options_need_no_second_pass(tiny_llama):
    items = [("the cat", [" on"]), ("the", [" mat", " on"]), ("Der Hund", [" im"])]
    toks = [[len(tiny_llama.tokenizer(p + o)["input_ids"]) - len(tiny_llama.tokenizer(p)["input_ids"]) for o in opts]
            for p, opts in items]
    assert all(n == 1 for row in toks for n in row)
    calls = []
    handle = tiny_llama.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        got = score_choices(tiny_llama, items)
    finally:
        handle.remove()
    assert len(calls) == 1  # the prompts only
    for (p, opts), g in zip(items, got):
        with torch.no_grad():
            ref = option_logprobs(tiny_llama, p, opts, share_prefix=False)
        torch.testing.assert_close(g, ref, atol=1e-5, rtol=0)


def test_lm_nll_replays_the_prefix(tiny):
    texts = TEXTS + ["a much longer text than the others, to pad the batch"]
    iv = _interventions(tiny, tiny.cfg.n_layers - 1)["set"]
    with steer(tiny, iv):
        full = sentence_nll(tiny, texts, batch_size=3, padding_side="left")
    with reuse_prefix(tiny, start=tiny.cfg.n_layers - 1) as memo:
        sentence_nll(tiny, texts, batch_size=3, padding_side="left")
        with steer(tiny, iv):
            fast = sentence_nll(tiny, texts, batch_size=3, padding_side="left")
    assert memo.hits == 2 and memo.misses == 2
    torch.testing.assert_close(full, fast, atol=1e-5, rtol=0)


def test_no_replay_with_grad_or_over_budget(tiny_gpt2):
    enc = encode(tiny_gpt2, TEXTS, padding_side="right")
    with reuse_prefix(tiny_gpt2, start=1) as memo:
        forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)  # grad enabled: no replay
    assert memo.fallbacks == 1 and memo.misses == 0
    with torch.no_grad(), reuse_prefix(tiny_gpt2, start=1, max_bytes=1) as memo:
        a = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
        b = forward_at(tiny_gpt2, enc.input_ids, enc.attention_mask)
    assert memo.misses == 2 and memo.hits == 0 and memo.dropped == 2 and memo.nbytes == 0
    assert torch.equal(a, b)


def test_steps_must_repeat_in_order(tiny_llama):
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    with torch.no_grad(), reuse_prefix(tiny_llama, start=1):
        for _ in range(2):
            with reuse_steps(tiny_llama, enc.input_ids) as step:
                with step():
                    tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        with pytest.raises(DataValidationError, match="more forwards"):
            with reuse_steps(tiny_llama, enc.input_ids) as step:
                with step():
                    tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
                step()


def test_first_layer_and_best_start():
    assert first_layer_of(["blocks.7.hook_resid_post", "blocks.12.mlp.hook_post"], 18) == 7
    assert first_layer_of([lambda name: True], 18) == 0  # a name filter may match anything
    assert first_layer_of(["ln_final.hook_normalized"], 18) == 18
    assert best_start([18, 14, 14, 14], 18) == 14
    assert best_start([18, 14, 16], 18) == 14
    assert best_start([18, 2, 14, 14, 14], 18) == 14  # the early condition runs in full
    assert best_start([18, 17], 18) == 17
    assert best_start([18, 0], 18) == 0 and best_start([], 18) == 0


LONG = ["the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat all day",
        "one two", "Der Hund schläft im Garten, und die Katze liegt auf dem Dach in der Sonne"]


def _cache_tensors(cache):
    return [(layer.keys, layer.values) for layer in cache.layers]


def test_keep_cache_replay_leaves_the_cache_as_the_full_forward(tiny):
    """Every layer of the KV cache after a replayed prompt pass equals the full pass's (Gemma-3's
    sliding layers hold a window of 16 here, shorter than the prompts)."""
    enc = encode(tiny, LONG, padding_side="left")
    ids, mask = enc.input_ids, enc.attention_mask
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    assert ids.shape[1] > 16
    start = tiny.cfg.n_layers - 1
    kw = dict(attention_mask=mask, position_ids=pos, use_cache=True, return_type="logits_and_cache")
    with torch.no_grad():
        ref_logits, ref_cache = tiny(ids, **kw)
        with reuse_prefix(tiny, start=start) as memo:
            for _ in range(2):
                with reuse_steps(tiny, ids, mask, keep_cache=True) as step:
                    with step():
                        logits, cache = tiny(ids, **kw)
    assert memo.misses == 1 and memo.hits == 1 and memo.fallbacks == 0
    real = mask.bool()
    assert (logits - ref_logits).abs()[real].max().item() <= 1e-5
    for (k, v), (rk, rv) in zip(_cache_tensors(cache), _cache_tensors(ref_cache), strict=True):
        assert k.shape == rk.shape and torch.equal(k, rk) and torch.equal(v, rv)
    assert cache.get_seq_length() == ref_cache.get_seq_length()


@pytest.mark.parametrize("kind", ["clas", "add", "deactivate"])
def test_generation_with_prefix_reuse_gives_the_same_tokens(tiny, kind):
    from clas_lens.generation import generate_tokens

    layer = tiny.cfg.n_layers - 1
    iv = _interventions(tiny, layer)[kind]
    with torch.no_grad(), steer(tiny, iv):
        full = generate_tokens(tiny, LONG, 8)
        uncached = generate_tokens(tiny, LONG, 8, use_cache=False)
    with torch.no_grad(), reuse_prefix(tiny, start=layer) as memo:
        plain = generate_tokens(tiny, LONG, 8)  # the unsteered condition stores the prompt's prefix
        with steer(tiny, iv):
            fast = generate_tokens(tiny, LONG, 8)
    assert memo.misses == 1 and memo.hits == 1 and memo.fallbacks == 0
    assert fast == full == uncached
    with torch.no_grad():
        assert plain == generate_tokens(tiny, LONG, 8)


def test_a_wrong_cache_would_be_seen():
    """The token check above can fail: with the stored keys and values of the replayed layers
    scaled (a wrong cache), the decode steps of a random tiny Llama pick other tokens."""
    from clas_lens.generation import generate_tokens
    from clas_lens.testing import tiny_model

    model = tiny_model("llama")
    with torch.no_grad():
        ref = generate_tokens(model, LONG, 8)
        with reuse_prefix(model, start=model.cfg.n_layers - 1) as memo:
            assert generate_tokens(model, LONG, 8) == ref  # stores
            for steps in memo._store.values():
                for _, updates in steps:
                    for k, v, _, _ in updates:
                        k.mul_(-3.0)
                        v.mul_(-3.0)
            wrong = generate_tokens(model, LONG, 8)      # replays the damaged cache
    assert memo.hits == 1 and wrong != ref
