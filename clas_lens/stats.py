"""Streaming per-language statistics of MLP neurons, with an exact merge.

:func:`collect_stats` runs a model over every language of a parallel corpus and accumulates,
per language and per (layer, neuron), in float64:

* ``count`` -- number of tokens seen (the same for every neuron of a language),
* ``active`` -- number of tokens whose activation is ``> threshold`` (int64, exact),
* ``sum`` and ``sumsq`` -- sum and sum of squares of the activation.

Only real tokens count: padding and the BOS token are excluded (``Encoded.real_mask``;
``keep_bos=True`` keeps BOS). Memory does not grow with the corpus: each batch is folded into
the sums and dropped. The only exception is the opt-in per-sentence store
(``per_sentence=True``): one mean per sentence per neuron, kept as float16 (Kojima et al.'s
average-precision method needs it). The forward pass stops right after the last layer that is
read (``stop_at_layer=max(layers)+1`` and an early exit after that layer's hook), so the
unembedding -- most of the cost for large-vocabulary models -- is never computed.

Every per-neuron tensor has the model's full shape ``[layer, neuron]`` = ``(n_layers, d_mlp)``
so that row ``l`` is always layer ``l``; rows of layers that were not measured are NaN.
Raw sums (:meth:`NeuronStats.state_tensors`) combine by plain addition, so shards (and
processes, via an all-reduce) merge to the single-pass answer up to float64 rounding.

Axis names: ``layer``, ``neuron`` (d_mlp), ``sentence``, ``q`` (quantile).

>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> stats = collect_stats(model, {"en": ["The cat sat.", "A dog ran."],
...                               "de": ["Die Katze sass.", "Ein Hund lief."]})
>>> stats.langs, stats.shape
(['en', 'de'], (2, 64))
>>> stats.mean("en").dtype, bool((stats.active_prob("de") <= 1).all())
(torch.float64, True)
"""
from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from jaxtyping import Bool, Float, Float16, Int64
from torch import Tensor

from clas_lens.batching import Encoded, batched, encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.io import atomic_write_bytes, sha256_json
from clas_lens.sites import check_site, neuron_sites

__all__ = ["NeuronStats", "collect_stats", "collect_quantiles", "corpus_langs_texts"]

_FORMAT = "clas_lens.NeuronStats/1"
_KINDS = ("count", "active", "sum", "sumsq")
#: Largest finite float16: per-sentence means beyond it are clipped before storage.
_F16_MAX = 65504.0


class _StopForward(Exception):
    """Raised by the hook of the last layer needed: nothing after it is computed."""


# ---------------------------------------------------------------------------------------------
# corpus access (duck-typed: ParallelCorpus or {lang: [texts]})
# ---------------------------------------------------------------------------------------------


def _as_corpus(corpus: Any) -> Any:
    from clas_lens.data.corpus import as_corpus

    return as_corpus(corpus, what="collect_stats")


def _corpus_hash(corpus: Any) -> str | None:
    h = getattr(corpus, "hash", None)
    if callable(h):
        return str(h())
    return None


