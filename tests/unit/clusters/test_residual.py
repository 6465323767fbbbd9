"""clas_lens.clusters.residual: residual_reps against plain HF hooks, invariances (padding,
batching, early stop), options and errors, under steering."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clas_lens.clusters import compare_reps, residual_reps
from clas_lens.errors import DataValidationError
from clas_lens.testing import hf_reference

from ._toys import CORPUS, TEXTS


def _hf_layer_outputs(ref, input_ids):
    """{layer: [pos, d_model]}: the output of every decoder block of the plain HF model for ONE
    unpadded sentence (before any final norm), by forward hooks on the blocks themselves."""
    blocks = ref.transformer.h if hasattr(ref, "transformer") else ref.model.layers
    got = {}
    handles = [
        blk.register_forward_hook(lambda m, a, o, l=l: got.__setitem__(l, (o[0] if isinstance(o, tuple) else o).detach()))
        for l, blk in enumerate(blocks)
    ]
    with torch.no_grad():
        ref(input_ids=torch.tensor([input_ids]))
    for h in handles:
        h.remove()
    return {l: v[0] for l, v in got.items()}


def test_residual_reps_equal_hf_reference(tiny):
    """Independent reference: HF tokenizer and model, one sentence at a time, no padding;
    mean over every token but the leading BOS, or the last token."""
    ref = hf_reference(tiny)
    tok = tiny.tokenizer
    n_layers = tiny.cfg.n_layers
    expected = {"mean": {}, "last": {}}
    for lang, texts in TEXTS.items():
        for i, text in enumerate(texts):
            ids = tok(text)["input_ids"]
            assert ids[0] == tok.bos_token_id and len(ids) > 1
            outs = _hf_layer_outputs(ref, ids)
            for layer in range(n_layers):
                h = outs[layer].double()
                expected["mean"][lang, i, layer] = h[1:].mean(0)
                expected["last"][lang, i, layer] = h[-1]
    for pooling in ("mean", "last"):
        reps = residual_reps(tiny, CORPUS, pooling=pooling, batch_size=4)
        assert reps.vectors.dtype == torch.float32 and reps.layers == list(range(n_layers))
        assert reps.langs == [l for l in TEXTS for _ in range(5)] and reps.ids == CORPUS.ids * 3
        for row, (lang, id_) in enumerate(zip(reps.langs, reps.ids)):
            i = CORPUS.ids.index(id_)
            for layer in range(n_layers):
                torch.testing.assert_close(
                    reps.vectors[layer, row].double(), expected[pooling][lang, i, layer], atol=2e-5, rtol=1e-4,
                    msg=lambda m: f"{pooling} {lang} {id_} layer {layer}: {m}",
                )
    # HF's hidden_states agree where no final norm is applied (all but the last one)
    from clas_lens.batching import encode

    enc = encode(tiny, TEXTS["de"])
    with torch.no_grad():
        hs = ref(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True).hidden_states
    first = residual_reps(tiny, CORPUS, layers=[0], langs=["de"], pooling="last")
    torch.testing.assert_close(first.vectors[0].double(), hs[1][torch.arange(5), enc.last_index].double(), atol=2e-5, rtol=1e-4)


def test_residual_reps_padding_and_batching_invariance(tiny_llama):
    for pooling in ("mean", "last"):
        right = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=3, padding_side="right")
        left = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=3, padding_side="left")
        single = residual_reps(tiny_llama, CORPUS, pooling=pooling, batch_size=1)
        torch.testing.assert_close(left.vectors, right.vectors, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(single.vectors, right.vectors, atol=1e-5, rtol=1e-5)
    with_bos = residual_reps(tiny_llama, CORPUS, keep_bos=True, layers=[0])
    assert not torch.allclose(with_bos.vectors, right.vectors[:1])


def test_model_is_left_clean_after_early_stops(tiny_llama):
    """The forward is cut short (stop_at_layer / the last block's hook): afterwards the model
    runs as before, with no hook left behind, with and without steering."""
    from clas_lens.batching import encode

    enc = encode(tiny_llama, TEXTS["ru"])
    with torch.no_grad():
        before = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
    residual_reps(tiny_llama, CORPUS, layers=[0])
    residual_reps(tiny_llama, CORPUS, layers=[1])
    steering = pytest.importorskip("clas_lens.steering")
    mask = torch.ones(2, 64, dtype=torch.bool)
    residual_reps(tiny_llama, CORPUS, intervention=steering.Deactivate(mask))
    with torch.no_grad():
        after = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
    assert torch.equal(before, after)


def test_residual_reps_options_and_errors(tiny_llama):
    r = residual_reps(tiny_llama, CORPUS, layers="last:1", langs=["ru", "en"], pooling="last")
    assert r.layers == [1] and r.lang_set == ["ru", "en"] and r.pooling == "last"
    assert r.meta["corpus_hash"] == CORPUS.hash() and r.model_info["weights_sha256"]
    assert r.condition == "base" and r.meta["interventions"] == []
    # a stop before the last block gives the same early layers as a full forward
    full = residual_reps(tiny_llama, CORPUS)
    early = residual_reps(tiny_llama, CORPUS, layers=[0])
    torch.testing.assert_close(early.vectors[0], full.vectors[0], atol=1e-6, rtol=1e-6)
    X, langs, ids = full.layer(1)
    assert X.shape == (15, tiny_llama.cfg.d_model) and list(langs[:5]) == ["en"] * 5 and ids[5] == "x0"
    assert np.array_equal(full.layer(-1)[0], X)
    with pytest.raises(DataValidationError, match="not in the corpus"):
        residual_reps(tiny_llama, CORPUS, langs=["fr"])
    with pytest.raises(ValueError, match="out of range"):
        residual_reps(tiny_llama, CORPUS, layers=[5])
    with pytest.raises(DataValidationError, match="no token besides BOS"):
        residual_reps(tiny_llama, {"en": ["a", ""], "de": ["b", "c"]})
    with pytest.raises(DataValidationError, match="same number"):
        residual_reps(tiny_llama, {"en": ["a", "b"], "de": ["b"]})
    d = residual_reps(tiny_llama, {"en": TEXTS["en"], "de": TEXTS["de"]}, layers=[0])
    torch.testing.assert_close(d.vectors[0], full.vectors[0, :10], atol=1e-6, rtol=1e-6)


def test_residual_reps_with_parallel_corpus(tiny_llama):
    corpus_mod = pytest.importorskip("clas_lens.data.corpus")
    corpus = corpus_mod.ParallelCorpus.from_dict({"en": TEXTS["en"], "de": TEXTS["de"]}, check_langid=False)
    r = residual_reps(tiny_llama, corpus, layers=[0])
    assert r.ids == corpus.ids * 2 and r.meta["corpus_hash"] == corpus.hash()


def test_residual_reps_on_an_id_subset_records_the_ids(tiny_llama):
    """Held-out sentences (disjoint from those that chose the neurons): ids= picks them, in the
    given order, with the same vectors as the full run, and Reps.meta records which."""
    full = residual_reps(tiny_llama, CORPUS, layers=[1])
    assert full.meta["sentence_ids"] == CORPUS.ids and full.meta["id_subset"] is False
    assert full.meta["n_sentences"] == 5
    held = ["x3", "x0"]
    sub = residual_reps(tiny_llama, CORPUS, layers=[1], ids=held, batch_size=1)
    assert sub.ids == held * 3 and sub.langs == ["en"] * 2 + ["de"] * 2 + ["ru"] * 2
    assert sub.meta["sentence_ids"] == held and sub.meta["id_subset"] is True and sub.meta["n_sentences"] == 2
    assert sub.meta["ids_sha256"] != full.meta["ids_sha256"]
    assert sub.meta["corpus_hash"] == CORPUS.hash()  # the corpus the subset was taken from
    for row, (lang, id_) in enumerate(zip(sub.langs, sub.ids)):
        j = next(k for k, key in enumerate(zip(full.langs, full.ids)) if key == (lang, id_))
        torch.testing.assert_close(sub.vectors[0, row], full.vectors[0, j], atol=1e-6, rtol=1e-6)
    # the same through a corpus subset
    corpus_mod = pytest.importorskip("clas_lens.data.corpus")
    corpus = corpus_mod.ParallelCorpus.from_dict({"en": TEXTS["en"], "de": TEXTS["de"]}, check_langid=False)
    a = residual_reps(tiny_llama, corpus, layers=[1], ids=corpus.ids[2:4])
    b = residual_reps(tiny_llama, corpus.subset(ids=corpus.ids[2:4]), layers=[1])
    torch.testing.assert_close(a.vectors, b.vectors, atol=1e-6, rtol=1e-6)
    assert a.ids == b.ids and a.meta["ids_sha256"] == b.meta["ids_sha256"]
    with pytest.raises(DataValidationError, match="not in the corpus"):
        residual_reps(tiny_llama, CORPUS, ids=["x0", "nope"])
    with pytest.raises(DataValidationError, match="twice"):
        residual_reps(tiny_llama, CORPUS, ids=["x0", "x0"])


def test_residual_reps_under_intervention(tiny_llama):
    steering = pytest.importorskip("clas_lens.steering")
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, :32] = True
    base = residual_reps(tiny_llama, CORPUS)
    steered = residual_reps(tiny_llama, CORPUS, intervention=steering.Deactivate(mask))
    assert steered.condition == "steered" and steered.meta["interventions"][0]["type"] == "Deactivate"
    assert (steered.vectors - base.vectors).abs().amax(dim=(1, 2)).min() > 1e-4  # both layers moved
    zero = residual_reps(tiny_llama, CORPUS, intervention=[steering.Deactivate(mask, alpha=0.0)], condition="zero")
    assert torch.equal(zero.vectors, base.vectors) and zero.condition == "zero"
    # a per-language template is bound to each language: only English is edited here
    per_lang = steering.Deactivate({"en": mask, "de": torch.zeros_like(mask), "ru": torch.zeros_like(mask)})
    r = residual_reps(tiny_llama, CORPUS, intervention=per_lang)
    en = torch.tensor([l == "en" for l in r.langs])
    assert torch.equal(r.vectors[:, ~en], base.vectors[:, ~en])
    assert not torch.allclose(r.vectors[:, en], base.vectors[:, en])
    assert r.meta["per_lang_interventions"] is True
    d = compare_reps(base, steered, metrics=("silhouette_cosine", "parallel_cosine"))
    assert (d.delta.abs() > 0).any()


class AddToResidual:
    """A duck-typed residual-stream intervention (like DiffMean): add ``v`` at one layer."""

    def __init__(self, layer, v):
        self.layer, self.v = layer, v

    def hooks(self, model):
        return [(f"blocks.{self.layer}.hook_resid_post", lambda t, hook: t + self.v)]


def test_residual_edits_at_the_read_layer_are_seen(tiny_llama):
    """An intervention on hook_resid_post of layer l shows in the reps of layer l itself."""
    pytest.importorskip("clas_lens.steering")
    v = torch.linspace(-1, 1, tiny_llama.cfg.d_model)
    base = residual_reps(tiny_llama, CORPUS, layers=[0])
    for pooling in ("mean", "last"):
        b = residual_reps(tiny_llama, CORPUS, layers=[0], pooling=pooling)
        r = residual_reps(tiny_llama, CORPUS, layers=[0], pooling=pooling, intervention=AddToResidual(0, v))
        torch.testing.assert_close(r.vectors, b.vectors + v, atol=1e-5, rtol=1e-5)
    assert base.vectors.shape[1] == 15
