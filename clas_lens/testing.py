"""Tiny random models for tests, docs and benchmarks (no downloads, seeded).

``tiny_model(arch)`` builds a small GPT-2-, Llama- or Gemma-3-style Hugging Face model from a
config with a fixed seed, saves it with a small byte-level BPE tokenizer into a folder and loads
it through :func:`clas_lens.load_model` (the same path real models take). ``hf_reference(model)``
loads the same folder as a plain HF model, untouched by the bridge, as an independent reference.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch

ARCHS = ("gpt2", "llama", "gemma3")

_TOKENIZER_TEXT = [
    "The cat sat on the mat. Der Hund schläft im Garten. El niño come pan.",
    "Привет, как дела? Γειά σου κόσμε. Merhaba dünya. مرحبا بالعالم.",
    "Xin chào thế giới. สวัสดีชาวโลก 你好世界 नमस्ते दुनिया Habari ya dunia.",
    "Monday Tuesday Wednesday one two three 1 2 3 4 5 6 7 8 9 0 , . ? !",
]


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TOKENIZER_TEXT * 4, trainer)
    tok.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    hf.save_pretrained(folder)
    return len(hf)


def _hf_model(arch: str, vocab: int):
    common = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=128, **common)
        cfg.architectures = ["GPT2LMHeadModel"]
        return GPT2LMHeadModel(cfg)
    if arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, **common,
        )
        cfg.architectures = ["LlamaForCausalLM"]
        return LlamaForCausalLM(cfg)
    if arch == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        cfg = Gemma3TextConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=1, head_dim=8, max_position_embeddings=128,
            sliding_window=16, **common,
        )
        cfg.architectures = ["Gemma3ForCausalLM"]
        return Gemma3ForCausalLM(cfg)
    raise ValueError(f"Unknown tiny architecture {arch!r}; choose one of {list(ARCHS)}.")


def tiny_model_folder(arch: str = "llama", seed: int = 0, folder: str | Path | None = None) -> Path:
    """Write a tiny random HF model + tokenizer of ``arch`` to a folder (seeded) and return it."""
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix=f"clas_lens_tiny_{arch}_"))
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _tokenizer(folder)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = _hf_model(arch, vocab)
        # Random init leaves tiny logits; scale up so greedy choices are well separated.
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim >= 2:
                    p.mul_(4.0)
        model.save_pretrained(folder)
    finally:
        torch.random.set_rng_state(gen_state)
    return folder


@functools.lru_cache(maxsize=None)
def _cached_folder(arch: str, seed: int) -> Path:
    return tiny_model_folder(arch, seed)


def tiny_model(arch: str = "llama", seed: int = 0):
    """A tiny random bridge of ``arch`` ("gpt2", "llama", "gemma3"), built deterministically.

    >>> model = tiny_model("gemma3")
    >>> model.cfg.n_layers
    2
    """
    from clas_lens.models import load_model

    return load_model(_cached_folder(arch, seed))


def hf_reference(model):
    """The same weights as a plain HF model (eager attention), untouched by the bridge."""
    from transformers import AutoModelForCausalLM

    from clas_lens.models import model_info

    path = model_info(model).path
    if path is None:
        raise ValueError("hf_reference needs a model loaded from a folder (load_model(path)).")
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
