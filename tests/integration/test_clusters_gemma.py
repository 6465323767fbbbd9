"""Language clusters in the embedded Gemma-3-270M residual stream (small slice of the embedded
corpus: 24 sentences x 4 languages), with and without steering. Run with ``-s`` to see the
per-layer silhouette table."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clas_lens.clusters import cluster_metrics, compare_reps, project, residual_reps

pytestmark = pytest.mark.integration

LANGS = ["en", "de", "ru", "zh"]
N_SENTENCES = 24


@pytest.fixture(scope="module")
def corpus():
    from clas_lens.data.corpus import load_corpus

    c = load_corpus("default", langs=LANGS, check_langid=False)
    return c.subset(ids=c.ids[:N_SENTENCES])


@pytest.fixture(scope="module")
def base(gemma, corpus):
    return residual_reps(gemma, corpus, pooling="mean", batch_size=N_SENTENCES)


def test_per_layer_silhouette(gemma, base):
    n_layers = gemma.cfg.n_layers
    assert base.vectors.shape == (n_layers, N_SENTENCES * len(LANGS), gemma.cfg.d_model)
    assert torch.isfinite(base.vectors).all()
    df = cluster_metrics(base)
    table = df[df.lang == "all"].pivot(index="layer", columns="metric", values="value")
    align = df[df.metric.isin(["parallel_cosine", "retrieval_acc"])].pivot_table(
        index="layer", columns="metric", values="value"
    )
    print("\n" + table.join(align).round(3).to_string())
    sil = table["silhouette_cosine"]
    assert list(sil.index) == list(range(n_layers))
    assert ((sil >= -1) & (sil <= 1)).all()
    # languages form clusters in the residual stream (by script and language). On the raw
    # (uncentred) vectors they are clearly positive at the first and the last layers of
    # Gemma-3-270M (about 0.5 on this slice); centring (the default) removes the offset all
    # languages share, and the clusters stay positive.
    raw = cluster_metrics(base, center=False)
    raw_sil = raw[(raw.lang == "all") & (raw.metric == "silhouette_cosine")].set_index("layer")["value"]
    print("raw silhouette (first, last):", round(raw_sil.iloc[0], 3), round(raw_sil.iloc[-1], 3))
    assert raw_sil.iloc[0] > 0.2 and raw_sil.iloc[-1] > 0.2
    assert sil.iloc[0] > 0 and sil.iloc[-1] > 0
    # and parallel sentences are retrievable across languages in the middle layers (chance 1/24)
    assert align["retrieval_acc"].max() > 0.8
    per_lang = df[(df.metric == "silhouette_cosine") & (df.lang != "all")]
    assert set(per_lang.lang) == set(LANGS)


def test_steering_moves_clusters_and_zero_strength_does_not(gemma, corpus, base):
    from clas_lens.steering import Deactivate
    from clas_lens.sites import neuron_sites

    sites = neuron_sites(gemma)
    layers = list(range(6))
    early = base.select(layers=layers)
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(sites.shape, generator=gen) < 0.05
    mask[6:] = False
    off = residual_reps(gemma, corpus, layers=layers, intervention=Deactivate(mask, alpha=0.0), batch_size=N_SENTENCES)
    assert torch.equal(off.vectors, early.vectors)
    on = residual_reps(gemma, corpus, layers=layers, intervention=Deactivate(mask), batch_size=N_SENTENCES)
    d = compare_reps(early, on.with_condition("deactivated"), metrics=("silhouette_cosine", "parallel_cosine"))
    assert d.delta.abs().max() > 1e-3
    p = project([early, on.with_condition("deactivated")], method="pca", layer=5, texts=corpus)
    assert len(p) == 2 * len(early) and p.text.notna().all()
    assert np.isfinite(p[["x", "y"]].to_numpy()).all()
