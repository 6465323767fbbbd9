"""Cluster-quality scores on labelled points, in plain numpy (checked against scikit-learn in
the tests): silhouette, Davies-Bouldin, Calinski-Harabasz, the pairwise distances they use, and
the seeded stratified subsample that keeps silhouette affordable on large corpora.

See docs/methods.md, "Clusters and the divergence test". Pure functions (arrays in, numbers out).

>>> import numpy as np
>>> X = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
>>> round(float(silhouette_samples(X, [0, 0, 1, 1], "euclidean").mean()), 3)
0.9
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from jaxtyping import Float

from clas_lens.errors import DataValidationError

__all__ = [
    "label_codes",
    "pairwise_distances",
    "silhouette_samples",
    "silhouette_from_distances",
    "silhouette_undefined",
    "davies_bouldin",
    "calinski_harabasz",
    "stratified_subsample",
]


def label_codes(labels: Sequence) -> tuple[np.ndarray, list]:
    """Integer codes of ``labels`` (in order of first appearance) and the distinct labels.

    >>> codes, uniq = label_codes(["de", "en", "de"])
    >>> codes.tolist(), uniq
    ([0, 1, 0], ['de', 'en'])
    """
    uniq = list(dict.fromkeys(labels))
    index = {u: i for i, u in enumerate(uniq)}
    return np.fromiter((index[l] for l in labels), dtype=np.int64, count=len(labels)), uniq


def pairwise_distances(X: np.ndarray, metric: str, gram: np.ndarray | None = None) -> np.ndarray:
    """Pairwise distances (``"euclidean"`` or ``"cosine"``) from one Gram matrix (``gram``,
    computed when not given), float64, zero diagonal. A zero vector is at cosine distance 1
    from everything.

    >>> pairwise_distances(np.array([[3.0, 4.0], [0.0, 0.0]]), "euclidean").tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    X = np.asarray(X, dtype=np.float64)
    G = X @ X.T if gram is None else gram
    sq = np.diag(G).copy()
    if metric == "euclidean":
        D = sq[:, None] + sq[None, :] - 2.0 * G
        np.maximum(D, 0.0, out=D)
        np.sqrt(D, out=D)
    elif metric == "cosine":
        norms = np.sqrt(sq)
        norms[norms == 0] = 1.0  # a zero vector is at cosine distance 1 from everything
        D = 1.0 - G / norms[:, None] / norms[None, :]
        np.clip(D, 0.0, 2.0, out=D)
    else:
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
    np.fill_diagonal(D, 0.0)
    return D


def silhouette_samples(
    X: Float[np.ndarray, "sentence d_model"], labels: Sequence, metric: str = "cosine"
) -> Float[np.ndarray, " sentence"]:
    """Silhouette value of every sample (as ``sklearn.metrics.silhouette_samples``).

    ``s = (b - a) / max(a, b)`` with ``a`` the mean distance to the other members of its own
    cluster and ``b`` the smallest mean distance to another cluster; 0 for singleton clusters.

    >>> import numpy as np
    >>> X = np.array([[0.0, 1], [0, 1.1], [1, 0], [1.1, 0]])
    >>> silhouette_samples(X, ["a", "a", "b", "b"], metric="euclidean").round(2)
    array([0.93, 0.93, 0.93, 0.93])
    """
    codes, uniq = label_codes(list(labels))
    if not 2 <= len(uniq) <= len(codes) - 1:
        raise DataValidationError(
            f"Silhouette needs 2 <= number of labels <= n_samples - 1; got {len(uniq)} labels "
            f"for {len(codes)} samples."
        )
    D = pairwise_distances(X, metric)
    return silhouette_from_distances(D, codes, len(uniq))


def silhouette_undefined(X: np.ndarray, D: np.ndarray) -> str | None:
    """Why silhouette means nothing for vectors ``X`` with distances ``D`` (None when it does):
    non-finite vectors, or all pairwise distances equal (constant vectors -- no point is nearer
    its own cluster than another). :func:`silhouette_samples` still returns sklearn's 0 there;
    an aggregate (:func:`~clas_lens.clusters.compare.cluster_metrics`) reports NaN instead.

    >>> silhouette_undefined(np.ones((3, 2)), np.zeros((3, 3)))
    'all pairwise distances are equal (constant vectors)'
    >>> silhouette_undefined(np.eye(3), np.array([[0.0, 1, 2], [1, 0, 3], [2, 3, 0]])) is None
    True
    """
    if not np.isfinite(X).all() or not np.isfinite(D).all():
        return "the vectors are not finite (NaN or infinite)"
    off = D[~np.eye(len(D), dtype=bool)]
    if off.size and np.ptp(off) <= 1e-12 * max(1.0, float(np.abs(off).max())):
        return "all pairwise distances are equal (constant vectors)"
    return None


