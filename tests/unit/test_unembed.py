"""clas_lens.unembed: log-probabilities from the final residual in vocabulary chunks equal those of
the model's own logits (lm NLL and option scoring, steered or not), and fall back where they must."""
from __future__ import annotations

import contextlib

import pytest
import torch

from clas_lens import unembed
from clas_lens.lm_nll import sentence_nll
from clas_lens.scoring import score_choices
from clas_lens.sites import neuron_sites
from clas_lens.steering import Deactivate, steer
from clas_lens.unembed import final_residual, plain_head, token_logprobs

TEXTS = ["The cat sat on the mat.", "One two", "Привет, как дела?", "x", "Der Hund schläft im Garten heute."]
CHOICES = [("Monday, Tuesday, Wednesday,", [" Thursday", " Mon", " 1 2 3 4 5", " Привет мир"]),
           ("One, two,", [" three", " four five"])]


def _logits_path(model):
    """A hook on the unembedding's output: the scoring must then read the model's logits."""
    calls = []

    def watch(logits, hook):
        calls.append(logits.shape[0])
        return logits

    return model.hooks(fwd_hooks=[("unembed.hook_out", watch)]), calls


@pytest.mark.parametrize("steered", [False, True])
def test_chunked_path_equals_the_logits_path(tiny, steered, monkeypatch):
    # Chunks of 64 rows: 7 chunks of the tiny models' 400-token vocabulary.
    monkeypatch.setattr(unembed, "VOCAB_CHUNK", 64)
    monkeypatch.setattr(unembed, "VOCAB_CHUNK_CPU", 64)
    with torch.no_grad():
        assert plain_head(tiny) is not None
    mask = torch.zeros(neuron_sites(tiny).shape, dtype=torch.bool)
    mask[-1, ::3] = True
    with steer(tiny, Deactivate(mask, site="act")) if steered else contextlib.nullcontext(), torch.no_grad():
        fast_nll = sentence_nll(tiny, TEXTS, batch_size=3)
        fast_opt = score_choices(tiny, CHOICES)
        hooks, calls = _logits_path(tiny)
        with hooks:
            slow_nll = sentence_nll(tiny, TEXTS, batch_size=3)
            slow_opt = score_choices(tiny, CHOICES)
    assert calls and min(calls) > 0  # the hook saw real logits
    torch.testing.assert_close(fast_nll, slow_nll, rtol=0, atol=1e-5)
    for a, b in zip(fast_opt, slow_opt):
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), rtol=0, atol=1e-5)


def test_fast_path_computes_no_logits(tiny_llama):
    seen = []
    head = tiny_llama.original_model.get_output_embeddings().original_component
    handle = head.register_forward_hook(lambda mod, args, out: seen.append(out.shape[0]))
    try:
        with torch.no_grad():
            sentence_nll(tiny_llama, TEXTS)
    finally:
        handle.remove()
    assert seen and set(seen) == {0}


def test_fallbacks(tiny_llama):
    with torch.no_grad():
        assert plain_head(tiny_llama) is not None
        for name in ("unembed.hook_out", "hook_unembed"):
            with tiny_llama.hooks(fwd_hooks=[(name, lambda t, hook: t)]):
                assert plain_head(tiny_llama) is None
    assert plain_head(tiny_llama) is None  # gradients on
    with torch.no_grad(), final_residual(tiny_llama) as out:
        assert out.head is not None
    head = tiny_llama.original_model.get_output_embeddings().original_component
    assert not head._forward_pre_hooks  # the scope removed its hook


def test_soft_capping_and_other_model_types_fall_back(tiny_llama, monkeypatch):
    cfg = tiny_llama.original_model.config
    with torch.no_grad():
        monkeypatch.setattr(cfg, "final_logit_softcapping", 30.0, raising=False)
        assert plain_head(tiny_llama) is None
        monkeypatch.setattr(cfg, "final_logit_softcapping", None, raising=False)
        monkeypatch.setattr(cfg, "model_type", "some_new_arch")
        assert plain_head(tiny_llama) is None


def test_token_logprobs_chunks_rows_and_targets_at_chunk_edges():
    g = torch.Generator().manual_seed(0)
    h, w, b = torch.randn(6, 16, generator=g), torch.randn(100, 16, generator=g), torch.randn(100, generator=g)
    t = torch.tensor([0, 31, 32, 33, 64, 99, 5])  # first / last rows of chunks of 32, the last chunk (4 rows)
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 0])  # row 0 has two targets
    full = torch.log_softmax((h @ w.T + b).double(), dim=-1)[rows, t]
    for chunk in (1, 32, 100, 1000):
        got = token_logprobs(h, w, b, t, rows, chunk=chunk)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), full, rtol=0, atol=1e-5)
    default_rows = token_logprobs(h, w, None, t[:6])
    torch.testing.assert_close(default_rows.double(), torch.log_softmax((h @ w.T).double(), -1)[torch.arange(6), t[:6]],
                               rtol=0, atol=1e-5)


def test_logprobs_many_equals_one_by_one(tiny_llama, monkeypatch):
    # Two forwards' residuals share one pass over the output layer; the same numbers as reading
    # each forward on its own, and as the logits path.
    monkeypatch.setattr(unembed, "VOCAB_CHUNK_CPU", 64)
    a, b = torch.tensor([[1, 5, 6, 7]]), torch.tensor([[1, 8, 9], [1, 10, 11]])
    ta, tb, rows_b = torch.tensor([3, 399]), torch.tensor([0, 64, 65]), torch.tensor([0, 1, 1])
    results = []
    with torch.no_grad():
        for hooked in (False, True):
            hooks, _ = _logits_path(tiny_llama)
            with hooks if hooked else contextlib.nullcontext():
                with final_residual(tiny_llama) as out:
                    la = tiny_llama(a, logits_to_keep=2)
                    lb = tiny_llama(b, logits_to_keep=2)
                    many = out.logprobs_many([(la, ta, None), (lb, tb, rows_b)])
                with final_residual(tiny_llama) as out:
                    la = tiny_llama(a, logits_to_keep=2)
                    one_a = out.logprobs(la, ta)
                    lb = tiny_llama(b, logits_to_keep=2)
                    one_b = out.logprobs(lb, tb, rows_b)
            assert [t.shape for t in many] == [(2,), (3,)]
            torch.testing.assert_close(many[0], one_a, rtol=0, atol=1e-6)
            torch.testing.assert_close(many[1], one_b, rtol=0, atol=1e-6)
            results.append(many)
    for fast, slow in zip(*results):
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
