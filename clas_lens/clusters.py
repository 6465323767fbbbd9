"""Language clusters in the residual stream, before and after steering ("functional divergence").

CLAS's central finding (METHODS.md) is that steering gains go with MORE separated language
clusters in the residual stream, not with a closer alignment of every language to English.
This module measures both and tests which one tracks the gains:

1. :func:`residual_reps` -- per sentence, language and layer, the residual stream
   ``blocks.{l}.hook_resid_post`` pooled over the sentence (``"mean"`` over real tokens, padding
   and BOS excluded, or the ``"last"`` real token), optionally under steering. Returns
   :class:`Reps`.
2. :func:`cluster_metrics` -- per layer: silhouette with language labels (cosine and euclidean),
   Davies-Bouldin, Calinski-Harabasz (``lang == "all"``); per language: that language's mean
   silhouette, the mean cosine of parallel pairs (anchor vs language) and parallel-sentence
   retrieval (accuracy and MRR, both directions).
3. :func:`compare_reps` -- the same metrics before and after steering, and their deltas.
4. :func:`divergence_test` -- correlation of per-language (or per-setting) task gains with the
   separation delta AND with the alignment delta, side by side: Spearman and Pearson, bootstrap
   95 % CIs, permutation p-values, n. :func:`correlation_test` is its pure core.
5. :func:`project` -- 2-D PCA or UMAP of one or several :class:`Reps` on shared axes.

Axis names: ``layer`` (position in ``Reps.layers``), ``sentence`` (rows of all languages
stacked, language-major, corpus id order inside a language), ``d_model``.

Everything but :func:`residual_reps` is pure (tensors / DataFrames in and out); nothing here
prints or plots.

>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> corpus = {"en": ["the cat sat", "one two three", "the dog"],
...           "de": ["die Katze sass", "eins zwei drei", "der Hund"]}
>>> base = residual_reps(model, corpus)
>>> base.vectors.shape          # layer, sentence (2 langs x 3), d_model
torch.Size([2, 6, 32])
>>> df = cluster_metrics(base, metrics=("silhouette_cosine", "parallel_cosine"))
>>> sorted(df.metric.unique())
['parallel_cosine', 'silhouette_cosine']
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.errors import DataValidationError, MismatchError

__all__ = [
    "Reps",
    "residual_reps",
    "cluster_metrics",
    "compare_reps",
    "correlation_test",
    "divergence_test",
    "project",
    "silhouette_samples",
    "davies_bouldin",
    "calinski_harabasz",
    "METRICS",
]

#: Metric groups accepted by :func:`cluster_metrics` (``"retrieval"`` expands to six metrics).
METRICS: tuple[str, ...] = (
    "silhouette_cosine",
    "silhouette_euclidean",
    "davies_bouldin",
    "calinski_harabasz",
    "parallel_cosine",
    "retrieval",
)
_RETRIEVAL_METRICS = (
    "retrieval_acc_a2l",
    "retrieval_acc_l2a",
    "retrieval_acc",
    "retrieval_mrr_a2l",
    "retrieval_mrr_l2a",
    "retrieval_mrr",
)
_FORMAT = "clas_lens.reps/1"
_VECTORS_FILE = "vectors.safetensors"
_META_FILE = "reps.json"


# ----------------------------------------------------------------------------------------------
# Reps
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class Reps:
    """Pooled residual-stream vectors of a parallel corpus, one row per (language, sentence).

    Attributes:
        vectors: ``[layer, sentence, d_model]`` float32; row ``i`` is sentence ``ids[i]`` in
            language ``langs[i]``; axis 0 follows ``layers``.
        langs, ids: per row.
        layers: model layer indices of axis 0 (the output of block ``l``, ``hook_resid_post``).
        pooling: ``"mean"`` or ``"last"``.
        condition: a label such as ``"base"`` or ``"clas"`` (:meth:`with_condition` renames).
        model_info: ``clas_lens.model_info(model).to_dict()`` of the model that produced them.
        meta: how they were made (hook, keep_bos, corpus hash, interventions ...).

    >>> import torch
    >>> r = Reps(vectors=torch.zeros(1, 4, 3), langs=["en", "en", "de", "de"],
    ...          ids=["a", "b", "a", "b"], layers=[5], pooling="mean")
    >>> X, langs, ids = r.layer(5)
    >>> X.shape, list(langs), r.lang_set
    ((4, 3), ['en', 'en', 'de', 'de'], ['en', 'de'])
    >>> r.with_condition("clas").condition
    'clas'
    """

    vectors: Float[Tensor, "layer sentence d_model"]
    langs: list[str]
    ids: list[str]
    layers: list[int]
    pooling: str
    condition: str = "base"
    model_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.langs = [str(l) for l in self.langs]
        self.ids = [str(i) for i in self.ids]
        self.layers = [int(l) for l in self.layers]
        if not isinstance(self.vectors, Tensor) or self.vectors.ndim != 3:
            raise DataValidationError(
                "Reps.vectors must be a 3-D tensor [layer, sentence, d_model], got "
                f"{getattr(self.vectors, 'shape', type(self.vectors).__name__)}."
            )
        n_layer, n_rows, _ = self.vectors.shape
        if n_layer != len(self.layers):
            raise DataValidationError(
                f"Reps.vectors has {n_layer} layers but layers lists {len(self.layers)}: {self.layers}."
            )
        if not (n_rows == len(self.langs) == len(self.ids)):
            raise DataValidationError(
                f"Reps.vectors has {n_rows} rows but langs has {len(self.langs)} and ids "
                f"{len(self.ids)} entries: they must be one per row."
            )
        if len(set(self.layers)) != len(self.layers):
            raise DataValidationError(f"Reps.layers has duplicates: {self.layers}.")
        pairs = list(zip(self.langs, self.ids))
        if len(set(pairs)) != len(pairs):
            dup = next(p for p, c in _counts(pairs).items() if c > 1)
            raise DataValidationError(
                f"Reps has the sentence id {dup[1]!r} twice in language {dup[0]!r}: ids must be "
                "unique within a language."
            )
        if self.pooling not in ("mean", "last"):
            raise DataValidationError(f"Reps.pooling must be 'mean' or 'last', got {self.pooling!r}.")

    # -- views ---------------------------------------------------------------------------------
    @property
    def lang_set(self) -> list[str]:
        """Languages in row order of first appearance."""
        return list(dict.fromkeys(self.langs))

    @property
    def d_model(self) -> int:
        return int(self.vectors.shape[2])

    def __len__(self) -> int:
        return len(self.ids)

    def layer_index(self, layer: int) -> int:
        """Position of model layer ``layer`` on axis 0 (negative: counts from the end of
        ``layers``); raises a clear error for a layer that was not recorded."""
        layer = int(layer)
        if layer < 0 and -len(self.layers) <= layer:
            return len(self.layers) + layer
        if layer not in self.layers:
            raise DataValidationError(
                f"Layer {layer} is not in these reps (recorded layers: {self.layers}). Pick one of "
                "them, or recompute with residual_reps(..., layers=[...]) including it."
            )
        return self.layers.index(layer)

    def layer(self, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X [sentence, d_model] float32 numpy, langs, ids)`` of one model layer.

        ``layer`` is a model layer index from ``layers``; a negative value counts from the end
        of ``layers`` (``-1``: the deepest recorded layer).
        """
        i = self.layer_index(layer)
        X = self.vectors[i].detach().to("cpu", torch.float32).numpy()
        return X, np.asarray(self.langs, dtype=object), np.asarray(self.ids, dtype=object)

    def with_condition(self, name: str) -> "Reps":
        """A copy labelled ``name`` (the vectors are shared, not copied)."""
        return dataclasses.replace(self, condition=str(name), meta=dict(self.meta))

    def select(self, *, langs: Sequence[str] | None = None, layers: Sequence[int] | None = None) -> "Reps":
        """A subset of languages (in the given order) and/or layers.

        >>> import torch
        >>> r = Reps(vectors=torch.randn(2, 4, 3), langs=["en", "en", "de", "de"],
        ...          ids=["a", "b", "a", "b"], layers=[0, 1], pooling="mean")
        >>> s = r.select(langs=["de"], layers=[1]); s.vectors.shape, s.langs
        (torch.Size([1, 2, 3]), ['de', 'de'])
        """
        rows = list(range(len(self)))
        if langs is not None:
            unknown = [l for l in langs if l not in self.lang_set]
            if unknown:
                raise DataValidationError(f"Languages {unknown} are not in these reps ({self.lang_set}).")
            rows = [i for l in langs for i in range(len(self)) if self.langs[i] == l]
        lay_idx = list(range(len(self.layers))) if layers is None else [self.layer_index(l) for l in layers]
        vec = self.vectors[lay_idx][:, rows]
        return dataclasses.replace(
            self,
            vectors=vec,
            langs=[self.langs[i] for i in rows],
            ids=[self.ids[i] for i in rows],
            layers=[self.layers[i] for i in lay_idx],
            meta=dict(self.meta),
        )

    # -- persistence ---------------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "langs": self.langs,
            "ids": self.ids,
            "layers": self.layers,
            "pooling": self.pooling,
            "condition": self.condition,
            "model_info": self.model_info,
            "meta": self.meta,
            "shape": list(self.vectors.shape),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write a folder ``path`` with ``vectors.safetensors`` and ``reps.json``, atomically.

        An existing folder is replaced only if it is itself a saved :class:`Reps` (or empty).

        >>> import tempfile, torch
        >>> r = Reps(vectors=torch.randn(1, 2, 3), langs=["en", "de"], ids=["a", "a"],
        ...          layers=[0], pooling="mean")
        >>> p = r.save(tempfile.mkdtemp() + "/base")
        >>> torch.equal(Reps.load(p).vectors, r.vectors)
        True
        """
        from safetensors.torch import save as st_save

        from clas_lens.io import atomic_directory

        path = Path(path)
        if path.exists():
            if not path.is_dir():
                raise FileExistsError(f"{path} exists and is a file; Reps.save writes a folder.")
            if any(path.iterdir()) and not (path / _META_FILE).exists():
                raise FileExistsError(
                    f"{path} is a non-empty folder that is not a saved Reps; refusing to replace "
                    "it. Save to a new sub-folder, e.g. path / 'reps_base'."
                )
        vectors = self.vectors.detach().to("cpu", torch.float32).contiguous()
        with atomic_directory(path) as tmp:
            (tmp / _VECTORS_FILE).write_bytes(st_save({"vectors": vectors}))
            (tmp / _META_FILE).write_text(
                json.dumps(self.to_meta(), indent=1, ensure_ascii=False, default=str) + "\n",
                encoding="utf-8",
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Reps":
        """Read a folder written by :meth:`save`."""
        from safetensors.torch import load_file

        from clas_lens.io import read_json

        path = Path(path)
        if not (path / _META_FILE).exists() or not (path / _VECTORS_FILE).exists():
            raise DataValidationError(
                f"{path} is not a saved Reps folder (expected {_META_FILE} and {_VECTORS_FILE})."
            )
        meta = read_json(path / _META_FILE)
        if meta.get("format") != _FORMAT:
            raise DataValidationError(f"{path}: unknown Reps format {meta.get('format')!r}, expected {_FORMAT!r}.")
        vectors = load_file(str(path / _VECTORS_FILE))["vectors"]
        return cls(
            vectors=vectors,
            langs=meta["langs"],
            ids=meta["ids"],
            layers=meta["layers"],
            pooling=meta["pooling"],
            condition=meta["condition"],
            model_info=meta.get("model_info") or {},
            meta=meta.get("meta") or {},
        )


def _counts(items: Iterable) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# ----------------------------------------------------------------------------------------------
# residual_reps
# ----------------------------------------------------------------------------------------------
def _as_corpus(corpus):
    from clas_lens.data.corpus import as_corpus

    return as_corpus(corpus, what="residual_reps")


def _as_list(intervention) -> list:
    """None / one intervention / dicts / (nested) lists -> a flat list of interventions."""
    if intervention is None or (isinstance(intervention, (list, tuple)) and not intervention):
        return []
    from clas_lens.steering import as_interventions

    return as_interventions(intervention)


def _needs_lang(iv) -> bool:
    if hasattr(iv, "needs_lang"):
        return bool(iv.needs_lang)
    return hasattr(iv, "for_lang") and getattr(iv, "target_lang", "") is None


def _for_lang(interventions: list, lang: str) -> list:
    """Per-language templates (``needs_lang``, e.g. ``target_lang=None``) are bound to the
    language of the sentences they run on, as ``evaluate`` does."""
    return [iv.for_lang(lang) if _needs_lang(iv) else iv for iv in interventions]


def _describe(iv) -> dict[str, Any]:
    from clas_lens.io import sha256_json

    desc: dict[str, Any] = {"type": type(iv).__name__}
    to_dict = getattr(iv, "to_dict", None)
    if callable(to_dict):
        try:
            d = to_dict()
            text = json.dumps(d, default=str)
            desc["sha256"] = sha256_json(d)
            if len(text) <= 20_000:
                desc["params"] = json.loads(text)
        except Exception as e:  # a description must never break the computation
            desc["error"] = f"to_dict failed: {e}"
    return desc


def _steer_context(model, interventions: list):
    if not interventions:
        return contextlib.nullcontext()
    from clas_lens.steering import steer

    return steer(model, *interventions)


class _StopForward(Exception):
    """Raised by the capture hook of the deepest requested layer to end the forward there."""


@torch.no_grad()
def residual_reps(
    model,
    corpus,
    *,
    layers=None,
    pooling: Literal["mean", "last"] = "mean",
    intervention=None,
    batch_size: int = 16,
    langs: Sequence[str] | None = None,
    keep_bos: bool = False,
    condition: str | None = None,
    padding_side: Literal["left", "right"] = "right",
    max_length: int | None = None,
) -> Reps:
    """Pooled residual stream (``blocks.{l}.hook_resid_post``) of every sentence, language, layer.

    Args:
        model: a ``TransformerBridge`` (``clas_lens.load_model``).
        corpus: a parallel corpus (``.langs``, ``.ids``, ``.texts(lang)`` in id order) or a dict
            ``{lang: [texts]}`` (ids become ``"0"``, ``"1"``, ...).
        layers: ``None`` (all), ints (negative from the end), ``"last:k"`` or ``"all"``.
        pooling: ``"mean"`` over real tokens (padding excluded, BOS excluded unless
            ``keep_bos``) or ``"last"``, the last real token.
        intervention: ``None``, one intervention, its ``to_dict()`` or a list of them, applied
            with ``clas_lens.steering.steer(model, *interventions)``. A per-language template
            (``iv.needs_lang``, e.g. ``ClasSteering(..., target_lang=None)``) is bound to each
            language's own sentences (``iv.for_lang(lang)``), as ``evaluate`` does; the anchor's
            sentences included.
        batch_size: sentences per forward pass (sorted by length inside a language to cut padding).
        langs: a subset of the corpus languages (default all, in corpus order).
        keep_bos: include the BOS position in mean pooling.
        condition: the label of the result; default ``"base"`` without intervention, else
            ``"steered"``.
        padding_side: padding of the batches; the result does not depend on it.
        max_length: truncate longer texts (with a warning; default the model context).

    The forward stops after the deepest requested block (``stop_at_layer``; for the last block
    the capture hook ends it), so the final norm and the unembedding never run.
    Vectors are pooled in float64 and stored as float32.

    Returns:
        :class:`Reps` with languages stacked in order, sentences in corpus id order.

    Raises:
        DataValidationError: unknown language, empty corpus, a sentence with no real token.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> r = residual_reps(model, {"en": ["a cat", "a dog"], "es": ["un gato", "un perro"]},
    ...                   layers=[-1], pooling="last")
    >>> r.layers, r.langs, r.ids, r.condition
    ([1], ['en', 'en', 'es', 'es'], ['0', '1', '0', '1'], 'base')
    """
    from tqdm.auto import tqdm

    from clas_lens.batching import batched, encode
    from clas_lens.models import model_info
    from clas_lens.sites import neuron_sites

    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last', got {pooling!r}.")
    corpus = _as_corpus(corpus)
    corpus_langs = [str(l) for l in corpus.langs]
    if langs is None:
        langs = corpus_langs
    else:
        langs = [langs] if isinstance(langs, str) else list(langs)
        unknown = [l for l in langs if l not in corpus_langs]
        if unknown:
            raise DataValidationError(
                f"Languages {unknown} are not in the corpus (it has {corpus_langs})."
            )
    ids = [str(i) for i in corpus.ids]
    if not ids or not langs:
        raise DataValidationError("residual_reps got an empty corpus (no sentences or no languages).")
    n_layers = int(model.cfg.n_layers)
    layer_list = neuron_sites(model).check_layers(layers)
    pos_of = {l: i for i, l in enumerate(layer_list)}
    stop = max(layer_list) + 1
    d_model = int(model.cfg.d_model)
    interventions = _as_list(intervention)

    n_per_lang = len(ids)
    out = torch.empty((len(layer_list), n_per_lang * len(langs), d_model), dtype=torch.float32)
    captured: dict[int, Tensor] = {}

    # Stop after the deepest requested block: ``stop_at_layer`` before the last block; for the
    # last block the hook itself ends the forward, so neither the final norm nor the
    # unembedding (262k columns for Gemma) runs.
    use_stop_at = stop < n_layers

    def grab(t, hook):
        layer = hook.layer()
        captured[layer] = t
        if not use_stop_at and layer == stop - 1:
            raise _StopForward
        return t

    hooks = [(f"blocks.{l}.hook_resid_post", grab) for l in layer_list]
    fwd_kwargs: dict[str, Any] = {"stop_at_layer": stop} if use_stop_at else {}

    n_batches = len(langs) * math.ceil(n_per_lang / batch_size)
    bar = tqdm(total=n_batches, desc="residual_reps", disable=n_batches < 4, leave=False)
    try:
        for li, lang in enumerate(langs):
            texts = list(corpus.texts(lang))
            if len(texts) != n_per_lang:
                raise DataValidationError(
                    f"corpus.texts({lang!r}) has {len(texts)} texts but corpus.ids has {n_per_lang}."
                )
            order = sorted(range(n_per_lang), key=lambda i: -len(texts[i]))
            ivs = _for_lang(interventions, lang)
            with _steer_context(model, ivs), model.hooks(fwd_hooks=hooks):
                for chunk in batched(order, batch_size):
                    enc = encode(
                        model,
                        [texts[i] for i in chunk],
                        padding_side=padding_side,
                        keep_bos=keep_bos,
                        max_length=max_length,
                    )
                    if pooling == "mean":
                        weights = enc.real_mask.to(torch.float64)
                        empty = (weights.sum(1) == 0).nonzero().flatten().tolist()
                        if empty:
                            bad = ids[chunk[empty[0]]]
                            raise DataValidationError(
                                f"Sentence {bad!r} in {lang!r} has no token besides BOS: remove "
                                "empty texts or pass keep_bos=True."
                            )
                    captured.clear()
                    try:
                        model(enc.input_ids, attention_mask=enc.attention_mask, **fwd_kwargs)
                    except _StopForward:
                        pass
                    missing = [l for l in layer_list if l not in captured]
                    if missing:
                        raise RuntimeError(
                            f"The hooks blocks.{{l}}.hook_resid_post did not fire for layers {missing}; "
                            "this bridge does not expose them as expected."
                        )
                    rows = torch.tensor([li * n_per_lang + i for i in chunk])
                    last = enc.last_index
                    for layer in layer_list:
                        h = captured[layer].detach().to(torch.float64)
                        if pooling == "mean":
                            w = weights.to(h.device)
                            pooled = (h * w[..., None]).sum(1) / w.sum(1, keepdim=True)
                        else:
                            pooled = h[torch.arange(h.shape[0], device=h.device), last.to(h.device)]
                        out[pos_of[layer], rows] = pooled.to("cpu", torch.float32)
                    bar.update(1)
    finally:
        bar.close()
        captured.clear()

    meta: dict[str, Any] = {
        "hook": "blocks.{layer}.hook_resid_post",
        "keep_bos": keep_bos,
        "max_length": max_length,
        "interventions": [_describe(iv) for iv in interventions],
        "per_lang_interventions": any(_needs_lang(iv) for iv in interventions),
    }
    hash_fn = getattr(corpus, "hash", None)
    if callable(hash_fn):
        meta["corpus_hash"] = hash_fn()
    return Reps(
        vectors=out,
        langs=[l for l in langs for _ in range(n_per_lang)],
        ids=ids * len(langs),
        layers=layer_list,
        pooling=pooling,
        condition=condition if condition is not None else ("steered" if interventions else "base"),
        model_info=model_info(model).to_dict(),
        meta=meta,
    )


# ----------------------------------------------------------------------------------------------
# cluster quality metrics (pure numpy; checked against sklearn in the tests)
# ----------------------------------------------------------------------------------------------
def _codes(labels: Sequence) -> tuple[np.ndarray, list]:
    uniq = list(dict.fromkeys(labels))
    index = {u: i for i, u in enumerate(uniq)}
    return np.fromiter((index[l] for l in labels), dtype=np.int64, count=len(labels)), uniq


def _pairwise(X: np.ndarray, metric: str, gram: np.ndarray | None = None) -> np.ndarray:
    """Pairwise distances (euclidean or cosine) from one Gram matrix, float64, zero diagonal."""
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
    codes, uniq = _codes(list(labels))
    if not 2 <= len(uniq) <= len(codes) - 1:
        raise DataValidationError(
            f"Silhouette needs 2 <= number of labels <= n_samples - 1; got {len(uniq)} labels "
            f"for {len(codes)} samples."
        )
    D = _pairwise(X, metric)
    return _silhouette_from_distances(D, codes, len(uniq))


def _silhouette_from_distances(D: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
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
    codes, uniq = _codes(list(labels))
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
    codes, uniq = _codes(list(labels))
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


def _stratified_subsample(codes: np.ndarray, k: int, max_samples: int | None, seed: int) -> np.ndarray:
    """Row indices: all rows, or ``max_samples`` rows keeping each language's share
    (largest-remainder rounding, at least 2 per language), drawn without replacement with a
    seeded generator. Depends only on the row labels and the seed, so two Reps with the same
    rows (before / after steering) get the same subsample."""
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


def _normalize(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return X / n


def _retrieval(S: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[float, float]:
    """Accuracy and MRR of finding column ``cols[i]`` as the nearest neighbour of row ``rows[i]``
    in the similarity matrix ``S``; ties count against (rank = number of candidates with a
    similarity >= the correct one's)."""
    correct = S[rows, cols]
    ranks = (S[rows] >= correct[:, None]).sum(1)
    return float((ranks == 1).mean()), float((1.0 / ranks).mean())


def _expand_metrics(metrics: Sequence[str]) -> list[str]:
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown cluster metric(s) {unknown}; choose from {list(METRICS)}.")
    return metrics


def cluster_metrics(
    reps: Reps,
    *,
    metrics: Sequence[str] = METRICS,
    anchor: str = "en",
    max_samples: int | None = 2000,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    center: bool = False,
) -> pd.DataFrame:
    """Language-cluster separation and cross-lingual alignment per layer, as a tidy table.

    Columns ``condition, layer, lang, metric, value``. Rows:

    * ``silhouette_cosine`` / ``silhouette_euclidean`` with language labels: ``lang="all"`` is
      the mean silhouette over all points (sklearn's ``silhouette_score``); ``lang=<l>`` is the
      mean silhouette value of language ``l``'s points, so per-language deltas can be compared
      with per-language gains. When there are more than ``max_samples`` points, silhouette is
      computed on a seeded stratified subsample of ``max_samples`` points (each language keeps
      its share; the same rows for every layer and for any Reps with the same rows, so before
      and after steering stay paired). ``max_samples=None`` uses all points.
    * ``davies_bouldin`` (lower = more separated) and ``calinski_harabasz`` (higher = more
      separated), euclidean, on all points, ``lang="all"``.
    * ``parallel_cosine``: mean cosine similarity of parallel pairs (same id) between the
      ``anchor`` and each other language, ``lang=<l>``.
    * ``retrieval``: cosine nearest-neighbour parallel-sentence retrieval between the anchor and
      each language: ``retrieval_acc_a2l`` / ``retrieval_mrr_a2l`` (anchor query, candidates =
      all of that language's sentences), ``..._l2a`` (the reverse) and ``retrieval_acc`` /
      ``retrieval_mrr`` (mean of both directions). Ties count as misses.

    ``layers`` restricts the layers (default all of ``reps.layers``). ``center=True`` subtracts,
    per layer, the mean vector over all rows first: residual streams are anisotropic (a few
    huge shared dimensions put every cosine near 1, e.g. parallel_cosine ~0.99 at most layers
    of Gemma-3-270M), and centring shows the cosine geometry around the common offset. Only the
    cosine-based metrics change (euclidean ones are shift-invariant); the default (``False``)
    is the raw residual stream. ``df.attrs`` records the anchor, max_samples, seed, center and
    the number of points used for silhouette.

    >>> import numpy as np, torch
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (20, 8)) + 5, rng.normal(0, 1, (20, 8)) - 5])
    >>> reps = Reps(vectors=torch.tensor(X[None], dtype=torch.float32),
    ...             langs=["en"] * 20 + ["de"] * 20, ids=[str(i) for i in range(20)] * 2,
    ...             layers=[3], pooling="mean")
    >>> df = cluster_metrics(reps, metrics=("silhouette_euclidean",))
    >>> float(df.query("lang == 'all'").value.iloc[0]) > 0.7
    True
    """
    wanted = _expand_metrics(metrics)
    lang_set = reps.lang_set
    if len(lang_set) < 2:
        raise DataValidationError(
            f"Cluster metrics need at least 2 languages; these reps have {lang_set}."
        )
    needs_anchor = any(m in wanted for m in ("parallel_cosine", "retrieval"))
    if needs_anchor and anchor not in lang_set:
        raise DataValidationError(
            f"Unknown anchor language {anchor!r}: these reps have {lang_set}. Pass anchor= one of "
            "them, or compute the reps with the anchor language included."
        )
    codes, uniq = _codes(reps.langs)
    k = len(uniq)
    sil = [m for m in wanted if m.startswith("silhouette_")]
    sub = _stratified_subsample(codes, k, max_samples, seed) if sil else np.arange(len(codes))
    sub_codes = codes[sub]
    layer_list = reps.layers if layers is None else [reps.layers[reps.layer_index(l)] for l in layers]
    ids_arr = np.asarray(reps.ids, dtype=object)
    rows: list[tuple] = []

    def add(layer, lang, metric, value):
        rows.append((reps.condition, int(layer), lang, metric, float(value)))

    for layer in layer_list:
        X = reps.vectors[reps.layer_index(layer)].detach().to("cpu", torch.float64).numpy()
        if center:
            X = X - X.mean(0, keepdims=True)
        if sil:
            Xs = X[sub]
            G = Xs @ Xs.T
            for m in sil:
                D = _pairwise(Xs, m.split("_", 1)[1], gram=G)
                s = _silhouette_from_distances(D, sub_codes, k)
                add(layer, "all", m, s.mean())
                for c, lang in enumerate(uniq):
                    add(layer, lang, m, s[sub_codes == c].mean())
        if "davies_bouldin" in wanted:
            add(layer, "all", "davies_bouldin", davies_bouldin(X, codes))
        if "calinski_harabasz" in wanted:
            add(layer, "all", "calinski_harabasz", calinski_harabasz(X, codes))
        if needs_anchor:
            a_rows = np.flatnonzero(codes == uniq.index(anchor))
            A = _normalize(X[a_rows])
            a_pos = {i: j for j, i in enumerate(ids_arr[a_rows])}
            for c, lang in enumerate(uniq):
                if lang == anchor:
                    continue
                l_rows = np.flatnonzero(codes == c)
                l_pos = {i: j for j, i in enumerate(ids_arr[l_rows])}
                shared = [i for i in ids_arr[a_rows] if i in l_pos]
                if not shared:
                    raise DataValidationError(
                        f"No sentence id is shared by the anchor {anchor!r} and {lang!r}: parallel "
                        "metrics need parallel sentences (the same ids)."
                    )
                ai = np.array([a_pos[i] for i in shared])
                lj = np.array([l_pos[i] for i in shared])
                L = _normalize(X[l_rows])
                S = A @ L.T  # [anchor sentence, lang sentence] cosine similarity
                if "parallel_cosine" in wanted:
                    add(layer, lang, "parallel_cosine", S[ai, lj].mean())
                if "retrieval" in wanted:
                    acc_f, mrr_f = _retrieval(S, ai, lj)
                    acc_b, mrr_b = _retrieval(S.T, lj, ai)
                    add(layer, lang, "retrieval_acc_a2l", acc_f)
                    add(layer, lang, "retrieval_acc_l2a", acc_b)
                    add(layer, lang, "retrieval_acc", (acc_f + acc_b) / 2)
                    add(layer, lang, "retrieval_mrr_a2l", mrr_f)
                    add(layer, lang, "retrieval_mrr_l2a", mrr_b)
                    add(layer, lang, "retrieval_mrr", (mrr_f + mrr_b) / 2)
    df = pd.DataFrame(rows, columns=["condition", "layer", "lang", "metric", "value"])
    df.attrs.update(
        anchor=anchor, max_samples=max_samples, seed=seed, center=center, n_points=len(codes),
        n_silhouette_points=int(len(sub)), pooling=reps.pooling,
    )
    return df


# ----------------------------------------------------------------------------------------------
# before / after
# ----------------------------------------------------------------------------------------------
def _align(before: Reps, after: Reps) -> Reps:
    """``after`` reordered to ``before``'s rows; raises if rows, layers, pooling or model differ."""
    if before.pooling != after.pooling:
        raise MismatchError(f"before uses pooling={before.pooling!r} but after {after.pooling!r}.")
    if before.layers != after.layers:
        raise MismatchError(
            f"before has layers {before.layers} but after {after.layers}: compute both with the "
            "same layers= (or use .select(layers=...))."
        )
    sb, sa = (before.model_info or {}).get("weights_sha256"), (after.model_info or {}).get("weights_sha256")
    if sb and sa and sb != sa:
        raise MismatchError(
            f"before and after come from different models ({before.model_info.get('model_id')} "
            f"{sb[:12]} vs {after.model_info.get('model_id')} {sa[:12]})."
        )
    key_b = list(zip(before.langs, before.ids))
    key_a = list(zip(after.langs, after.ids))
    if key_b == key_a:
        return after
    pos_a = {k: i for i, k in enumerate(key_a)}
    missing = [k for k in key_b if k not in pos_a]
    extra = [k for k in key_a if k not in set(key_b)]
    if missing or extra:
        raise MismatchError(
            f"before and after have different sentences: {len(missing)} (lang, id) only in before "
            f"(e.g. {missing[:3]}), {len(extra)} only in after (e.g. {extra[:3]}). Compute both on "
            "the same corpus and languages."
        )
    idx = [pos_a[k] for k in key_b]
    return dataclasses.replace(
        after, vectors=after.vectors[:, idx], langs=before.langs, ids=before.ids, meta=dict(after.meta)
    )


def compare_reps(before: Reps, after: Reps, **kw) -> pd.DataFrame:
    """Every cluster metric before and after (e.g. steering) and ``delta = after - before``.

    Columns ``layer, lang, metric, before, after, delta``; ``kw`` go to
    :func:`cluster_metrics` for both (same subsample, since the rows are aligned by
    (lang, id) first). Raises :class:`~clas_lens.errors.MismatchError` for different sentences,
    layers, pooling or models. ``df.attrs`` names the two conditions.

    >>> import torch
    >>> base = Reps(vectors=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0)),
    ...             langs=["en"] * 3 + ["de"] * 3, ids=["a", "b", "c"] * 2, layers=[0], pooling="mean")
    >>> d = compare_reps(base, base.with_condition("same"), metrics=("parallel_cosine",))
    >>> list(d.columns), float(d.delta.abs().max())
    (['layer', 'lang', 'metric', 'before', 'after', 'delta'], 0.0)
    """
    after = _align(before, after)
    mb = cluster_metrics(before, **kw)
    ma = cluster_metrics(after, **kw)
    keys = ["layer", "lang", "metric"]
    df = mb[keys + ["value"]].rename(columns={"value": "before"}).merge(
        ma[keys + ["value"]].rename(columns={"value": "after"}), on=keys, how="inner", validate="1:1"
    )
    df["delta"] = df["after"] - df["before"]
    df.attrs.update(mb.attrs)
    df.attrs.update(before=before.condition, after=after.condition)
    return df


# ----------------------------------------------------------------------------------------------
# hypothesis tests
# ----------------------------------------------------------------------------------------------
def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).sum(-1) / den
    r[den <= 1e-300] = np.nan
    return r


