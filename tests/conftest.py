"""Shared fixtures. Unit tests use tiny random models (seeded); integration tests the embedded
Gemma-3-270M, converted once into the clas_lens cache."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread_and_seed():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session", params=["gpt2", "llama", "gemma3"])
def tiny(request):
    """A tiny random bridge of each architecture (seed 0)."""
    from clas_lens.testing import tiny_model

    return tiny_model(request.param, seed=0)


@pytest.fixture(scope="session")
def tiny_llama():
    from clas_lens.testing import tiny_model

    return tiny_model("llama", seed=0)


@pytest.fixture(scope="session")
def tiny_gpt2():
    from clas_lens.testing import tiny_model

    return tiny_model("gpt2", seed=0)


@pytest.fixture(scope="session")
def gemma():
    """The embedded Gemma-3-270M (integration tier)."""
    from clas_lens.models import load_model

    return load_model("default")