def corpus_langs_texts(corpus: Any, langs: Sequence[str] | None) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``(langs, ids, {lang: texts})`` of a corpus, restricted to ``langs`` (validated)."""
    corpus = _as_corpus(corpus)
    available = list(corpus.langs)
    if langs is None:
        langs = available
    elif isinstance(langs, str):
        langs = [langs]
    unknown = [l for l in langs if l not in available]
    if unknown:
        raise DataValidationError(
            f"Languages {unknown} are not in the corpus (it has {available}); pick from those."
        )
    if len(set(langs)) != len(langs):
        raise DataValidationError(f"Duplicate languages in langs={list(langs)}.")
    ids = [str(i) for i in corpus.ids]
    texts = {}
    for lang in langs:
        t = list(corpus.texts(lang))
        if len(t) != len(ids):
            raise DataValidationError(
                f"Language {lang!r} has {len(t)} texts for {len(ids)} ids: the corpus is not parallel."
            )
        texts[lang] = t
    if not ids:
        raise DataValidationError("The corpus is empty: it needs at least one sentence.")
    return list(langs), ids, texts


# ---------------------------------------------------------------------------------------------
# the forward loop shared by collect_stats and collect_quantiles
# ---------------------------------------------------------------------------------------------


def _accum_device(model) -> torch.device:
    dev = next(model.parameters()).device
    # MPS has no float64: accumulate on the CPU there.
    return torch.device("cpu") if dev.type == "mps" else dev


def _batches(
    model,
    texts: list[str],
    *,
    batch_size: int,
    padding_side: str,
    max_length: int | None,
    truncation: str,
    keep_bos: bool,
) -> Iterator[tuple[list[int], Encoded]]:
    """Batches of sentence indices (longest first, to limit padding) and their encodings."""
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    for idx in batched(order, batch_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted and reported once by the caller
            enc = encode(
                model,
                [texts[i] for i in idx],
                padding_side=padding_side,
                max_length=max_length,
                truncation=truncation,
                keep_bos=keep_bos,
            )
        yield list(idx), enc


def _run_reading(model, enc: Encoded, layers: list[int], hooks: list) -> None:
    """Forward ``enc`` with read ``hooks``; stop after the last needed layer."""
    kwargs: dict[str, Any] = {"attention_mask": enc.attention_mask}
    stop = max(layers) + 1
    if stop < neuron_sites(model).n_layers:
        kwargs["stop_at_layer"] = stop
    try:
        with torch.no_grad(), model.hooks(fwd_hooks=hooks):
            model(enc.input_ids, **kwargs)
    except _StopForward:
        pass


def _layer_read_hooks(sites, site: str, layers: list[int], on_values) -> list:
    """Read hooks calling ``on_values(layer, values)`` at ``site`` of every layer in ``layers``."""
    hooks = []
    for layer in layers:
        hooks += sites.read_hooks(site, layer, lambda v, layer=layer: on_values(layer, v))
    return hooks


def _progress(total: int, progress: bool | None, desc: str):
    from tqdm.auto import tqdm

    disable = (total <= 8) if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, leave=False)


def _truncation_warning(n: int, total: int, max_length: int | None, model) -> None:
    if n:
        from clas_lens.batching import context_length

        limit = min(max_length or context_length(model), context_length(model))
        warnings.warn(
            f"Truncated {n} of {total} text(s) to {limit} tokens; statistics use the truncated "
            "text (pass truncation='error' to refuse instead, or raise max_length).",
            stacklevel=3,
        )


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    import clas_lens

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "transformer-lens"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = None
    out["clas_lens"] = clas_lens.__version__
    return out


def _model_info_dict(model) -> dict[str, Any]:
    from clas_lens.models import model_info

    return model_info(model).to_dict()


def check_same_model(what: str, info: Mapping[str, Any], stored_site: str, model, site: str | None) -> None:
    """Raise :class:`MismatchError` if ``model`` (or ``site``) is not the one ``info`` records."""
    current = _model_info_dict(model)
    if current.get("weights_sha256") != info.get("weights_sha256"):
        raise MismatchError(
            f"These {what} were computed on model {info.get('model_id')!r} (weights sha256 "
            f"{str(info.get('weights_sha256'))[:16]}...) but are being used with model "
            f"{current.get('model_id')!r} (weights sha256 {str(current.get('weights_sha256'))[:16]}...). "
            f"Recompute the {what} on this model."
        )
    if site is not None and check_site(site) != stored_site:
        raise MismatchError(
            f"These {what} were computed at neuron site {stored_site!r} but are being used at "
            f"site {site!r}. Use site={stored_site!r} or recompute them at {site!r}."
        )


# ---------------------------------------------------------------------------------------------
# NeuronStats
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _LangState:
    count: Int64[Tensor, ""]
    active: Int64[Tensor, "mlayer neuron"]
    sum: Float[Tensor, "mlayer neuron"]
    sumsq: Float[Tensor, "mlayer neuron"]


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
        state: Mapping[str, _LangState],
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
        self.versions = dict(versions or _versions())
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

    def _lang(self, lang: str) -> _LangState:
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
        state: dict[str, _LangState] = {}
        for lang in self.langs + [l for l in other.langs if l not in self._state]:
            a, b = self._state.get(lang), other._state.get(lang)
            if a is None or b is None:
                state[lang] = a if a is not None else b
            else:
                b_ = _LangState(*(getattr(b, k).to(getattr(a, k).device) for k in _KINDS))
                state[lang] = _LangState(*(getattr(a, k) + getattr(b_, k) for k in _KINDS))
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
        out = {}
        for lang, st in self._state.items():
            for kind in _KINDS:
                out[f"{kind}/{lang}"] = getattr(st, kind)
        return out

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable metadata (everything but the tensors)."""
        return {
            "format": _FORMAT,
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
        langs: list[str] = []
        for key in state:
            kind, _, lang = key.partition("/")
            if kind not in _KINDS or not lang:
                raise DataValidationError(f"Unexpected state entry {key!r}; expected '<kind>/<lang>' with kind in {_KINDS}.")
            if lang not in langs:
                langs.append(lang)
        order = [l for l in meta.get("langs", []) if l in langs] + [l for l in langs if l not in meta.get("langs", [])]
        st = {}
        for lang in order:
            try:
                count, active, s, ss = (state[f"{k}/{lang}"] for k in _KINDS)
            except KeyError as e:
                raise DataValidationError(f"State for {lang!r} lacks {e.args[0]!r}.") from None
            st[lang] = _LangState(
                count.reshape(()).to(torch.int64),
                active.to(torch.int64),
                s.to(torch.float64),
                ss.to(torch.float64),
            )
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
        >>> from clas_lens.testing import tiny_model
        >>> s = collect_stats(tiny_model("llama"), {"en": ["a cat"]})
        >>> p = s.save(pathlib.Path(tempfile.mkdtemp()) / "stats.safetensors")
        >>> bool((NeuronStats.load(p).mean("en") == s.mean("en")).all())
        True
        """
        from safetensors.torch import save as st_save

        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_tensors().items()}
        tensors = {k: (v.reshape(1) if v.ndim == 0 else v) for k, v in tensors.items()}
        if self._sentences is not None:
            for lang, t in self._sentences.items():
                tensors[f"sentences/{lang}"] = t.to("cpu").contiguous()
        meta = self.meta()
        data = st_save(tensors, metadata={"clas_lens": json.dumps(meta, default=str)})
        return atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path) -> "NeuronStats":
        """Read statistics written by :meth:`save`."""
        meta, tensors = _read_safetensors(path, _FORMAT, "NeuronStats")
        sentences = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("sentences/")}
        state = {k: v for k, v in tensors.items() if not k.startswith("sentences/")}
        return cls.from_state(state, meta, sentences=sentences if meta.get("per_sentence") else None)

    def check_model(self, model, site: str | None = None) -> None:
        """Raise :class:`MismatchError` unless ``model`` (and ``site``, if given) match.

        >>> from clas_lens.testing import tiny_model
        >>> s = collect_stats(tiny_model("llama"), {"en": ["a cat"]})
        >>> s.check_model(tiny_model("gpt2"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        clas_lens.errors.MismatchError: These statistics were computed on model ...
        """
        check_same_model("statistics", self.model_info, self.site, model, site)
        if tuple(neuron_sites(model).shape) != self.shape:  # pragma: no cover
            raise MismatchError(f"Statistics shape {self.shape} != model shape {neuron_sites(model).shape}.")


def _read_safetensors(path: str | Path, fmt: str, what: str) -> tuple[dict, dict[str, Tensor]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No {what} file at {path}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise DataValidationError(f"{path} is not a readable safetensors file ({e}).") from e
    if "clas_lens" not in header:
        raise DataValidationError(f"{path} has no clas_lens metadata: it was not written by {what}.save().")
    meta = json.loads(header["clas_lens"])
    if meta.get("format") != fmt:
        raise DataValidationError(f"{path} holds {meta.get('format')!r}, not {fmt!r} ({what}).")
    return meta, tensors


# ---------------------------------------------------------------------------------------------
# collection
# ---------------------------------------------------------------------------------------------


def collect_stats(
    model,
    corpus,
    *,
    site: str = "post",
    layers=None,
    batch_size: int = 16,
    max_length: int | None = None,
    threshold: float = 0.0,
    keep_bos: bool = False,
    truncation: str = "warn",
    per_sentence: bool = False,
    langs: Sequence[str] | None = None,
    padding_side: str = "right",
    progress: bool | None = None,
) -> NeuronStats:
    """Stream a parallel corpus through ``model`` and accumulate per-language neuron statistics.

    Args:
        model: a TransformerBridge (``clas_lens.load_model``).
        corpus: a ``ParallelCorpus`` (``.langs``, ``.ids``, ``.texts(lang)``, ``.hash()``) or a
            dict ``{lang: [texts]}`` of equally long lists.
        site: ``"post"`` (down projection input) or ``"act"`` (act_fn(gate), LAPE's site).
        layers: ``None``/``"all"``, ints (negative allowed) or ``"last:k"``.
        batch_size: sentences per forward pass (sorted by length to limit padding).
        max_length: cut texts to this many tokens (default and maximum: the model context).
        threshold: a token is "active" for a neuron when its activation is ``> threshold``.
        keep_bos: count the BOS token too (default: excluded, as are padding positions).
        truncation: ``"warn"`` (cut over-long texts, one warning with the count) or
            ``"error"`` (raise :class:`~clas_lens.errors.ContextLengthError`).
        per_sentence: also keep each sentence's mean activation per neuron (float16,
            ``sentence x layer x neuron``, clipped to +-65504; memory grows with the corpus)
            -- needed by ``identify_neurons(method="ap")``. A sentence with no real token
            (empty text) adds nothing to the sums and gets a per-sentence mean of 0.
        langs: subset of the corpus languages (default: all).
        padding_side: ``"right"`` or ``"left"``; statistics do not depend on it.
        progress: show a tqdm bar (default: only for more than 8 batches).

    Returns:
        :class:`NeuronStats`.

    >>> from clas_lens.testing import tiny_model
    >>> s = collect_stats(tiny_model("gemma3"), {"en": ["hello world"], "tr": ["merhaba dünya"]},
    ...                   site="act", layers="last:1", per_sentence=True)
    >>> s.layers, s.sentence_means("tr").shape
    ([1], torch.Size([1, 2, 64]))
    """
    check_site(site)
    if truncation not in ("warn", "error"):
        raise ValueError(f"truncation={truncation!r}: use 'warn' or 'error'.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side={padding_side!r}: use 'left' or 'right'.")
    corpus = _as_corpus(corpus)
    langs, ids, texts = corpus_langs_texts(corpus, langs)
    sites = neuron_sites(model)
    layers = sites.check_layers(layers)
    pos_of = {l: i for i, l in enumerate(layers)}
    dev = _accum_device(model)
    n_l, d = len(layers), sites.d_mlp
    thr = float(threshold)

    state: dict[str, _LangState] = {}
    sent_store: dict[str, Tensor] | None = {} if per_sentence else None
    ctx: dict[str, Any] = {}

    def on_values(layer: int, values: Tensor) -> None:
        i = pos_of[layer]
        st: _LangState = ctx["state"]
        mask = ctx["mask"]
        v = values.detach()
        if v.device != dev:
            v = v.to(dev)
        real = v[mask]  # [n_real, d]
        r64 = real.to(torch.float64)
        st.sum[i] += r64.sum(0)
        st.sumsq[i] += (r64 * r64).sum(0)
        st.active[i] += (real > thr).sum(0)
        if ctx["sent"] is not None:
            w = mask.to(torch.float64).unsqueeze(-1)
            s = (v.to(torch.float64) * w).sum(1) / w.sum(1).clamp(min=1.0)
            ctx["sent"][:, i] = s.clamp(-_F16_MAX, _F16_MAX).to("cpu", torch.float16)
        if layer == layers[-1]:
            raise _StopForward

    hooks = _layer_read_hooks(sites, site, layers, on_values)

    n_batches = sum(math.ceil(len(ids) / batch_size) for _ in langs)
    n_trunc = 0
    with _progress(n_batches, progress, "neuron stats") as bar:
        for lang in langs:
            st = _LangState(
                torch.zeros((), dtype=torch.int64, device=dev),
                torch.zeros((n_l, d), dtype=torch.int64, device=dev),
                torch.zeros((n_l, d), dtype=torch.float64, device=dev),
                torch.zeros((n_l, d), dtype=torch.float64, device=dev),
            )
            ctx["state"] = st
            sents = torch.empty((len(ids), n_l, d), dtype=torch.float16) if per_sentence else None
            for idx, enc in _batches(
                model, texts[lang], batch_size=batch_size, padding_side=padding_side,
                max_length=max_length, truncation=truncation, keep_bos=keep_bos,
            ):
                n_trunc += enc.n_truncated
                mask = enc.real_mask.to(dev)
                ctx["mask"] = mask
                ctx["sent"] = torch.empty((len(idx), n_l, d), dtype=torch.float16) if per_sentence else None
                _run_reading(model, enc, layers, hooks)
                st.count += int(mask.sum())
                if per_sentence:
                    sents[torch.tensor(idx)] = ctx["sent"]
                bar.update(1)
            state[lang] = st
            if sent_store is not None:
                sent_store[lang] = sents
    _truncation_warning(n_trunc, len(ids) * len(langs), max_length, model)
    h = _corpus_hash(corpus)
    return NeuronStats(
        site=site,
        threshold=thr,
        layers=layers,
        shape=sites.shape,
        model_info=_model_info_dict(model),
        state=state,
        keep_bos=keep_bos,
        corpus_hashes=[h] if h else [],
        versions=_versions(),
        n_truncated=n_trunc,
        sentences=sent_store,
        sentence_ids={lang: ids for lang in langs} if per_sentence else None,
        extra={"gated": sites.gated, "batch_size": batch_size, "max_length": max_length},
    )


# ---------------------------------------------------------------------------------------------
# quantiles
# ---------------------------------------------------------------------------------------------


def _parse_quantiles(quantiles) -> list[float]:
    if isinstance(quantiles, (int, float, str)):
        quantiles = [quantiles]
    out = []
    for q in quantiles:
        if isinstance(q, str):
            key = q.strip().lower()
            if key == "median":
                q = 0.5
            elif key.startswith("p") and key[1:].replace(".", "", 1).isdigit():
                q = float(key[1:]) / 100.0
            else:
                raise ValueError(f"Unknown quantile {q!r}: use a float in [0, 1], 'median' or 'pNN' (e.g. 'p90').")
        q = float(q)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"Quantile {q} is outside [0, 1].")
        out.append(q)
    if not out:
        raise ValueError("quantiles is empty: pass at least one quantile.")
    return out


def sorted_quantiles(values: Float[Tensor, "n m"], qs: Sequence[float]) -> Float[Tensor, "q m"]:
    """Exact quantiles along dim 0 with linear interpolation (numpy's default method)."""
    n = values.shape[0]
    if n == 0:
        return torch.full((len(qs), values.shape[1]), math.nan, dtype=torch.float64)
    s, _ = torch.sort(values.to(torch.float64), dim=0)
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        out.append(s[lo] + (s[hi] - s[lo]) * frac if frac else s[lo].clone())
    return torch.stack(out)


def collect_quantiles(
    model,
    corpus,
    mask: Bool[Tensor, "layer neuron"],
    quantiles,
    *,
    site: str = "post",
    langs: Sequence[str] | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    truncation: str = "warn",
    keep_bos: bool = False,
    padding_side: str = "right",
    progress: bool | None = None,
) -> dict[str, Float[Tensor, "q layer neuron"]]:
    """Exact token-level quantiles of the masked neurons, per language (NaN elsewhere).

    Every real token's activation of the ``mask``-ed neurons is kept (memory: tokens x
    masked neurons x 4 bytes per language), then sorted; quantiles interpolate linearly as
    ``numpy.quantile`` does. Used for "median" / percentile steering values (Kojima et al.,
    Int-mu's p75/p90/p95).

    Args:
        mask: bool ``[layer, neuron]`` of the model's shape, e.g. ``NeuronSet.mask("specific", "en")``.
        quantiles: floats in [0, 1], ``"median"`` or ``"pNN"`` strings (one or a list).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> m = torch.zeros(2, 64, dtype=torch.bool); m[1, :3] = True
    >>> q = collect_quantiles(model, {"en": ["a cat sat", "a dog"]}, m, ["median", 0.9])
    >>> q["en"].shape, bool(q["en"][:, 1, :3].isfinite().all()), bool(q["en"][:, 0].isnan().all())
    (torch.Size([2, 2, 64]), True, True)
    """
    check_site(site)
    qs = _parse_quantiles(quantiles)
    corpus = _as_corpus(corpus)
    langs, ids, texts = corpus_langs_texts(corpus, langs)
    sites = neuron_sites(model)
    mask = torch.as_tensor(mask).to("cpu", torch.bool)
    if tuple(mask.shape) != sites.shape:
        raise DataValidationError(
            f"mask has shape {tuple(mask.shape)}, expected the model's [layer, neuron] = {sites.shape}."
        )
    layers = [l for l in range(sites.n_layers) if bool(mask[l].any())]
    out: dict[str, Tensor] = {}
    if not layers:
        for lang in langs:
            out[lang] = torch.full((len(qs),) + sites.shape, math.nan, dtype=torch.float64)
        return out
    cols = {l: mask[l].nonzero().squeeze(1) for l in layers}
    ctx: dict[str, Any] = {}

    def on_values(layer: int, values: Tensor) -> None:
        m = ctx["mask"]
        c = cols[layer].to(values.device)
        sel = values.detach()[m.to(values.device)][:, c]
        ctx["chunks"][layer].append(sel.to("cpu", torch.float32))
        if layer == layers[-1]:
            raise _StopForward

    hooks = _layer_read_hooks(sites, site, layers, on_values)
    n_batches = sum(math.ceil(len(ids) / batch_size) for _ in langs)
    n_trunc = 0
    with _progress(n_batches, progress, "neuron quantiles") as bar:
        for lang in langs:
            ctx["chunks"] = {l: [] for l in layers}
            for _, enc in _batches(
                model, texts[lang], batch_size=batch_size, padding_side=padding_side,
                max_length=max_length, truncation=truncation, keep_bos=keep_bos,
            ):
                n_trunc += enc.n_truncated
                ctx["mask"] = enc.real_mask
                _run_reading(model, enc, layers, hooks)
                bar.update(1)
            res = torch.full((len(qs),) + sites.shape, math.nan, dtype=torch.float64)
            for l in layers:
                vals = torch.cat(ctx["chunks"][l], dim=0)
                res[:, l, cols[l]] = sorted_quantiles(vals, qs)
            out[lang] = res
            ctx["chunks"] = {}
    _truncation_warning(n_trunc, len(ids) * len(langs), max_length, model)
    return out