def correlation_test(
    x: Sequence[float],
    y: Sequence[float],
    method: Literal["spearman", "pearson"] = "spearman",
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Correlation of paired values with a bootstrap CI and a two-sided permutation p-value.

    * ``r``: Spearman (Pearson on average ranks) or Pearson.
    * ``ci_low``, ``ci_high``: percentile bootstrap ``1 - alpha`` interval, resampling pairs
      (ranks recomputed in each resample; resamples with a constant side are skipped).
    * ``p_value``: two-sided permutation test of no association, ``y`` shuffled against ``x``:
      ``(1 + #{|r*| >= |r|}) / (1 + n_perm)``; when ``n! <= n_perm`` all permutations are
      enumerated and ``p = #{|r*| >= |r|} / n!`` (exact).
    * ``n``: pairs used (pairs with a NaN are dropped). With ``n < 3`` or a constant side the
      numbers are NaN.

    Pure and seeded; permutations and resamples are vectorised.

    >>> r = correlation_test([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 3, 6, 5, 8, 7], "spearman")
    >>> round(r["r"], 3), r["n"], r["p_value"] < 0.01
    (0.905, 8, True)
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}.")
    if n_boot < 1 or n_perm < 1:
        raise ValueError(f"n_boot and n_perm must be >= 1, got {n_boot} and {n_perm}.")
    from scipy.stats import rankdata

    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"correlation_test needs paired values: {xa.size} x values, {ya.size} y values.")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    nan = float("nan")
    result = {"method": method, "r": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": n}
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return result
    if method == "spearman":
        xs, ys = rankdata(xa), rankdata(ya)
    else:
        xs, ys = xa, ya
    xc = xs - xs.mean()
    yc = ys - ys.mean()
    denom = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
    r = float((xc * yc).sum() / denom)
    result["r"] = r

    rng_perm, rng_boot = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    # Permutations: the norms of the centred vectors do not change, only the dot product.
    tol = 1e-12
    if math.factorial(n) <= n_perm:
        perms = np.array(list(itertools.permutations(range(n))))
        r_perm = (yc[perms] @ xc) / denom
        p = float(np.mean(np.abs(r_perm) >= abs(r) - tol))
    else:
        perms = rng_perm.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)
        r_perm = (yc[perms] @ xc) / denom
        p = float((1 + np.sum(np.abs(r_perm) >= abs(r) - tol)) / (1 + n_perm))
    result["p_value"] = min(p, 1.0)

    idx = rng_boot.integers(0, n, size=(n_boot, n))
    xb, yb = xa[idx], ya[idx]
    if method == "spearman":
        xb, yb = rankdata(xb, axis=1), rankdata(yb, axis=1)
    rb = _rowwise_pearson(xb, yb)
    rb = rb[~np.isnan(rb)]
    if rb.size >= max(10, n_boot // 10):
        lo, hi = np.quantile(rb, [alpha / 2, 1 - alpha / 2])
        result["ci_low"], result["ci_high"] = float(lo), float(hi)
    return result


def _gains_frame(gains) -> pd.DataFrame:
    if isinstance(gains, pd.Series):
        g = gains.rename("gain").to_frame()
        if g.index.names == [None]:
            g.index.name = "lang"
        return g.reset_index()
    if isinstance(gains, Mapping):
        return pd.DataFrame({"lang": [str(k) for k in gains], "gain": list(gains.values())})
    if isinstance(gains, pd.DataFrame):
        g = gains.copy()
        if "gain" not in g.columns:
            if g.shape[1] == 1:
                g.columns = ["gain"]
            else:
                raise DataValidationError(
                    f"gains needs a 'gain' column (got columns {list(g.columns)})."
                )
        if "lang" not in g.columns:
            if g.index.names == [None]:
                g.index.name = "lang"
            g = g.reset_index()
        return g
    raise DataValidationError(
        f"gains must be a DataFrame (columns lang, gain), a Series indexed by lang or a dict; got "
        f"{type(gains).__name__}."
    )


def divergence_test(
    gains,
    deltas: pd.DataFrame,
    *,
    x: str = "silhouette_cosine",
    layer: int | str | None = None,
    alignment: str | None = "parallel_cosine",
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    methods: Sequence[str] = ("spearman", "pearson"),
) -> pd.DataFrame:
    """Does the task gain track language-cluster SEPARATION or ALIGNMENT to the anchor?

    Correlates per-unit gains with per-unit metric deltas (``after - before`` from
    :func:`compare_reps`), for the separation metric ``x`` (default: per-language cosine
    silhouette) and the alignment metric (default: parallel-pair cosine to the anchor), side by
    side, with :func:`correlation_test` (Spearman and Pearson, bootstrap CIs resampling the
    units, two-sided permutation p-value, n).

    Args:
        gains: per-unit task gains: a DataFrame with columns ``lang`` and ``gain`` (more key
            columns, e.g. ``setting`` for several steering strengths, are joined with the same
            columns of ``deltas``), a Series indexed by lang, or a dict ``{lang: gain}``.
        deltas: :func:`compare_reps` output (columns layer, lang, metric, delta; plus the key
            columns when gains has them, e.g. several compare_reps tables concatenated with a
            ``setting`` column). Rows with ``lang == "all"`` are ignored.
        x: separation metric (a per-language metric of :func:`cluster_metrics`).
        layer: a model layer; ``None`` picks the layer where the mean ``|delta|`` of ``x`` over
            the tested units is largest (chosen without looking at the gains, so the
            correlation test stays valid); ``"all"`` tests every layer (mind multiple testing).
        alignment: alignment metric (``None`` to skip); e.g. ``"retrieval_acc"``.
        n_boot, n_perm, seed: see :func:`correlation_test`.

    Both hypotheses are tested on the same units: those with a gain and a delta for both
    metrics (e.g. the anchor, which has no alignment delta, drops out).

    Returns:
        DataFrame with rows (hypothesis in {"separation", "alignment"}, metric, layer, method,
        r, ci_low, ci_high, p_value, n); ``df.attrs["layer_choice"]`` says how the layer was
        chosen and ``df.attrs["units"]`` lists the units.

    >>> import pandas as pd
    >>> deltas = pd.DataFrame({"layer": 1, "lang": ["de", "es", "ru", "zh", "hi"] * 2,
    ...     "metric": ["silhouette_cosine"] * 5 + ["parallel_cosine"] * 5,
    ...     "delta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.1, -0.1, 0.05, 0.0]})
    >>> gains = pd.DataFrame({"lang": ["de", "es", "ru", "zh", "hi"], "gain": [1, 2, 3, 4, 5]})
    >>> t = divergence_test(gains, deltas, n_boot=200)
    >>> t[["hypothesis", "method", "r", "n"]].round(2).values.tolist()[:2]
    [['separation', 'spearman', 1.0, 5], ['separation', 'pearson', 1.0, 5]]
    """
    g = _gains_frame(gains)
    keys = [c for c in g.columns if c != "gain"]
    need = {"layer", "lang", "metric", "delta"}
    if not need <= set(deltas.columns):
        raise DataValidationError(
            f"deltas needs columns {sorted(need)} (compare_reps output); got {list(deltas.columns)}."
        )
    missing_keys = [k for k in keys if k not in deltas.columns]
    if missing_keys:
        raise DataValidationError(
            f"gains has key column(s) {missing_keys} that deltas lacks: add them to deltas "
            "(e.g. concatenate compare_reps tables with a 'setting' column) or drop them from gains."
        )
    if g.duplicated(keys).any():
        raise DataValidationError(f"gains has several rows for the same {keys}: one gain per unit.")
    d = deltas[deltas["lang"] != "all"]
    per_lang = sorted(d["metric"].unique())
    hyps = [("separation", x)] + ([("alignment", alignment)] if alignment else [])
    tables = {}
    for _, metric in hyps:
        if metric not in per_lang:
            raise DataValidationError(
                f"Metric {metric!r} has no per-language deltas; available: {per_lang}."
            )
        t = d[d["metric"] == metric][keys + ["layer", "delta"]]
        if t.duplicated(keys + ["layer"]).any():
            raise DataValidationError(
                f"deltas has several {metric!r} rows per {keys + ['layer']}: add a key column "
                "(e.g. 'setting') to both gains and deltas."
            )
        tables[metric] = t.rename(columns={"delta": metric})
    merged = g[keys + ["gain"]]
    for metric, t in tables.items():
        merged = merged.merge(t, on=keys, how="inner") if "layer" not in merged.columns else merged.merge(
            t, on=keys + ["layer"], how="inner"
        )
    merged = merged.dropna(subset=["gain"] + list(tables))
    layers_avail = sorted(int(l) for l in merged["layer"].unique())
    if not layers_avail:
        raise DataValidationError(
            f"No unit has both a gain and deltas: gains units {g[keys].drop_duplicates().values.tolist()[:5]}, "
            f"delta languages {sorted(d['lang'].unique())[:10]}."
        )
    if layer is None:
        score = merged.assign(a=merged[x].abs()).groupby("layer")["a"].mean()
        chosen = [int(score.idxmax())]
        choice = f"max mean |delta {x}| over units (layer {chosen[0]})"
    elif isinstance(layer, str) and layer == "all":
        chosen = layers_avail
        choice = "all layers"
    else:
        if int(layer) not in layers_avail:
            raise DataValidationError(
                f"Layer {layer} is not in the deltas (layers with data: {layers_avail})."
            )
        chosen = [int(layer)]
        choice = "given"
    rows = []
    for lay in chosen:
        sub = merged[merged["layer"] == lay]
        for hyp, metric in hyps:
            for method in methods:
                res = correlation_test(
                    sub[metric].to_numpy(), sub["gain"].to_numpy(), method,
                    n_boot=n_boot, n_perm=n_perm, seed=seed,
                )
                rows.append(
                    {"hypothesis": hyp, "metric": metric, "layer": lay, "method": method,
                     "r": res["r"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
                     "p_value": res["p_value"], "n": res["n"]}
                )
    out = pd.DataFrame(rows, columns=["hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n"])
    out.attrs.update(
        layer_choice=choice,
        keys=keys,
        units=merged[merged["layer"] == chosen[0]][keys].values.tolist(),
        n_boot=n_boot, n_perm=n_perm, seed=seed,
    )
    return out


# ----------------------------------------------------------------------------------------------
# projections
# ----------------------------------------------------------------------------------------------
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
    mats = [r.layer(layer)[0] for r in reps_list]
    X = np.concatenate(mats).astype(np.float64)
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
    df.attrs.update(method=method, seed=seed, **extra)
    return df
