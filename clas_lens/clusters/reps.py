"""The container of pooled residual-stream vectors of a parallel corpus: :class:`Reps`.

:class:`Reps` (made by ``clas_lens.clusters.residual_reps``) holds one vector per (language,
sentence) and layer, with views (:meth:`Reps.layer`, :meth:`Reps.select`) and persistence
through ``clas_lens.io.save_tensors`` / ``load_tensors``: a folder with ``reps.safetensors``
(metadata and a content checksum in its header). Folders written by the older two-file format
(``reps.json`` + ``vectors.safetensors``, format ``clas_lens.reps/1``) still load; they are
never written. See docs/methods.md, "Clusters and the divergence test".

Axis names: ``layer`` (position in ``Reps.layers``), ``sentence`` (rows of all languages
stacked, language-major, corpus id order inside a language), ``d_model``.

>>> import torch
>>> r = Reps(vectors=torch.zeros(2, 4, 3), langs=["en", "en", "de", "de"], ids=["a", "b"] * 2,
...          layers=[0, 1], pooling="last")
>>> r.vectors.shape, r.lang_set, len(r)
(torch.Size([2, 4, 3]), ['en', 'de'], 4)
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.io import atomic_directory, load_tensors, read_json, save_tensors

__all__ = ["Reps", "REPS_FORMAT", "POOLINGS"]

#: Poolings of a sentence's residual stream: the mean over real tokens, or the last real token.
POOLINGS: tuple[str, ...] = ("mean", "last")
#: Format tag of a saved :class:`Reps` (one safetensors file, metadata in its header).
REPS_FORMAT = "clas_lens.reps/2"
_FILE = "reps.safetensors"
# The older layout (format 1): vectors.safetensors + reps.json. Read, never written.
_V1_FORMAT = "clas_lens.reps/1"
_V1_VECTORS = "vectors.safetensors"
_V1_META = "reps.json"


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
            dup = next(p for p, c in collections.Counter(pairs).items() if c > 1)
            raise DataValidationError(
                f"Reps has the sentence id {dup[1]!r} twice in language {dup[0]!r}: ids must be "
                "unique within a language."
            )
        if self.pooling not in POOLINGS:
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
        """Everything but the vectors, as JSON-ready metadata."""
        return {
            "format": REPS_FORMAT,
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
        """Write a folder ``path`` holding ``reps.safetensors`` (the vectors, with the metadata
        and a content checksum in its header; ``clas_lens.io.save_tensors``), atomically.

        An existing folder is replaced only if it is itself a saved :class:`Reps` (or empty).

        >>> import tempfile, torch
        >>> r = Reps(vectors=torch.randn(1, 2, 3), langs=["en", "de"], ids=["a", "a"],
        ...          layers=[0], pooling="mean")
        >>> p = r.save(tempfile.mkdtemp() + "/base")
        >>> torch.equal(Reps.load(p).vectors, r.vectors)
        True
        """
        path = Path(path)
        try:  # one listing (another writer may be replacing the folder right now)
            names = {p.name for p in path.iterdir()}
        except NotADirectoryError:
            raise FileExistsError(f"{path} exists and is a file; Reps.save writes a folder.") from None
        except FileNotFoundError:
            names = set()
        if names:
            if not names & {_FILE, _V1_META}:
                raise FileExistsError(
                    f"{path} is a non-empty folder that is not a saved Reps; refusing to replace "
                    "it. Save to a new sub-folder, e.g. path / 'reps_base'."
                )
        vectors = self.vectors.detach().to("cpu", torch.float32).contiguous()
        meta = json.loads(json.dumps(self.to_meta(), ensure_ascii=False, default=str))
        with atomic_directory(path) as tmp:
            save_tensors(tmp / _FILE, {"vectors": vectors}, meta, REPS_FORMAT)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Reps":
        """Read a folder written by :meth:`save` (or by the older format: ``reps.json`` +
        ``vectors.safetensors``); the content checksum is verified."""
        path = Path(path)
        if (path / _FILE).exists():
            meta, tensors = load_tensors(path / _FILE, REPS_FORMAT, "Reps", required=(
                "langs", "ids", "layers", "pooling", "condition"), tensors_required=("vectors",))
            vectors = tensors["vectors"]
        elif (path / _V1_META).exists() and (path / _V1_VECTORS).exists():
            meta, vectors = _load_v1(path)
        else:
            raise DataValidationError(
                f"{path} is not a saved Reps folder (expected {_FILE}, or {_V1_META} and "
                f"{_V1_VECTORS} of the older format)."
            )
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


def _is_saved_reps(path: Path) -> bool:
    return (path / _FILE).exists() or (path / _V1_META).exists()


def _load_v1(path: Path) -> tuple[dict[str, Any], Tensor]:
    """Metadata and vectors of a folder in the older two-file format (no checksum)."""
    from safetensors.torch import load_file

    meta = read_json(path / _V1_META)
    if meta.get("format") != _V1_FORMAT:
        raise DataValidationError(
            f"{path}: unknown Reps format {meta.get('format')!r}, expected {_V1_FORMAT!r}."
        )
    return meta, load_file(str(path / _V1_VECTORS))["vectors"]
