"""clas_lens.lm_nll: per-sentence NLL against a plain Hugging Face forward, padding, steering."""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from clas_lens.batching import encode
from clas_lens.lm_nll import sentence_nll, target_mask
from clas_lens.steering import Deactivate, steer
from clas_lens.testing import hf_reference

TEXTS = ["The cat sat on the mat.", "One two", "Привет, как дела?", "x", "Der Hund schläft im Garten heute."]


def _reference(model, texts):
    """Mean and summed NLL of each text, one unpadded HF forward per text (BOS is context only)."""
    hf = hf_reference(model)
    means, sums = [], []
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([model.tokenizer(t)["input_ids"]])
            logits = hf(ids).logits[0].double()
            nll = F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
            means.append(float(nll.mean()))
            sums.append(float(nll.sum()))
    return torch.tensor(means, dtype=torch.float64), torch.tensor(sums, dtype=torch.float64)


@pytest.mark.parametrize("side", ["left", "right"])
def test_matches_hf_reference(tiny, side):
    ref_mean, ref_sum = _reference(tiny, TEXTS)
    got = sentence_nll(tiny, TEXTS, batch_size=3, padding_side=side)
    assert got.dtype == torch.float64 and got.shape == (len(TEXTS),)
    torch.testing.assert_close(got, ref_mean, rtol=0, atol=1e-4)
    got_sum = sentence_nll(tiny, TEXTS, batch_size=2, padding_side=side, reduction="sum")
    torch.testing.assert_close(got_sum, ref_sum, rtol=0, atol=1e-4 * 20)


def test_batching_and_order_do_not_matter(tiny_llama):
    a = sentence_nll(tiny_llama, TEXTS, batch_size=16)
    b = sentence_nll(tiny_llama, TEXTS, batch_size=1)
    c = sentence_nll(tiny_llama, TEXTS[::-1], batch_size=2)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    torch.testing.assert_close(a, c.flip(0), rtol=0, atol=1e-5)


def test_target_mask_excludes_first_token_and_padding(tiny_llama):
    for side in ("left", "right"):
        enc = encode(tiny_llama, ["one two three", "a"], padding_side=side)
        tgt = target_mask(enc)
        n_tokens = enc.attention_mask.sum(1)
        assert tgt.sum(1).tolist() == (n_tokens - 1).tolist()
        assert not (tgt & ~enc.attention_mask.bool()).any()


def test_empty_text_is_nan_or_zero(tiny_gpt2):
    mean = sentence_nll(tiny_gpt2, ["", "the cat"])
    assert math.isnan(mean[0]) and math.isfinite(mean[1])
    assert sentence_nll(tiny_gpt2, [""], reduction="sum").tolist() == [0.0]


def test_max_length_cuts_the_scored_tokens(tiny_llama):
    text = "one two three four five six seven"
    full = sentence_nll(tiny_llama, [text], reduction="sum")
    with pytest.warns(UserWarning, match="Truncated"):
        cut = sentence_nll(tiny_llama, [text], reduction="sum", max_length=4)
    ref = _reference(tiny_llama, [text])[1]
    torch.testing.assert_close(full, ref, rtol=0, atol=1e-3)
    assert not torch.allclose(cut, full)


def test_steering_changes_the_nll_and_zero_strength_does_not(tiny_llama):
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, :32] = True
    base = sentence_nll(tiny_llama, TEXTS)
    with steer(tiny_llama, Deactivate(mask, site="act")):
        steered = sentence_nll(tiny_llama, TEXTS, padding_side="left")
    with steer(tiny_llama, Deactivate(mask, strength=0.0)):
        same = sentence_nll(tiny_llama, TEXTS)
    assert torch.equal(same, base)
    assert (steered - base).abs().max() > 1e-3
    # the steered value equals a hand-zeroed HF forward of one text (neuron edits leave BOS alone)
    hf = hf_reference(tiny_llama)

    def zero_after_bos(module, args):
        x = args[0].clone()
        x[:, 1:, :32] = 0.0
        return (x,)

    handles = [layer.mlp.down_proj.register_forward_pre_hook(zero_after_bos) for layer in hf.model.layers]
    try:
        ids = torch.tensor([tiny_llama.tokenizer(TEXTS[0])["input_ids"]])
        with torch.no_grad():
            logits = hf(ids).logits[0].double()
        ref = F.cross_entropy(logits[:-1], ids[0, 1:])
    finally:
        for h in handles:
            h.remove()
    assert abs(float(steered[0]) - float(ref)) < 1e-4


def test_argument_checks(tiny_llama):
    with pytest.raises(ValueError, match="reduction"):
        sentence_nll(tiny_llama, ["a"], reduction="max")
    with pytest.raises(ValueError, match="padding_side"):
        sentence_nll(tiny_llama, ["a"], padding_side="middle")
    assert sentence_nll(tiny_llama, "the cat").shape == (1,)


def _count_unembedded(model):
    """Positions the output embedding sees, summed over the forwards while the hook is on."""
    seen = []
    handle = model.original_model.get_output_embeddings().register_forward_hook(
        lambda mod, args, out: seen.append(args[0].shape[:-1].numel())
    )
    return seen, handle


def test_unembeds_only_target_positions(tiny):
    # Rows of different lengths in one batch: padding positions get no logits.
    seen, handle = _count_unembedded(tiny)
    try:
        sentence_nll(tiny, TEXTS, batch_size=len(TEXTS))
    finally:
        handle.remove()
    n_targets = sum(len(tiny.tokenizer(t)["input_ids"]) - 1 for t in TEXTS)
    assert sum(seen) == n_targets
