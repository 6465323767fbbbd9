"""How stable identified neurons are under resampling of the sentences: split halves and bootstrap.

One forward pass per language computes each sentence's statistics (token count, active count,
sum, sum of squares per neuron) and folds them into one
:class:`~clas_lens.stats.accumulator.Accumulator` per *replicate*, weighted by how often the
replicate draws the sentence (:func:`resample_weights`): a split half draws each of its
sentences once, a bootstrap resample draws ``n`` sentences with replacement, and replicate 0
is always the full sample (every sentence once). Counts stay integers, so each replicate's
:class:`~clas_lens.stats.NeuronStats` is what :func:`~clas_lens.stats.collect_stats` would give
on that multiset of sentences (sums up to float64 rounding). Then:

* :func:`resampled_sets` runs :func:`~clas_lens.neurons.identify_neurons` on every replicate;
* :func:`stability_table` compares them -- ``split="half"``: the two halves of each random split
  with each other; ``split="bootstrap"``: each resample with the full sample -- by the Jaccard
  index of the neuron sets per (category, language, layer);
* :func:`neuron_stability` does both in one call;
* :func:`stability_selection` keeps the neurons found in at least ``min_share`` of the sets.

Jaccard is ``|A & B| / |A | B|`` and NaN when both sets are empty. See docs/methods.md,
"Neuron categories".

>>> from clas_lens.testing import tiny_model
>>> corpus = {"en": ["the cat sat", "a dog ran", "one two", "red sky"],
...           "de": ["die Katze", "ein Hund lief", "eins zwei", "roter Himmel"]}
>>> df = neuron_stability(tiny_model("llama"), corpus, "clas", n_boot=2, site="act")
>>> list(df.columns)
['method', 'category', 'lang', 'layer', 'jaccard', 'n_a', 'n_b', 'n_both', 'replicate']
>>> sorted(df.replicate.unique().tolist()), bool(df.jaccard.dropna().between(0, 1).all())
([0, 1], True)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Int64
from torch import Tensor

from clas_lens.data.corpus import as_corpus
from clas_lens.errors import DataValidationError
from clas_lens.io import sha256_json
from clas_lens.models import model_info
from clas_lens.neurons.identify import identify_neurons
from clas_lens.neurons.neuron_set import NeuronSet
from clas_lens.sites import check_site, neuron_sites
from clas_lens.stats import (
    F16_MAX, Accumulator, NeuronStats, accum_device, corpus_hash, corpus_langs_texts, layer_read_hooks,
    package_versions, read_forward, sentence_batches,
)
from clas_lens.stats.reader import progress_bar, warn_truncated
from clas_lens.vocab import CATEGORIES, DEFAULT_SITE, PER_LANGUAGE_CATEGORIES

__all__ = [
    "SPLITS", "resample_weights", "weighted_stats", "resampled_sets", "set_jaccard", "stability_table",
    "neuron_stability", "stability_selection", "category_langs",
]

#: Resampling schemes of :func:`resample_weights`.
SPLITS: tuple[str, ...] = ("half", "bootstrap")
_COLUMNS = ["method", "category", "lang", "layer", "jaccard", "n_a", "n_b", "n_both", "replicate"]


def resample_weights(n: int, *, split: str = "half", n_boot: int = 10, seed: int = 0) -> Int64[Tensor, "replicate sentence"]:
    """How often each of ``n`` sentences is drawn by each replicate (row 0: the full sample).

    ``split="half"``: ``n_boot`` random splits, rows ``1 + 2r`` and ``2 + 2r`` the two halves of
    split ``r`` (sizes ``n // 2`` and ``n - n // 2``, disjoint). ``split="bootstrap"``:
    ``n_boot`` resamples of ``n`` sentences with replacement, rows ``1 + r``. Seeded (numpy).

    >>> w = resample_weights(5, split="half", n_boot=1)
    >>> w.shape, w[0].tolist(), (w[1] + w[2]).tolist(), w[1:].sum(1).tolist()
    (torch.Size([3, 5]), [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [2, 3])
    >>> resample_weights(4, split="bootstrap", n_boot=3).sum(1).tolist()
    [4, 4, 4, 4]
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: use one of {list(SPLITS)}.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}.")
    if n < 2:
        raise DataValidationError(f"Resampling needs at least 2 sentences; got {n}.")
    rng = np.random.default_rng(seed)
    rows = [np.ones(n, dtype=np.int64)]
    for _ in range(n_boot):
        if split == "half":
            perm = rng.permutation(n)
            for part in (perm[: n // 2], perm[n // 2 :]):
                w = np.zeros(n, dtype=np.int64)
                w[part] = 1
                rows.append(w)
        else:
            rows.append(np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.int64))
    return torch.from_numpy(np.stack(rows))


def weighted_stats(
    model,
    corpus,
    weights: Int64[Tensor, "replicate sentence"],
    *,
    site: str = DEFAULT_SITE,
    layers=None,
    threshold: float = 0.0,
    batch_size: int = 16,
    max_length: int | None = None,
    per_sentence: bool = False,
    langs: Sequence[str] | None = None,
    progress: bool | None = None,
) -> list[NeuronStats]:
    """One :class:`~clas_lens.stats.NeuronStats` per row of ``weights``, from one forward pass.

    ``weights[r, s]`` (an integer >= 0) is how often replicate ``r`` counts sentence ``s`` (corpus
    id order). Arguments as in :func:`~clas_lens.stats.collect_stats` (padding on the right,
    BOS excluded). ``per_sentence=True`` keeps per-sentence means (for method ``"ap"``), each
    sentence repeated as often as it is drawn.

    >>> import torch
    >>> from clas_lens.stats import collect_stats
    >>> from clas_lens.testing import tiny_model
    >>> model, corpus = tiny_model("gpt2"), {"en": ["one two", "three", "four five six"]}
    >>> full, first = weighted_stats(model, corpus, torch.tensor([[1, 1, 1], [1, 0, 0]]), batch_size=1)
    >>> ref = collect_stats(model, {"en": ["one two"]}, batch_size=1)
    >>> first.n_tokens("en") == ref.n_tokens("en"), torch.equal(first.active_prob("en"), ref.active_prob("en"))
    (True, True)
    """
    check_site(site)
    corpus = as_corpus(corpus, what="weighted_stats")
    langs, ids, texts = corpus_langs_texts(corpus, langs)
    W = torch.as_tensor(weights)
    if W.ndim != 2 or W.shape[1] != len(ids) or W.dtype.is_floating_point or bool((W < 0).any()):
        raise DataValidationError(
            f"weights must be non-negative integers of shape (replicates, {len(ids)} sentences); "
            f"got {tuple(W.shape)} {W.dtype}."
        )
    sites = neuron_sites(model)
    layers = sites.check_layers(layers)
    pos_of = {l: i for i, l in enumerate(layers)}
    dev = accum_device(model)
    Wd = W.to(dev, torch.float64)  # integer counts: exact in float64
    n_rep, n_l, d, thr = W.shape[0], len(layers), sites.d_mlp, float(threshold)
    ctx: dict[str, Any] = {}

    def on_values(layer: int, values: Tensor) -> None:
        i, mask, w = pos_of[layer], ctx["mask"], ctx["w"]  # w: [replicate, batch]
        v = values.detach().to(dev)
        m = mask.unsqueeze(-1)
        v64 = torch.where(m, v.to(torch.float64), 0.0)
        total = v64.sum(1)  # per sentence: [batch, d]
        ctx["active"][:, i] += w @ (m & (v > thr)).sum(1).to(torch.float64)
        ctx["sum"][:, i] += w @ total
        ctx["sumsq"][:, i] += w @ (v64 * v64).sum(1)
        if ctx["sent"] is not None:
            s = total / mask.sum(1, keepdim=True).clamp(min=1)
            ctx["sent"][:, i] = s.clamp(-F16_MAX, F16_MAX).to("cpu", torch.float16)

    hooks = layer_read_hooks(sites, site, layers, on_values)
    out_state: list[dict[str, Accumulator]] = [{} for _ in range(n_rep)]
    sent_store: dict[str, Tensor] = {}
    n_trunc = 0
    with progress_bar(len(langs) * math.ceil(len(ids) / batch_size), progress, "resampled stats") as bar:
        for lang in langs:
            zeros = lambda: torch.zeros((n_rep, n_l, d), dtype=torch.float64, device=dev)  # noqa: E731
            ctx.update(active=zeros(), sum=zeros(), sumsq=zeros())
            count = torch.zeros(n_rep, dtype=torch.float64, device=dev)
            sents = torch.empty((len(ids), n_l, d), dtype=torch.float16) if per_sentence else None
            for idx, enc in sentence_batches(model, texts[lang], batch_size=batch_size, max_length=max_length):
                n_trunc += enc.n_truncated
                ctx["mask"] = enc.real_mask.to(dev)
                ctx["w"] = Wd[:, idx]
                ctx["sent"] = torch.empty((len(idx), n_l, d), dtype=torch.float16) if per_sentence else None
                read_forward(model, enc, hooks, stop_after_layer=layers[-1])
                count += ctx["w"] @ ctx["mask"].sum(1).to(torch.float64)
                if per_sentence:
                    sents[torch.tensor(idx)] = ctx["sent"]
                bar.update(1)
            for r in range(n_rep):
                out_state[r][lang] = Accumulator(
                    count[r].round().to(torch.int64), ctx["active"][r].round().to(torch.int64), ctx["sum"][r], ctx["sumsq"][r]
                )
            if per_sentence:
                sent_store[lang] = sents
    warn_truncated(n_trunc, len(ids) * len(langs), max_length, model)
    h = corpus_hash(corpus)
    info = model_info(model).to_dict()
    out = []
    for r in range(n_rep):
        draw = torch.repeat_interleave(torch.arange(len(ids)), W[r].cpu())
        out.append(NeuronStats(
            site=site, threshold=thr, layers=layers, shape=sites.shape, model_info=info, state=out_state[r],
            corpus_hashes=[sha256_json({"corpus": h, "weights": W[r].tolist()})] if h else [],
            versions=package_versions(), n_truncated=n_trunc,
            sentences={l: t[draw] for l, t in sent_store.items()} if per_sentence else None,
            sentence_ids={l: [ids[i] for i in draw.tolist()] for l in langs} if per_sentence else None,
            extra={"gated": sites.gated, "batch_size": batch_size, "max_length": max_length, "weighted": True},
        ))
    return out


def resampled_sets(
    model,
    corpus,
    method: str = "clas",
    *,
    n_boot: int = 10,
    split: str = "half",
    seed: int = 0,
    site: str = DEFAULT_SITE,
    layers=None,
    threshold: float = 0.0,
    batch_size: int = 16,
    max_length: int | None = None,
    langs: Sequence[str] | None = None,
    progress: bool | None = None,
    **identify_kwargs,
) -> tuple[NeuronSet, list[NeuronSet]]:
    """``(full, sets)``: neurons identified on the full sample and on every replicate.

    ``sets`` follows :func:`resample_weights` without its row 0 (for ``"half"``: the two halves
    of split ``r`` are ``sets[2r]`` and ``sets[2r + 1]``). ``identify_kwargs`` go to
    :func:`~clas_lens.neurons.identify_neurons`.

    >>> from clas_lens.testing import tiny_model
    >>> full, sets = resampled_sets(tiny_model("gpt2"), {"en": ["a b", "c d", "e"], "de": ["f", "g h", "i"]},
    ...                             "mean", n_boot=2, split="bootstrap", top_fraction=0.1)
    >>> full.method, len(sets)
    ('mean', 2)
    """
    corpus = as_corpus(corpus, what="resampled_sets")
    W = resample_weights(len(corpus.ids), split=split, n_boot=n_boot, seed=seed)
    stats = weighted_stats(
        model, corpus, W, site=site, layers=layers, threshold=threshold, batch_size=batch_size,
        max_length=max_length, per_sentence=method == "ap", langs=langs, progress=progress,
    )
    sets = [identify_neurons(s, method, **identify_kwargs) for s in stats]
    return sets[0], sets[1:]


def category_langs(ns: NeuronSet, category: str) -> list[str | None]:
    """The language keys of ``category``: ``[None]`` for the language-agnostic standard categories
    (all_shared, partial_shared, non_activated), else every language of the set.

    >>> import torch
    >>> ns = NeuronSet(masks={"specific": {"en": torch.zeros(1, 2, dtype=torch.bool)}}, langs=["en", "de"],
    ...                site="act", model_info={}, method="m", params={}, stats_ref=None, layers=[0], shape=(1, 2))
    >>> category_langs(ns, "specific"), category_langs(ns, "all_shared")
    (['en', 'de'], [None])
    """
    if category in CATEGORIES and category not in PER_LANGUAGE_CATEGORIES:
        return [None]
    return list(ns.langs)


def set_jaccard(a: NeuronSet, b: NeuronSet, *, categories: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (category, lang, measured layer): ``jaccard``, ``n_a``, ``n_b``, ``n_both`` of two sets.

    >>> import torch
    >>> def one(cols):
    ...     m = torch.zeros(1, 4, dtype=torch.bool); m[0, cols] = True
    ...     return NeuronSet(masks={"specific": {"en": m}}, langs=["en"], site="act", model_info={},
    ...                      method="m", params={}, stats_ref=None, layers=[0], shape=(1, 4))
    >>> row = set_jaccard(one([0, 1]), one([1, 2])).iloc[0]
    >>> round(float(row.jaccard), 3), int(row.n_a), int(row.n_b), int(row.n_both)
    (0.333, 2, 2, 1)
    """
    if a.shape != b.shape or a.layers != b.layers:
        raise DataValidationError(f"Neuron sets differ in shape or layers: {a.shape} {a.layers} vs {b.shape} {b.layers}.")
    cats = list(categories) if categories is not None else [c for c in a.categories if c in b.categories]
    rows = []
    for cat in cats:
        for lang in category_langs(a, cat):
            ma, mb = a.mask(cat, lang), b.mask(cat, lang)
            na, nb, both = ma.sum(1), mb.sum(1), (ma & mb).sum(1)
            for layer in a.layers:
                union = int(na[layer] + nb[layer] - both[layer])
                rows.append({
                    "category": cat, "lang": lang, "layer": layer,
                    "jaccard": int(both[layer]) / union if union else math.nan,
                    "n_a": int(na[layer]), "n_b": int(nb[layer]), "n_both": int(both[layer]),
                })
    return pd.DataFrame(rows, columns=["category", "lang", "layer", "jaccard", "n_a", "n_b", "n_both"])


def stability_table(full: NeuronSet, sets: Sequence[NeuronSet], split: str = "half") -> pd.DataFrame:
    """Tidy Jaccard table of :func:`resampled_sets` output.

    ``split="half"``: replicate ``r`` compares ``sets[2r]`` (``n_a``) with ``sets[2r + 1]``
    (``n_b``); ``"bootstrap"``: ``sets[r]`` (``n_a``) with ``full`` (``n_b``). Columns: method,
    category, lang, layer, jaccard, n_a, n_b, n_both, replicate.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: use one of {list(SPLITS)}.")
    if split == "half":
        if len(sets) % 2:
            raise DataValidationError(f"split='half' needs pairs of sets; got {len(sets)}.")
        pairs = [(sets[2 * r], sets[2 * r + 1]) for r in range(len(sets) // 2)]
    else:
        pairs = [(s, full) for s in sets]
    parts = []
    for r, (a, b) in enumerate(pairs):
        df = set_jaccard(a, b)
        df.insert(0, "method", full.method)
        df["replicate"] = r
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(parts, ignore_index=True)[_COLUMNS]


def neuron_stability(
    model, corpus, method: str = "clas", *, n_boot: int = 10, split: str = "half", seed: int = 0, **kwargs
) -> pd.DataFrame:
    """Jaccard stability of ``identify_neurons(..., method)`` under resampling of the sentences.

    ``split="half"``: ``n_boot`` random splits of the sentence ids into two disjoint halves; the
    sets found on the halves are compared. ``split="bootstrap"``: ``n_boot`` resamples of the
    ids with replacement, each compared with the set found on the full sample. Other keywords
    go to :func:`resampled_sets` (``site``, ``layers``, ``threshold``, ``batch_size``,
    ``max_length``, ``langs``, ``progress``) and on to ``identify_neurons`` (method parameters,
    e.g. ``prob_threshold``, ``margin``). Returns the table of :func:`stability_table`, one row
    per (replicate, category, lang, measured layer); ``lang`` is None for language-agnostic
    categories. Halves hold half the tokens, so their sets are noisier than the full sample's:
    split-half Jaccard is a conservative (lower) estimate of the full sample's stability.

    >>> from clas_lens.testing import tiny_model
    >>> df = neuron_stability(tiny_model("gemma3"), {"en": ["a b c", "d e", "f g", "h"], "sw": ["i j", "k", "l m", "n o"]},
    ...                       "lape", n_boot=2, split="bootstrap", site="act", top_rate=0.1)
    >>> df.groupby("lang").replicate.nunique().to_dict()
    {'en': 2, 'sw': 2}
    """
    full, sets = resampled_sets(model, corpus, method, n_boot=n_boot, split=split, seed=seed, **kwargs)
    return stability_table(full, sets, split)


def stability_selection(sets: Sequence[NeuronSet], min_share: float = 0.8) -> NeuronSet:
    """A NeuronSet of the neurons found in at least ``min_share`` of ``sets``, per category and lang.

    All sets must come from the same method, languages and shape (e.g. the ``sets`` of
    :func:`resampled_sets`). Metadata are the first set's; ``params`` gain
    ``stability_selection = {"min_share", "n_sets"}``.

    >>> import torch
    >>> def one(cols):
    ...     m = torch.zeros(1, 4, dtype=torch.bool); m[0, cols] = True
    ...     return NeuronSet(masks={"specific": {"en": m}}, langs=["en"], site="act", model_info={},
    ...                      method="m", params={}, stats_ref=None, layers=[0], shape=(1, 4))
    >>> sel = stability_selection([one([0, 1]), one([1, 2]), one([1, 3]), one([0, 1])], min_share=0.5)
    >>> sel.mask("specific", "en").nonzero()[:, 1].tolist()
    [0, 1]
    """
    sets = list(sets)
    if not sets:
        raise DataValidationError("stability_selection needs at least one NeuronSet.")
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1]; got {min_share}.")
    first = sets[0]
    for s in sets[1:]:
        if (s.method, s.langs, s.shape, s.categories) != (first.method, first.langs, first.shape, first.categories):
            raise DataValidationError(
                "stability_selection needs sets of one method, languages, shape and categories; got "
                f"{(s.method, s.langs, s.shape, s.categories)} vs {(first.method, first.langs, first.shape, first.categories)}."
            )
    need = min_share * len(sets) - 1e-9
    masks: dict[str, dict[str | None, Tensor]] = {}
    for cat in first.categories:
        masks[cat] = {}
        for lang in category_langs(first, cat):
            votes = sum(s.mask(cat, lang).to(torch.int32) for s in sets)
            masks[cat][lang] = votes >= need
    params = dict(first.params, stability_selection={"min_share": float(min_share), "n_sets": len(sets)})
    return NeuronSet(
        masks=masks, langs=first.langs, site=first.site, model_info=first.model_info, method=first.method,
        params=params, stats_ref=first.stats_ref, layers=first.layers, shape=first.shape,
    )
