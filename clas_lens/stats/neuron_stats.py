"""``NeuronStats``: per-language activation statistics of every MLP neuron, with an exact merge.

Built by :func:`~clas_lens.stats.collect_stats`. Per language it holds one
:class:`~clas_lens.stats.accumulator.Accumulator` (token count, active count, sum and sum of
squares, over the measured layers) and, optionally, one float16 mean per sentence per neuron.
Accessors return float64 tensors of the model's full shape ``[layer, neuron]`` so that row
``l`` is always layer ``l``; rows of layers that were not measured are NaN. Shards combine with
:meth:`NeuronStats.merge`; files are written and read with ``clas_lens.io.save_tensors`` /
``load_tensors`` (content checksum verified on load). See docs/methods.md, "Neuron categories".

Axis names: ``layer``, ``neuron`` (d_mlp), ``sentence``.

>>> from clas_lens.stats import collect_stats
>>> from clas_lens.testing import tiny_model
>>> s = collect_stats(tiny_model("llama"), {"en": ["a cat"]})
>>> s.langs, s.shape, s.mean("en").dtype
(['en'], (2, 64), torch.float64)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from jaxtyping import Bool, Float, Float16
from torch import Tensor

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.io import load_tensors, save_tensors, sha256_json
from clas_lens.models import check_model_identity
from clas_lens.sites import check_site, neuron_sites
from clas_lens.stats.accumulator import Accumulator
from clas_lens.stats.state import state_accumulators, state_entries
from clas_lens.stats.versions import package_versions

__all__ = ["NeuronStats", "FORMAT", "package_versions"]

#: The format tag of a saved :class:`NeuronStats` file.
FORMAT = "clas_lens.NeuronStats/1"


class NeuronStats:
    """Per-language activation statistics of every MLP neuron of some layers.

    Built by :func:`collect_stats`; combine shards with :meth:`merge`; persist with
    :meth:`save` / :meth:`load`. Accessors return float64 tensors of the model's full shape
    ``[layer, neuron]`` (rows of layers not measured are NaN).

    Attributes:
        langs: languages, in collection order.
        site: neuron site ("post" or "act").
        threshold: a token counts as active when its activation is ``> threshold``.
        layers: measured layers (sorted model indices).
        shape: ``(n_layers, d_mlp)`` of the model.
        model_info: ``ModelInfo.to_dict()`` of the model (incl. ``weights_sha256``).
        keep_bos: whether the BOS token was counted.
        corpus_hashes: hash of each corpus (shard) that went in.
        versions: torch / transformers / transformer-lens / clas_lens versions.
        n_truncated: texts cut to the context length during collection.

    >>> from clas_lens.stats import collect_stats
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> a = collect_stats(model, {"en": ["one two", "three"]})
    >>> b = collect_stats(model, {"en": ["four five six"]})
    >>> ab = a.merge(b)
    >>> ab.n_tokens("en") == a.n_tokens("en") + b.n_tokens("en")
    True
    """

    def __init__(
        self,
        *,
        site: str,
        threshold: float,
        layers: Sequence[int],
        shape: tuple[int, int],
        model_info: Mapping[str, Any],
        state: Mapping[str, Accumulator],
        keep_bos: bool = False,
        corpus_hashes: Sequence[str] = (),
        versions: Mapping[str, Any] | None = None,
        n_truncated: int = 0,
        sentences: Mapping[str, Tensor] | None = None,
        sentence_ids: Mapping[str, Sequence[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        self.site = check_site(site)
        self.threshold = float(threshold)
        self.layers = [int(l) for l in layers]
        self.shape = (int(shape[0]), int(shape[1]))
        self.model_info = dict(model_info)
        self.keep_bos = bool(keep_bos)
        self.corpus_hashes = list(corpus_hashes)
        self.versions = dict(versions or package_versions())
        self.n_truncated = int(n_truncated)
        self.extra = dict(extra or {})
        self._state = dict(state)
        n_m = len(self.layers)
        for lang, st in self._state.items():
            for kind in ("active", "sum", "sumsq"):
                t = getattr(st, kind)
                if tuple(t.shape) != (n_m, self.shape[1]):
                    raise DataValidationError(
                        f"{kind}/{lang} has shape {tuple(t.shape)}, expected {(n_m, self.shape[1])}."
                    )
        self._sentences = dict(sentences) if sentences is not None else None
        self._sentence_ids = {k: list(v) for k, v in (sentence_ids or {}).items()}
        if self._sentences is not None:
            for lang, t in self._sentences.items():
                if t.shape[1:] != (n_m, self.shape[1]) or t.shape[0] != len(self._sentence_ids.get(lang, [])):
                    raise DataValidationError(
                        f"Per-sentence store of {lang!r} has shape {tuple(t.shape)} for "
                        f"{len(self._sentence_ids.get(lang, []))} sentence ids."
                    )

    # -- basic accessors ---------------------------------------------------------------------

    @property
    def langs(self) -> list[str]:
        return list(self._state)

    @property
    def has_sentences(self) -> bool:
        """Whether per-sentence means were stored (``collect_stats(per_sentence=True)``)."""
        return self._sentences is not None

    @property
    def corpus_hash(self) -> str | None:
        """The corpus hash (one corpus) or a hash of the sorted shard hashes (merged)."""
        if not self.corpus_hashes:
            return None
        if len(self.corpus_hashes) == 1:
            return self.corpus_hashes[0]
        return sha256_json(sorted(self.corpus_hashes))

    def _lang(self, lang: str) -> Accumulator:
        try:
            return self._state[lang]
        except KeyError:
            raise KeyError(f"No statistics for language {lang!r}; these stats have {self.langs}.") from None

    def _full(self, values: Tensor, fill: float = math.nan) -> Float[Tensor, "layer neuron"]:
        out = torch.full(self.shape, fill, dtype=values.dtype, device=values.device)
        out[self.layers] = values
        return out

    def n_tokens(self, lang: str) -> int:
        """Number of tokens of ``lang`` that went into the statistics."""
        return int(self._lang(lang).count)

    def mean(self, lang: str) -> Float[Tensor, "layer neuron"]:
        """Mean activation per neuron over ``lang``'s tokens (float64)."""
        st = self._lang(lang)
        n = st.count.to(torch.float64)
        return self._full(st.sum / n if n > 0 else torch.full_like(st.sum, math.nan))

    def std(self, lang: str) -> Float[Tensor, "layer neuron"]:
        """Population standard deviation (ddof=0) per neuron over ``lang``'s tokens (float64)."""
        st = self._lang(lang)
        n = st.count.to(torch.float64)
        if n <= 0:
            return self._full(torch.full_like(st.sum, math.nan))
        mean = st.sum / n
        var = (st.sumsq / n - mean * mean).clamp(min=0.0)
        return self._full(var.sqrt())

    def active_prob(self, lang: str) -> Float[Tensor, "layer neuron"]:
        """P(activation > threshold) per neuron over ``lang``'s tokens (float64)."""
        st = self._lang(lang)
        n = st.count.to(torch.float64)
        if n <= 0:
            return self._full(torch.full(st.active.shape, math.nan, dtype=torch.float64, device=st.active.device))
        return self._full(st.active.to(torch.float64) / n)

    def layer_mask(self) -> Bool[Tensor, "layer neuron"]:
        """True on the rows of measured layers."""
        m = torch.zeros(self.shape, dtype=torch.bool)
        m[self.layers] = True
        return m

    def sentence_means(self, lang: str) -> Float16[Tensor, "sentence layer neuron"]:
        """Per-sentence mean activation of every neuron (float16; NaN rows for unmeasured layers).

        Sentences follow :meth:`sentence_ids` (corpus id order). Values beyond float16's
        range are clipped to +-65504.
        """
        if self._sentences is None:
            raise DataValidationError(
                "These statistics hold no per-sentence values: collect them with "
                "collect_stats(..., per_sentence=True)."
            )
        t = self._sentences[self._lang_key(lang)]
        out = torch.full((t.shape[0],) + self.shape, math.nan, dtype=t.dtype)
        out[:, self.layers] = t
        return out

    def sentence_ids(self, lang: str) -> list[str]:
        """Ids of the sentences in :meth:`sentence_means` order."""
        return list(self._sentence_ids[self._lang_key(lang)])

    def _lang_key(self, lang: str) -> str:
        self._lang(lang)
        return lang

    def without_sentences(self) -> "NeuronStats":
        """A copy without the per-sentence store (e.g. to merge with stats that lack it)."""
        return self._replace(sentences=None, sentence_ids=None)

    def _replace(self, **changes) -> "NeuronStats":
        kw = dict(
            site=self.site,
            threshold=self.threshold,
            layers=self.layers,
            shape=self.shape,
            model_info=self.model_info,
            state=self._state,
            keep_bos=self.keep_bos,
            corpus_hashes=self.corpus_hashes,
            versions=self.versions,
            n_truncated=self.n_truncated,
            sentences=self._sentences,
            sentence_ids=self._sentence_ids,
            extra=self.extra,
        )
        kw.update(changes)
        return NeuronStats(**kw)

    def __repr__(self) -> str:
        toks = ", ".join(f"{l}: {self.n_tokens(l)}" for l in self.langs)
        return (
            f"NeuronStats(model={self.model_info.get('model_id')!r}, site={self.site!r}, "
            f"threshold={self.threshold}, layers={self.layers}, shape={self.shape}, "
            f"tokens={{{toks}}}, per_sentence={self.has_sentences})"
        )

    # -- merge / state -----------------------------------------------------------------------

    def _compat(self, other: "NeuronStats") -> None:
        mine = (self.model_info.get("weights_sha256"), self.site, self.threshold, self.layers, self.shape, self.keep_bos)
        theirs = (other.model_info.get("weights_sha256"), other.site, other.threshold, other.layers, other.shape, other.keep_bos)
        names = ("weights sha256", "site", "threshold", "layers", "shape", "keep_bos")
        diffs = [f"{n}: {a!r} vs {b!r}" for n, a, b in zip(names, mine, theirs) if a != b]
        if diffs:
            raise MismatchError(
                "Cannot merge statistics collected differently (" + "; ".join(diffs) + "). "
                "Collect every shard with the same model, site, threshold, layers and keep_bos."
            )

    def merge(self, other: "NeuronStats") -> "NeuronStats":
        """Combine two shards: languages are united; for a language in both, sums add.

        Exact up to float64 rounding: shards merge to the single-pass answer. Per-sentence
        stores are concatenated (both shards must have one, or neither).
        """
        if not isinstance(other, NeuronStats):
            raise TypeError(f"merge() needs a NeuronStats, got {type(other).__name__}.")
        self._compat(other)
        if self.has_sentences != other.has_sentences:
            raise MismatchError(
                "One set of statistics has per-sentence values and the other does not. Collect "
                "both with per_sentence=True, or drop them first with .without_sentences()."
            )
        state: dict[str, Accumulator] = {}
        for lang in self.langs + [l for l in other.langs if l not in self._state]:
            a, b = self._state.get(lang), other._state.get(lang)
            if a is None or b is None:
                state[lang] = a if a is not None else b
            else:
                state[lang] = a.merge(b)
        sentences = sentence_ids = None
        if self.has_sentences:
            sentences, sentence_ids = {}, {}
            for lang in state:
                parts = [s for s in (self, other) if lang in s._sentences]
                sentences[lang] = torch.cat([s._sentences[lang] for s in parts], dim=0)
                sentence_ids[lang] = [i for s in parts for i in s._sentence_ids[lang]]
        hashes = list(dict.fromkeys(self.corpus_hashes + other.corpus_hashes))
        return self._replace(
            state=state,
            corpus_hashes=hashes,
            n_truncated=self.n_truncated + other.n_truncated,
            sentences=sentences,
            sentence_ids=sentence_ids,
        )

    def __add__(self, other: "NeuronStats") -> "NeuronStats":
        return self.merge(other)

    def state_tensors(self) -> dict[str, Tensor]:
        """The raw sums as ``{"<kind>/<lang>": tensor}``; kinds count, active, sum, sumsq.

        Every entry combines across shards by addition (e.g. ``torch.distributed.all_reduce``
        with SUM, when every rank holds the same languages). Rebuild with :meth:`from_state`.
        """
        return state_entries(self._state)

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable metadata (everything but the tensors)."""
        return {
            "format": FORMAT,
            "site": self.site,
            "threshold": self.threshold,
            "layers": self.layers,
            "shape": list(self.shape),
            "langs": self.langs,
            "n_tokens": {l: self.n_tokens(l) for l in self.langs},
            "model_info": self.model_info,
            "keep_bos": self.keep_bos,
            "corpus_hash": self.corpus_hash,
            "corpus_hashes": self.corpus_hashes,
            "versions": self.versions,
            "n_truncated": self.n_truncated,
            "per_sentence": self.has_sentences,
            "sentence_ids": self._sentence_ids if self.has_sentences else None,
            "extra": self.extra,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Tensor],
        meta: Mapping[str, Any],
        *,
        sentences: Mapping[str, Tensor] | None = None,
    ) -> "NeuronStats":
        """Rebuild from :meth:`state_tensors` and :meth:`meta` (e.g. after an all-reduce)."""
        st = state_accumulators(state, meta.get("langs", []))
        sids = meta.get("sentence_ids") if sentences is not None else None
        return cls(
            site=meta["site"],
            threshold=meta["threshold"],
            layers=meta["layers"],
            shape=tuple(meta["shape"]),
            model_info=meta["model_info"],
            state=st,
            keep_bos=meta.get("keep_bos", False),
            corpus_hashes=meta.get("corpus_hashes", []),
            versions=meta.get("versions"),
            n_truncated=meta.get("n_truncated", 0),
            sentences=sentences,
            sentence_ids=sids,
            extra=meta.get("extra"),
        )

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write one safetensors file (tensors + JSON metadata in its header), atomically.

        >>> import tempfile, pathlib
        >>> from clas_lens.stats import collect_stats
        >>> from clas_lens.testing import tiny_model
        >>> s = collect_stats(tiny_model("llama"), {"en": ["a cat"]})
        >>> p = s.save(pathlib.Path(tempfile.mkdtemp()) / "stats.safetensors")
        >>> bool((NeuronStats.load(p).mean("en") == s.mean("en")).all())
        True
        """
        tensors = dict(self.state_tensors())
        if self._sentences is not None:
            for lang, t in self._sentences.items():
                tensors[f"sentences/{lang}"] = t
        return save_tensors(path, tensors, self.meta(), FORMAT)

    @classmethod
    def load(cls, path: str | Path) -> "NeuronStats":
        """Read statistics written by :meth:`save`."""
        meta, tensors = load_tensors(path, FORMAT, "NeuronStats",
                                     required=("site", "threshold", "layers", "shape", "model_info"))
        sentences = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("sentences/")}
        state = {k: v for k, v in tensors.items() if not k.startswith("sentences/")}
        return cls.from_state(state, meta, sentences=sentences if meta.get("per_sentence") else None)

    def check_model(self, model, site: str | None = None) -> None:
        """Raise :class:`MismatchError` unless ``model`` (and ``site``, if given) match.

        >>> from clas_lens.stats import collect_stats
        >>> from clas_lens.testing import tiny_model
        >>> s = collect_stats(tiny_model("llama"), {"en": ["a cat"]})
        >>> s.check_model(tiny_model("gpt2"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        clas_lens.errors.MismatchError: These statistics were computed on model ...
        """
        check_model_identity(
            model, self.model_info, "statistics",
            site=None if site is None else check_site(site), stored_site=self.site,
        )
        if tuple(neuron_sites(model).shape) != self.shape:  # pragma: no cover
            raise MismatchError(f"Statistics shape {self.shape} != model shape {neuron_sites(model).shape}.")


