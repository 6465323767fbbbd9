"""Fixtures of the steering tests: statistics and a NeuronSet from the real clas_lens classes."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def real(tiny_llama):
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats

    corpus = {
        "en": ["the cat sat on the mat", "one two three four", "Monday Tuesday Wednesday", "hello world"],
        "de": ["Der Hund schläft im Garten", "eins zwei drei vier", "Montag Dienstag", "Hallo Welt"],
        "ru": ["Привет, как дела?", "один два три", "понедельник вторник", "Привет мир"],
    }
    stats = collect_stats(tiny_llama, corpus, site="act", progress=False)
    ns = identify_neurons(stats, "clas", criterion="quantile", top_quantile=0.3)
    return stats, ns
