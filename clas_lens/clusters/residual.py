"""Residual-stream representations of a parallel corpus, optionally under steering:
:func:`residual_reps`.

For every sentence, language and layer it reads ``blocks.{l}.hook_resid_post`` through the one
forward reader (``clas_lens.stats.reader.read_forward``, which stops after the deepest
requested block) and pools it over the sentence: ``"mean"`` over real tokens (padding and BOS
excluded) or the ``"last"`` real token. The result is a :class:`~clas_lens.clusters.reps.Reps`.
See docs/methods.md, "Clusters and the divergence test".

>>> from clas_lens.testing import tiny_model
>>> r = residual_reps(tiny_model("llama"), {"en": ["the cat", "a dog"], "de": ["die Katze", "ein Hund"]})
>>> r.vectors.shape, r.lang_set
(torch.Size([2, 4, 32]), ['en', 'de'])
"""
from __future__ import annotations

import contextlib
import json
import math
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from clas_lens.clusters.reps import POOLINGS, Reps
from clas_lens.data.corpus import as_corpus
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.models import model_info
from clas_lens.sites import neuron_sites
from clas_lens.stats.reader import progress_bar, read_forward, sentence_batches, warn_truncated
from clas_lens.steering import as_interventions, steer

__all__ = ["residual_reps"]


def _needs_lang(iv) -> bool:
    if hasattr(iv, "needs_lang"):
        return bool(iv.needs_lang)
    return hasattr(iv, "for_lang") and getattr(iv, "target_lang", "") is None


def _for_lang(interventions: list, lang: str) -> list:
    """Per-language templates (``needs_lang``, e.g. ``target_lang=None``) are bound to the
    language of the sentences they run on, as ``evaluate`` does."""
    return [iv.for_lang(lang) if _needs_lang(iv) else iv for iv in interventions]


def _describe(iv) -> dict[str, Any]:
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
    return steer(model, *interventions) if interventions else contextlib.nullcontext()


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
    ids: Sequence[str] | None = None,
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
        batch_size: sentences per forward pass (longest first inside a language, to cut padding).
        langs: a subset of the corpus languages (default all, in corpus order).
        keep_bos: include the BOS position in mean pooling.
        condition: the label of the result; default ``"base"`` without intervention, else
            ``"steered"``.
        padding_side: padding of the batches; the result does not depend on it.
        max_length: truncate longer texts (with one warning; default the model context).
        ids: a subset of the corpus ids to use, in the given order (default all, in corpus
            order), e.g. the held-out sentences that did not choose the neurons. Passing
            ``corpus.subset(ids=...)`` instead gives the same vectors.

    The forward runs through ``clas_lens.stats.reader.read_forward`` and stops after the
    deepest requested block, so the final norm and the unembedding never run.
    Vectors are pooled in float64 and stored as float32.

    ``Reps.meta`` records how they were made: the hook, ``keep_bos``, ``max_length``, the
    interventions, the corpus hash (``corpus_hash``, of the corpus passed, when it has
    ``.hash()``), and which sentences were used: ``sentence_ids`` (the ids, in order),
    ``n_sentences``, ``ids_sha256`` (a hash of that list, to check disjointness or identity
    of two runs quickly) and ``id_subset`` (True when ``ids`` picked a subset).

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
    >>> held_out = residual_reps(model, {"en": ["a cat", "a dog"], "es": ["un gato", "un perro"]},
    ...                          layers=[-1], ids=["1"])
    >>> held_out.ids, held_out.meta["sentence_ids"], held_out.meta["id_subset"]
    (['1', '1'], ['1'], True)
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}.")
    corpus = as_corpus(corpus, what="residual_reps")
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
    corpus_ids = [str(i) for i in corpus.ids]
    if ids is None:
        ids, pick = corpus_ids, None
    else:
        ids = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        pos = {i: k for k, i in enumerate(corpus_ids)}
        unknown = [i for i in ids if i not in pos]
        if unknown:
            raise DataValidationError(
                f"{len(unknown)} of the requested ids are not in the corpus (e.g. {unknown[:3]}); "
                f"it has {len(corpus_ids)} ids, e.g. {corpus_ids[:3]}."
            )
        if len(set(ids)) != len(ids):
            raise DataValidationError("residual_reps got the same id twice in ids=: ids must be unique.")
        pick = [pos[i] for i in ids]
    if not ids or not langs:
        raise DataValidationError("residual_reps got an empty corpus (no sentences or no languages).")
    layer_list = neuron_sites(model).check_layers(layers)
    pos_of = {l: i for i, l in enumerate(layer_list)}
    d_model = int(model.cfg.d_model)
    interventions = as_interventions(intervention)

    n_per_lang = len(ids)
    out = torch.empty((len(layer_list), n_per_lang * len(langs), d_model), dtype=torch.float32)
    captured: dict[int, Tensor] = {}

    def grab(t, hook):
        captured[hook.layer()] = t
        return t

    hooks = [(f"blocks.{l}.hook_resid_post", grab) for l in layer_list]
    n_truncated = 0
    n_batches = len(langs) * math.ceil(n_per_lang / batch_size)
    bar = progress_bar(n_batches, None, "residual_reps")
    try:
        for li, lang in enumerate(langs):
            texts = list(corpus.texts(lang))
            if len(texts) != len(corpus_ids):
                raise DataValidationError(
                    f"corpus.texts({lang!r}) has {len(texts)} texts but corpus.ids has {len(corpus_ids)}."
                )
            if pick is not None:
                texts = [texts[k] for k in pick]
            batches = sentence_batches(
                model, texts, batch_size=batch_size, padding_side=padding_side,
                max_length=max_length, keep_bos=keep_bos,
            )
            with _steer_context(model, _for_lang(interventions, lang)):
                for chunk, enc in batches:
                    n_truncated += enc.n_truncated
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
                    read_forward(model, enc, hooks, stop_after_layer=max(layer_list))
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
    warn_truncated(n_truncated, n_per_lang * len(langs), max_length, model)

    meta: dict[str, Any] = {
        "hook": "blocks.{layer}.hook_resid_post",
        "keep_bos": keep_bos,
        "max_length": max_length,
        "interventions": [_describe(iv) for iv in interventions],
        "per_lang_interventions": any(_needs_lang(iv) for iv in interventions),
        "sentence_ids": list(ids),
        "n_sentences": len(ids),
        "ids_sha256": sha256_json(list(ids)),
        "id_subset": pick is not None,
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
