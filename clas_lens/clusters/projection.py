"""2-D projections (PCA or UMAP) of one or several :class:`~clas_lens.clusters.reps.Reps` on
shared axes, as a table ready to plot coloured by language and condition (:func:`project`).

See docs/methods.md, "Clusters and the divergence test". Nothing here plots.

>>> import torch
>>> r = Reps(vectors=torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(0)),
...          langs=["en", "en", "de", "de"], ids=["a", "b"] * 2, layers=[2], pooling="mean")
>>> project(r, method="pca").columns.tolist()
['x', 'y', 'lang', 'condition', 'id', 'text', 'layer']
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from clas_lens.clusters.reps import Reps
from clas_lens.errors import DataValidationError, MismatchError

__all__ = ["project", "PROJECTIONS"]

#: 2-D projection methods of :func:`project`.
PROJECTIONS: tuple[str, ...] = ("pca", "umap")


def _text_lookup(texts) -> Any:
    if texts is None:
        return lambda lang, id_: None
    if hasattr(texts, "texts") and hasattr(texts, "ids"):
        ids = [str(i) for i in texts.ids]
        cache: dict[str, dict[str, str]] = {}

        def from_corpus(lang, id_):
            if lang not in cache:
                cache[lang] = dict(zip(ids, texts.texts(lang))) if lang in list(texts.langs) else {}
            return cache[lang].get(id_)

        return from_corpus
    if isinstance(texts, Mapping):
        first = next(iter(texts.values()), None)
        if isinstance(first, Mapping):
            return lambda lang, id_: texts.get(lang, {}).get(id_)
        if isinstance(first, (list, tuple)):  # {lang: [texts]} as given to residual_reps
            return lambda lang, id_: (
                texts[lang][int(id_)] if lang in texts and id_.isdigit() and int(id_) < len(texts[lang]) else None
            )
        return lambda lang, id_: texts.get((lang, id_))
    raise DataValidationError(
        "texts must be None, a corpus (.ids, .texts(lang)), {lang: {id: text}}, {lang: [texts]} "
        f"or {{(lang, id): text}}; got {type(texts).__name__}."
    )


def project(
    reps: Reps | Sequence[Reps],
    method: Literal["umap", "pca"] = "umap",
    layer: int | None = None,
    *,
    seed: int = 0,
    texts=None,
    center: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """2-D projection of one layer's vectors, coloured later by language and condition.

    Several :class:`Reps` (e.g. before and after steering, distinct ``condition`` labels) are
    stacked and ONE projection is fitted on all of them, so they share axes.

    Args:
        reps: a Reps or a list of them (same d_model; the layer must be in each).
        method: ``"pca"`` (sklearn, fast, deterministic) or ``"umap"`` (umap-learn, imported
            here; the first fit in a process takes ~25 s for numba compilation).
            UMAP defaults: ``metric="cosine"``, ``n_neighbors=15`` (capped at n - 1),
            ``min_dist=0.1``, ``random_state=seed``; override through ``kwargs``.
        layer: model layer (default: the deepest layer of the first Reps).
        texts: optional source of the sentence text per (lang, id): a corpus, ``{lang: {id:
            text}}``, ``{lang: [texts]}`` or ``{(lang, id): text}``.
        center: subtract each Reps' own mean vector at the layer before fitting, as
            :func:`~clas_lens.clusters.compare.compare_reps` does (default): the residual stream
            has a large common offset that dominates cosine distances, and steering moves it;
            centred, the picture shows where the languages lie relative to each other.
            ``False`` projects the raw vectors.

    Returns:
        DataFrame ``x, y, lang, condition, id, text, layer``; ``df.attrs`` has the method and,
        for PCA, the explained variance ratios.

    >>> import torch
    >>> r = Reps(vectors=torch.randn(1, 6, 5, generator=torch.Generator().manual_seed(0)),
    ...          langs=["en"] * 3 + ["de"] * 3, ids=["a", "b", "c"] * 2, layers=[0], pooling="mean")
    >>> p = project([r, r.with_condition("steered")], method="pca")
    >>> p.shape, sorted(p.condition.unique())
    ((12, 7), ['base', 'steered'])
    """
    reps_list = [reps] if isinstance(reps, Reps) else list(reps)
    if not reps_list:
        raise DataValidationError("project() got no Reps.")
    conds = [r.condition for r in reps_list]
    if len(set(conds)) != len(conds):
        raise DataValidationError(
            f"project() got Reps with repeated condition labels {conds}: give each a distinct "
            "label with reps.with_condition('...') so the points can be told apart."
        )
    dims = {r.d_model for r in reps_list}
    if len(dims) != 1:
        raise MismatchError(f"project() got Reps of different widths (d_model {sorted(dims)}).")
    if layer is None:
        layer = reps_list[0].layers[-1]
    layer = reps_list[0].layers[reps_list[0].layer_index(layer)]
    mats = [np.asarray(r.layer(layer)[0], dtype=np.float64) for r in reps_list]
    if center:
        mats = [m - m.mean(axis=0, keepdims=True) for m in mats]
    X = np.concatenate(mats)
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed, **kwargs)
        Y = pca.fit_transform(X)
        extra = {"explained_variance_ratio": pca.explained_variance_ratio_.tolist()}
    elif method == "umap":
        try:
            import umap  # lazy: pulls numba, compiles on first use
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "project(method='umap') needs umap-learn: pip install 'clas_lens[figures]' "
                "(or use method='pca')."
            ) from e
        params = {"n_components": 2, "metric": "cosine", "n_neighbors": 15, "min_dist": 0.1, "random_state": seed}
        params.update(kwargs)
        if params.get("random_state") is not None:
            params.setdefault("n_jobs", 1)  # seeded UMAP runs one job anyway; umap-learn warns otherwise
        params["n_neighbors"] = max(2, min(int(params["n_neighbors"]), len(X) - 1))
        Y = umap.UMAP(**params).fit_transform(X)
        extra = {"umap_params": {k: v for k, v in params.items() if k != "random_state"}}
    else:
        raise ValueError(f"method must be 'umap' or 'pca', got {method!r}.")
    lookup = _text_lookup(texts)
    langs = [l for r in reps_list for l in r.langs]
    ids = [i for r in reps_list for i in r.ids]
    df = pd.DataFrame(
        {
            "x": Y[:, 0].astype(np.float64),
            "y": Y[:, 1].astype(np.float64),
            "lang": langs,
            "condition": [r.condition for r in reps_list for _ in range(len(r))],
            "id": ids,
            "text": [lookup(l, i) for l, i in zip(langs, ids)],
            "layer": int(layer),
        }
    )
    df.attrs.update(method=method, seed=seed, center=center, **extra)
    return df
