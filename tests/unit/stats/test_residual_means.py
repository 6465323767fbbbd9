"""clas_lens.stats.residual_means: means against the HF hidden states, invariance to batching, errors."""
from __future__ import annotations

import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.stats import ResidualMeans, residual_means
from clas_lens.testing import hf_reference

CORPUS = {"en": ["the cat sat", "a dog", "one two three four"], "de": ["der Hund", "eins"]}


def test_matches_hf_hidden_states_and_batching(tiny_llama):
    rm = residual_means(tiny_llama, CORPUS, layers=[0], batch_size=1)
    hf = hf_reference(tiny_llama)
    tok = tiny_llama.tokenizer
    for lang, texts in CORPUS.items():
        rows = []
        with torch.no_grad():
            for t in texts:
                ids = tok(t)["input_ids"]
                h = hf(torch.tensor([ids]), output_hidden_states=True).hidden_states[1][0]
                rows.append(h[1:] if ids[0] == tok.bos_token_id else h)
        ref = torch.cat(rows).double()
        assert rm.n_tokens[lang] == ref.shape[0]
        torch.testing.assert_close(rm.vector(lang, 0), ref.mean(0), rtol=1e-4, atol=1e-5)
    again = residual_means(tiny_llama, CORPUS, layers="all", batch_size=3)
    assert again.layers == [0, 1] and again.langs == ["en", "de"]
    torch.testing.assert_close(again.means["de"][0], rm.means["de"][0], rtol=1e-6, atol=1e-7)
    assert residual_means(tiny_llama, CORPUS, layers="last:9").layers == [0, 1]  # clamped


def test_round_trip_and_errors(tiny_gpt2):
    rm = residual_means(tiny_gpt2, CORPUS, layers=[-1], langs=["de"])
    back = ResidualMeans.from_dict(rm.to_dict())
    assert back.layers == [1] and torch.equal(back.means["de"], rm.means["de"])
    assert back.model_info["weights_sha256"] == rm.model_info["weights_sha256"]
    with pytest.raises(DataValidationError, match="Unknown language 'fr'"):
        residual_means(tiny_gpt2, CORPUS, langs=["fr"])
    with pytest.raises(DataValidationError, match="Layer 0 has no residual means"):
        rm.vector("de", 0)
    with pytest.raises(DataValidationError, match="no texts"):
        residual_means(tiny_gpt2, {"en": []})
