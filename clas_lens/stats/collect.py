"""Collecting neuron statistics over a parallel corpus: :func:`collect_stats` and its corpus helpers.

:func:`collect_stats` runs a model over every language of a parallel corpus and folds, per
language and per (layer, neuron), the token count, the count of active tokens
(``> threshold``), the sum and the sum of squares into an
:class:`~clas_lens.stats.accumulator.Accumulator` (float64 / int64). Only real tokens count:
padding and the BOS token are excluded (``Encoded.real_mask``; ``keep_bos=True`` keeps BOS).
Memory does not grow with the corpus, except for the opt-in per-sentence store
(``per_sentence=True``, float16, needed by the AP method). The forward stops right after the
last layer read (:func:`~clas_lens.stats.reader.read_forward`), so the unembedding is never
computed. See docs/methods.md, "Neuron sites" and "Neuron categories".

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

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from clas_lens.checks import finite_float, positive_int
from clas_lens.data.corpus import as_corpus
from clas_lens.errors import DataValidationError
from clas_lens.models import model_info
from clas_lens.sites import check_site, neuron_sites
from clas_lens.stats.accumulator import Accumulator, accum_device
from clas_lens.stats.neuron_stats import NeuronStats, package_versions
from clas_lens.stats.reader import layer_read_hooks, progress_bar, read_forward, sentence_batches, warn_truncated
from clas_lens.vocab import DEFAULT_SITE

__all__ = ["collect_stats", "corpus_langs_texts", "corpus_hash", "F16_MAX"]

#: Largest finite float16: per-sentence means beyond it are clipped before storage.
F16_MAX = 65504.0


def corpus_hash(corpus: Any) -> str | None:
    """``corpus.hash()`` when the corpus has one (a dict corpus does), else None."""
    h = getattr(corpus, "hash", None)
    if callable(h):
        return str(h())
    return None


def corpus_langs_texts(corpus: Any, langs: Sequence[str] | None) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``(langs, ids, {lang: texts})`` of a corpus, restricted to ``langs`` (validated).

    >>> corpus_langs_texts({"en": ["a", "b"], "de": ["c", "d"]}, ["de"])
    (['de'], ['0', '1'], {'de': ['c', 'd']})
    """
    corpus = as_corpus(corpus, what="collect_stats")
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


def collect_stats(
    model,
    corpus,
    *,
    site: str = DEFAULT_SITE,
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
        site: ``"post"`` (down projection input, the default) or ``"act"`` (act_fn(gate), LAPE's site).
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
    positive_int(batch_size, "batch_size")
    positive_int(max_length, "max_length", none_ok=True)
    finite_float(threshold, "threshold")
    if truncation not in ("warn", "error"):
        raise ValueError(f"truncation={truncation!r}: use 'warn' or 'error'.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side={padding_side!r}: use 'left' or 'right'.")
    corpus = as_corpus(corpus, what="collect_stats")
    langs, ids, texts = corpus_langs_texts(corpus, langs)
    sites = neuron_sites(model)
    layers = sites.check_layers(layers)
    pos_of = {l: i for i, l in enumerate(layers)}
    dev = accum_device(model)
    n_l, d = len(layers), sites.d_mlp
    thr = float(threshold)

    state: dict[str, Accumulator] = {}
    sent_store: dict[str, Tensor] | None = {} if per_sentence else None
    ctx: dict[str, Any] = {}

    def on_values(layer: int, values: Tensor) -> None:
        i = pos_of[layer]
        mask = ctx["mask"]
        v = values.detach()
        if v.device != dev:
            v = v.to(dev)
        ctx["state"].add(i, v[mask], thr)  # real tokens only: [n_real, d]
        if ctx["sent"] is not None:
            w = mask.to(torch.float64).unsqueeze(-1)
            s = (v.to(torch.float64) * w).sum(1) / w.sum(1).clamp(min=1.0)
            ctx["sent"][:, i] = s.clamp(-F16_MAX, F16_MAX).to("cpu", torch.float16)

    hooks = layer_read_hooks(sites, site, layers, on_values)

    n_batches = sum(math.ceil(len(ids) / batch_size) for _ in langs)
    n_trunc = 0
    with progress_bar(n_batches, progress, "neuron stats") as bar:
        for lang in langs:
            st = Accumulator.zeros(n_l, d, device=dev)
            ctx["state"] = st
            sents = torch.empty((len(ids), n_l, d), dtype=torch.float16) if per_sentence else None
            for idx, enc in sentence_batches(
                model, texts[lang], batch_size=batch_size, padding_side=padding_side,
                max_length=max_length, truncation=truncation, keep_bos=keep_bos,
            ):
                n_trunc += enc.n_truncated
                mask = enc.real_mask.to(dev)
                ctx["mask"] = mask
                ctx["sent"] = torch.empty((len(idx), n_l, d), dtype=torch.float16) if per_sentence else None
                read_forward(model, enc, hooks, stop_after_layer=layers[-1])
                st.count_tokens(int(mask.sum()))
                if per_sentence:
                    sents[torch.tensor(idx)] = ctx["sent"]
                bar.update(1)
            state[lang] = st
            if sent_store is not None:
                sent_store[lang] = sents
    warn_truncated(n_trunc, len(ids) * len(langs), max_length, model)
    h = corpus_hash(corpus)
    return NeuronStats(
        site=site,
        threshold=thr,
        layers=layers,
        shape=sites.shape,
        model_info=model_info(model).to_dict(),
        state=state,
        keep_bos=keep_bos,
        corpus_hashes=[h] if h else [],
        versions=package_versions(),
        n_truncated=n_trunc,
        sentences=sent_store,
        sentence_ids={lang: ids for lang in langs} if per_sentence else None,
        extra={"gated": sites.gated, "batch_size": batch_size, "max_length": max_length},
    )
