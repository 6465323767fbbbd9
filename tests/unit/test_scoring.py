"""option_logprobs against a hand computation with the plain HF model."""
from __future__ import annotations

import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.scoring import option_logprobs, option_token_counts, score_choices
from clas_lens.testing import hf_reference

PROMPT = "Monday, Tuesday, Wednesday,"
OPTIONS = [" Thursday", " Mon", " 1 2 3 4 5", " Привет мир"]


def hand_logprobs(ref_model, tok, prompt, options):
    """Sum of log p(option token | prefix) from the HF model, one unpadded sequence at a time."""
    out = []
    p = tok(prompt)["input_ids"]
    for opt in options:
        j = tok(prompt + opt)["input_ids"]
        assert j[: len(p)] == p
        with torch.no_grad():
            logp = ref_model(torch.tensor([j])).logits[0].float().log_softmax(-1)
        out.append(sum(logp[t - 1, j[t]].item() for t in range(len(p), len(j))))
    return torch.tensor(out)


def test_option_logprobs_equals_hf_reference(tiny):
    ref = hf_reference(tiny)
    with torch.no_grad():
        got = option_logprobs(tiny, PROMPT, OPTIONS)
    expected = hand_logprobs(ref, tiny.tokenizer, PROMPT, OPTIONS)
    assert got.shape == (len(OPTIONS),)
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=0)


def test_score_choices_matches_single_calls(tiny_llama):
    items = [(PROMPT, OPTIONS), ("Der Hund", [" schläft", " läuft"]), ("你好", ["世界"])]
    batched = score_choices(tiny_llama, items, batch_size=3)  # forces several batches
    assert [tuple(t.shape) for t in batched] == [(4,), (2,), (1,)]
    for (prompt, options), b in zip(items, batched):
        with torch.no_grad():
            single = option_logprobs(tiny_llama, prompt, options)
        torch.testing.assert_close(b, single.cpu(), atol=1e-4, rtol=0)
    assert not batched[0].requires_grad


def test_option_logprobs_is_differentiable(tiny_llama):
    lp = option_logprobs(tiny_llama, PROMPT, OPTIONS[:2])
    assert lp.requires_grad
    (lp[0] - lp[1]).backward()
    grads = [p.grad for p in tiny_llama.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    tiny_llama.zero_grad(set_to_none=True)


def test_boundary_merge_warns(tiny_gpt2):
    # A prompt ending with a space: the space belongs to the next word once joined.
    with pytest.warns(UserWarning, match="merged tokens across the boundary"):
        with torch.no_grad():
            lp = option_logprobs(tiny_gpt2, "Monday, ", ["Tuesday", "Friday"])
    assert torch.isfinite(lp).all()


def test_bad_options(tiny_llama):
    with pytest.raises(DataValidationError, match="non-empty list"):
        option_logprobs(tiny_llama, PROMPT, [])
    with pytest.raises(DataValidationError, match="non-empty list"):
        option_logprobs(tiny_llama, PROMPT, " Thursday")
    with pytest.raises(DataValidationError, match="non-empty strings"):
        option_logprobs(tiny_llama, PROMPT, [" Thursday", ""])
    with pytest.raises(ValueError, match="batch_size"):
        score_choices(tiny_llama, [(PROMPT, OPTIONS)], batch_size=0)


def _full_sequence_logprobs(model, prompt, options):
    """Reference: each prompt + option on its own, no cache, plain log-softmax."""
    import torch

    tok = model.tokenizer
    p = tok(prompt)["input_ids"]
    out = []
    for o in options:
        ids = torch.tensor([tok(prompt + o)["input_ids"]])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).float(), dim=-1)[0]
        out.append(sum(lp[k - 1, ids[0, k]].item() for k in range(len(p), ids.shape[1])))
    return out


def test_shared_prefix_equals_full_sequences(tiny):
    import torch

    from clas_lens.scoring import score_choices

    items = [
        ("Monday, Tuesday,", [" Wednesday", " Friday", " x"]),
        ("Привет мир, как", [" дела", " ты поживаешь сегодня"]),
        ("1 2 3", [" 4", " 5 6 7 8"]),
    ]
    got = score_choices(tiny, items, batch_size=5)
    for (prompt, options), g in zip(items, got):
        ref = _full_sequence_logprobs(tiny, prompt, options)
        assert torch.allclose(g, torch.tensor(ref), atol=1e-4), (prompt, g, ref)


def test_full_and_shared_paths_agree(tiny_llama):
    import torch

    from clas_lens.scoring import option_logprobs

    a = option_logprobs(tiny_llama, "Monday, Tuesday,", [" Wednesday", " Friday x y"])
    b = option_logprobs(tiny_llama, "Monday, Tuesday,", [" Wednesday", " Friday x y"], share_prefix=False)
    assert torch.allclose(a, b, atol=1e-4)


def test_length_normalisation_as_defined(tiny_llama):
    from clas_lens.scoring import length_normalise, option_token_counts

    tok = tiny_llama.tokenizer
    p = len(tok(PROMPT)["input_ids"])
    counts = option_token_counts(tok, PROMPT, OPTIONS)
    assert counts == [len(tok(PROMPT + o)["input_ids"]) - p for o in OPTIONS]
    raw = score_choices(tiny_llama, [(PROMPT, OPTIONS)])[0]
    per_token = score_choices(tiny_llama, [(PROMPT, OPTIONS)], length_norm="tokens")[0]
    per_char = score_choices(tiny_llama, [(PROMPT, OPTIONS)], length_norm="chars")[0]
    torch.testing.assert_close(per_token, raw / torch.tensor(counts, dtype=torch.float32))
    torch.testing.assert_close(per_char, raw / torch.tensor([float(len(o)) for o in OPTIONS]))
    torch.testing.assert_close(score_choices(tiny_llama, [(PROMPT, OPTIONS)], length_norm="none")[0], raw)
    assert length_normalise(torch.tensor([-6.0]), [" abc"], "chars").tolist() == [-1.5]
    with pytest.raises(ValueError, match="token_counts"):
        length_normalise(torch.tensor([-6.0]), [" abc"], "tokens")
    with pytest.raises(ValueError, match="length_norm='bytes'"):
        length_normalise(torch.tensor([-6.0]), [" abc"], "bytes")


def test_unembeds_only_scored_positions(tiny):
    # Pass 1: each prompt's last position; pass 2: the positions that predict option tokens 1..n-1.
    # Options of different lengths share pass 2, whose padding gets no logits.
    seen = []
    handle = tiny.original_model.get_output_embeddings().register_forward_hook(
        lambda mod, args, out: seen.append(args[0].shape[:-1].numel())
    )
    try:
        with torch.no_grad():
            option_logprobs(tiny, PROMPT, OPTIONS)
    finally:
        handle.remove()
    counts = option_token_counts(tiny.tokenizer, PROMPT, OPTIONS)
    assert len(set(counts)) > 1  # the case the test is about
    assert sum(seen) == 1 + sum(n - 1 for n in counts)
