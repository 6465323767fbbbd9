"""The embedded Gemma-3-270M through the bridge equals Hugging Face loaded from the GGUF."""
from __future__ import annotations

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.generation import generate_tokens
from clas_lens.sites import neuron_sites

pytestmark = pytest.mark.integration

PROMPTS = [
    "The capital of France is",
    "Die Hauptstadt von Frankreich ist",
    "Lundi, mardi, mercredi,",
    "Jumatatu, Jumanne,",
    "Столица России —",
    "日本の首都は",
    "La capital de España es",
]


@pytest.fixture(scope="module")
def hf_gguf():
    """HF model dequantized straight from the GGUF file (eager attention, as the bridge)."""
    from transformers import AutoModelForCausalLM

    from clas_lens.models import _assemble_default_gguf

    p = _assemble_default_gguf()
    return AutoModelForCausalLM.from_pretrained(
        p.parent, gguf_file=p.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def test_default_model_card(gemma):
    from clas_lens.models import default_model_dir, folder_fingerprint, model_info

    s = neuron_sites(gemma)
    assert (s.n_layers, s.d_mlp, s.gated) == (18, 2048, True)
    assert model_info(gemma).weights_sha256 == folder_fingerprint(default_model_dir())  # the weights' bytes


def test_logits_equal_hf_from_gguf(gemma, hf_gguf):
    enc = encode(gemma, PROMPTS, padding_side="left")
    with torch.no_grad():
        ours = gemma(enc.input_ids, attention_mask=enc.attention_mask)
        ref = hf_gguf(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    m = enc.attention_mask.bool()
    diff = (ours[m] - ref[m]).abs().max().item()
    print(f"max |logit diff| bridge vs HF(GGUF): {diff:.2e}")
    assert diff < 1e-3


def test_sites_equal_hf_modules(gemma, hf_gguf):
    enc = encode(gemma, PROMPTS[:3])
    sites = neuron_sites(gemma)
    layer = 9
    store = {}
    mlp = hf_gguf.model.layers[layer].mlp
    hs = [
        mlp.down_proj.register_forward_pre_hook(lambda m, a: store.__setitem__("post", a[0])),
        mlp.gate_proj.register_forward_hook(lambda m, a, o: store.__setitem__("act", mlp.act_fn(o))),
    ]
    with torch.no_grad():
        hf_gguf(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    for h in hs:
        h.remove()
    for site in ("post", "act"):
        got = {}
        with torch.no_grad(), gemma.hooks(fwd_hooks=sites.read_hooks(site, layer, lambda v: got.__setitem__("v", v))):
            gemma(enc.input_ids, attention_mask=enc.attention_mask)
        m = enc.real_mask
        diff = (got["v"][m] - store[site][m]).abs().max().item()
        print(f"site {site} layer {layer}: max diff {diff:.2e}")
        assert diff < 1e-3


def test_generation_equals_hf_greedy(gemma, hf_gguf):
    tok = gemma.tokenizer
    n = 12
    ours = generate_tokens(gemma, PROMPTS, n, use_cache=True)
    ours_nc = generate_tokens(gemma, PROMPTS[:3], n, use_cache=False)
    assert ours_nc == ours[:3]
    for prompt, got in zip(PROMPTS, ours):
        enc = tok([prompt], return_tensors="pt")
        out = hf_gguf.generate(**enc, do_sample=False, max_new_tokens=n)
        ref = out[0, enc.input_ids.shape[1]:].tolist()
        if tok.eos_token_id in ref:
            ref = ref[: ref.index(tok.eos_token_id)]
        assert got == ref, (prompt, tok.decode(got), tok.decode(ref))


def test_sentence_nll_equals_hf_cross_entropy(gemma, hf_gguf):
    # Gemma-3 is a plain-head model: sentence_nll reads the final residual and unembeds it in
    # 16 chunks of the 262,144-token vocabulary (clas_lens.unembed); the reference is the cross
    # entropy of the GGUF model's full logits, one unpadded text at a time.
    from clas_lens.lm_nll import sentence_nll
    from clas_lens.unembed import plain_head

    with torch.no_grad():
        assert plain_head(gemma) is not None
        got = sentence_nll(gemma, PROMPTS, batch_size=4)
        ref = []
        for text in PROMPTS:
            ids = torch.tensor([gemma.tokenizer(text)["input_ids"]])
            logits = hf_gguf(ids).logits[0].double()
            ref.append(float(torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:])))
    torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), rtol=0, atol=1e-4)
