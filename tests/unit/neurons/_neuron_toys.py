"""Synthetic NeuronStats for the tests of clas_lens.neurons: hand-worked probability tables."""
from __future__ import annotations

import torch

from clas_lens.stats import Accumulator, NeuronStats

N_TOK = 1000


def make_stats(probs: dict, means: dict | None = None, layers=None, shape=None, sentences=None, site="act"):
    """Synthetic NeuronStats whose active_prob(lang) equals ``probs[lang]`` ([mlayer, neuron])."""
    state = {}
    for lang, p in probs.items():
        p = torch.as_tensor(p, dtype=torch.float64)
        mu = torch.as_tensor(means[lang], dtype=torch.float64) if means else torch.zeros_like(p)
        state[lang] = Accumulator(
            torch.tensor(N_TOK), (p * N_TOK).round().to(torch.int64), mu * N_TOK, (mu * mu + 1) * N_TOK
        )
    p0 = torch.as_tensor(next(iter(probs.values())))
    layers = layers if layers is not None else list(range(p0.shape[0]))
    shape = shape or (len(layers), p0.shape[1])
    sids = {l: [f"{l}{i}" for i in range(len(t))] for l, t in sentences.items()} if sentences else None
    return NeuronStats(site=site, threshold=0.0, layers=layers, shape=shape,
                       model_info={"model_id": "synthetic", "weights_sha256": "f" * 64}, state=state,
                       corpus_hashes=["c0"], sentences=sentences, sentence_ids=sids)


def idx(mask):
    return mask.nonzero().tolist()


CLAS_P = {
    "en": [[0.9, 0.9, 0.9, 0.1, 0.0, 0.6]],
    "de": [[0.8, 0.7, 0.2, 0.1, 0.0, 0.4]],
    "tr": [[0.6, 0.2, 0.1, 0.7, 0.0, 0.5]],  # 0.5 does not pass "> 0.5"
}