def silhouette_from_distances(D: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Silhouette values from a distance matrix ``D`` and integer cluster ``codes`` in ``0..k-1``.

    >>> D = np.array([[0.0, 1, 4], [1, 0, 4], [4, 4, 0]])
    >>> silhouette_from_distances(D, np.array([0, 0, 1]), 2).tolist()
    [0.75, 0.75, 0.0]
    """
    onehot = np.zeros((len(codes), k))
    onehot[np.arange(len(codes)), codes] = 1.0
    sums = D @ onehot  # [sample, cluster]: summed distance to each cluster
    counts = onehot.sum(0)
    own = counts[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[np.arange(len(codes)), codes] / (own - 1)
        means = sums / counts[None, :]
        means[np.arange(len(codes)), codes] = np.inf
        b = means.min(1)
        s = (b - a) / np.maximum(a, b)
    s = np.nan_to_num(s)
    s[own <= 1] = 0.0
    return s


def davies_bouldin(X: Float[np.ndarray, "sentence d_model"], labels: Sequence) -> float:
    """Davies-Bouldin index (lower = better separated), as ``sklearn.metrics.davies_bouldin_score``.

    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    >>> round(davies_bouldin(X, [0, 0, 1, 1]), 3)
    0.1
    """
    X = np.asarray(X, dtype=np.float64)
    codes, uniq = label_codes(list(labels))
    k = len(uniq)
    if not 2 <= k <= len(codes) - 1:
        raise DataValidationError(f"Davies-Bouldin needs 2 <= labels <= n_samples - 1; got {k} for {len(codes)}.")
    centroids = np.stack([X[codes == c].mean(0) for c in range(k)])
    scatter = np.array([np.linalg.norm(X[codes == c] - centroids[c], axis=1).mean() for c in range(k)])
    cd = np.sqrt(np.maximum(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(-1), 0.0))
    if np.allclose(scatter, 0) or np.allclose(cd, 0):
        return 0.0
    cd[cd == 0] = np.inf
    ratio = (scatter[:, None] + scatter[None, :]) / cd
    np.fill_diagonal(ratio, -np.inf)
    return float(ratio.max(1).mean())


def calinski_harabasz(X: Float[np.ndarray, "sentence d_model"], labels: Sequence) -> float:
    """Calinski-Harabasz index (higher = better separated), as sklearn's score.

    >>> import numpy as np
    >>> X = np.array([[0.0, 0], [0, 1], [10, 0], [10, 1]])
    >>> round(calinski_harabasz(X, [0, 0, 1, 1]), 1)
    200.0
    """
    X = np.asarray(X, dtype=np.float64)
    codes, uniq = label_codes(list(labels))
    k, n = len(uniq), len(codes)
    if not 2 <= k <= n - 1:
        raise DataValidationError(f"Calinski-Harabasz needs 2 <= labels <= n_samples - 1; got {k} for {n}.")
    mean = X.mean(0)
    extra = intra = 0.0
    for c in range(k):
        Xc = X[codes == c]
        mc = Xc.mean(0)
        extra += len(Xc) * float(((mc - mean) ** 2).sum())
        intra += float(((Xc - mc) ** 2).sum())
    return float(1.0 if intra == 0.0 else extra * (n - k) / (intra * (k - 1.0)))


def stratified_subsample(codes: np.ndarray, k: int, max_samples: int | None, seed: int) -> np.ndarray:
    """Row indices: all rows, or ``max_samples`` rows keeping each label's share
    (largest-remainder rounding, at least 2 per label), drawn without replacement with a
    seeded generator. Depends only on the row labels and the seed, so two Reps with the same
    rows (before / after steering) get the same subsample.

    >>> codes = np.array([0] * 6 + [1] * 4)
    >>> np.bincount(codes[stratified_subsample(codes, 2, 5, seed=0)]).tolist()
    [3, 2]
    """
    n = len(codes)
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    if max_samples < 2 * k:
        raise ValueError(f"max_samples={max_samples} is too small for {k} languages (need >= {2 * k}).")
    counts = np.bincount(codes, minlength=k)
    quota = counts * max_samples / n
    take = np.floor(quota).astype(int)
    rest = max_samples - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:rest]] += 1
    take = np.minimum(np.maximum(take, 2), counts)
    rng = np.random.default_rng(seed)
    out = [np.sort(rng.choice(np.flatnonzero(codes == c), size=take[c], replace=False)) for c in range(k)]
    return np.sort(np.concatenate(out))
