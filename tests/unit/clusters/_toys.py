"""Shared fixtures of the clusters tests: a small parallel corpus and synthetic Reps."""
from __future__ import annotations

import numpy as np
import torch

from clas_lens.clusters import Reps
from _steering_toys import DuckCorpus

TEXTS = {
    "en": ["The cat sat on the mat.", "One two three", "Monday", "The dog sleeps in the garden today.", "Hello"],
    "de": ["Der Hund schläft im Garten.", "Die Katze", "Eins zwei drei vier fünf", "Hallo", "Montag ist heute"],
    "ru": ["Привет, как дела?", "Мир", "Кошка сидит на коврике.", "Один два три", "Понедельник"],
}

CORPUS = DuckCorpus(TEXTS)


def make_reps(X_by_lang: dict[str, np.ndarray], layer: int = 0, condition: str = "base", ids=None) -> Reps:
    """Reps of one layer from {lang: [n, d]} arrays (ids 0..n-1 unless given)."""
    langs, rows, id_list = [], [], []
    for lang, X in X_by_lang.items():
        n = len(X)
        langs += [lang] * n
        id_list += list(ids) if ids is not None else [str(i) for i in range(n)]
        rows.append(np.asarray(X, dtype=np.float32))
    vec = torch.tensor(np.concatenate(rows))[None]
    return Reps(vectors=vec, langs=langs, ids=id_list, layers=[layer], pooling="mean", condition=condition)


def blobs(k=4, n=30, d=16, spread=1.0, sep=4.0, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, sep, (k, d))
    return {f"l{c}": centers[c] + rng.normal(0, spread, (n, d)) for c in range(k)}


def metric_value(df, metric, lang="all", layer=None):
    sel = (df.metric == metric) & (df.lang == lang)
    if layer is not None:
        sel &= df.layer == layer
    vals = df[sel].value.to_numpy()
    assert len(vals) == 1, (metric, lang, layer, len(vals))
    return float(vals[0])
