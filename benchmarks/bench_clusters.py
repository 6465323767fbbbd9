"""Cost of the cluster analysis at the embedded model's size, without the model.

Synthetic pooled residual vectors shaped like Gemma-3-270M's: 12 languages x 200 sentences x
18 layers x d_model 640 (language offsets + shared noise + a few large "outlier" dimensions, as
real residual streams have). Prints ``name: value`` lines measured in one run with
``torch.set_num_threads(1)``:

* cluster metrics over all layers (silhouette on the default 2,000-point stratified subsample,
  Davies-Bouldin, Calinski-Harabasz, parallel cosine, retrieval), and compare_reps;
* divergence_test with the default 2,000 bootstrap resamples and 2,000 permutations;
* PCA and UMAP of one layer (UMAP: first fit in the process, which includes numba
  compilation, and a second fit), and of two conditions jointly.

``--model default`` also times residual_reps on the real model for a small slice.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def synthetic_reps(n_langs: int, n_sent: int, n_layers: int, d_model: int, seed: int, shift: float = 0.0):
    from clas_lens.clusters import Reps

    rng = np.random.default_rng(seed)
    langs = [f"l{i:02d}" for i in range(n_langs)]
    langs[0] = "en"
    content = rng.normal(0, 1, (n_sent, d_model))  # what parallel sentences share
    vec = np.empty((n_layers, n_langs * n_sent, d_model), dtype=np.float32)
    for layer in range(n_layers):
        offsets = rng.normal(0, 0.5 + shift, (n_langs, d_model))
        outliers = np.zeros(d_model)
        outliers[:4] = 50.0
        for i in range(n_langs):
            rows = slice(i * n_sent, (i + 1) * n_sent)
            vec[layer, rows] = content + offsets[i] + outliers + rng.normal(0, 1, (n_sent, d_model))
    return Reps(
        vectors=torch.from_numpy(vec),
        langs=[l for l in langs for _ in range(n_sent)],
        ids=[f"s{j:04d}" for j in range(n_sent)] * n_langs,
        layers=list(range(n_layers)),
        pooling="mean",
    )


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", type=int, default=12)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--layers", type=int, default=18)
    ap.add_argument("--d-model", type=int, default=640)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device of --model (the synthetic part runs on the CPU)")
    ap.add_argument("--dtype", default="float32", help="parameter dtype of --model: float32, bfloat16 or float16")
    ap.add_argument("--no-umap", action="store_true", help="skip the UMAP timings")
    ap.add_argument("--model", default=None, help="also time residual_reps on this model (e.g. 'default')")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import pandas as pd

    from clas_lens.clusters import cluster_metrics, compare_reps, divergence_test, project

    before = synthetic_reps(args.langs, args.sentences, args.layers, args.d_model, seed=0)
    after = synthetic_reps(args.langs, args.sentences, args.layers, args.d_model, seed=1, shift=0.2)
    after = after.with_condition("clas")
    n_points = args.langs * args.sentences
    print(f"shape: {args.layers}x{n_points}x{args.d_model}")

    df, dt_cm = timed(lambda: cluster_metrics(before))
    print(f"cluster_metrics_all_layers_s: {dt_cm:.2f}")
    print(f"cluster_metrics_per_layer_s: {dt_cm / args.layers:.3f}")
    print(f"cluster_metrics_rows: {len(df)}")
    _, dt = timed(lambda: cluster_metrics(before, metrics=("silhouette_cosine", "silhouette_euclidean")))
    print(f"silhouette_both_all_layers_s: {dt:.2f}")
    _, dt = timed(lambda: cluster_metrics(before, metrics=("silhouette_cosine",), max_samples=None, layers=[0]))
    print(f"silhouette_cosine_one_layer_full_{n_points}_s: {dt:.2f}")
    deltas, dt = timed(lambda: compare_reps(before, after))
    print(f"compare_reps_all_layers_s: {dt:.2f}")

    rng = np.random.default_rng(0)
    target = [l for l in before.lang_set if l != "en"]
    gains = pd.DataFrame({"lang": target, "gain": rng.normal(size=len(target))})
    _, dt = timed(lambda: divergence_test(gains, deltas))
    print(f"divergence_test_2000boot_2000perm_s: {dt:.2f}")

    _, dt_pca = timed(lambda: project(before, method="pca", layer=args.layers - 1))
    print(f"pca_one_layer_s: {dt_pca:.2f}")
    per_layer = dt_cm / args.layers
    print(f"cluster_metrics_one_layer_over_pca_one_layer: {per_layer / dt_pca:.2f}")
    if not args.no_umap:
        _, dt = timed(lambda: project(before, method="umap", layer=args.layers - 1))
        print(f"umap_first_fit_one_layer_s: {dt:.1f}")
        _, dt = timed(lambda: project(before, method="umap", layer=args.layers - 2))
        print(f"umap_second_fit_one_layer_s: {dt:.1f}")
        print(f"umap_second_fit_over_pca: {dt / dt_pca:.1f}")
        _, dt = timed(lambda: project([before, after], method="umap", layer=args.layers - 1))
        print(f"umap_joint_two_conditions_s: {dt:.1f}")

    if args.model:
        import clas_lens
        from clas_lens.clusters import residual_reps

        model = clas_lens.load_model(args.model, device=args.device, dtype=getattr(torch, args.dtype))
        corpus = clas_lens.load_corpus("default", check_langid=False)
        corpus = corpus.subset(ids=corpus.ids[:32], langs=corpus.langs[:4])
        reps, dt = timed(lambda: residual_reps(model, corpus))
        n = len(reps)
        print(f"residual_reps_all_layers_sentences_per_s: {n / dt:.1f}")
        _, dt_half = timed(lambda: residual_reps(model, corpus, layers=list(range(model.cfg.n_layers // 2))))
        print(f"residual_reps_first_half_layers_sentences_per_s: {n / dt_half:.1f}")


if __name__ == "__main__":
    main()
