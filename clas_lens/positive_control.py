"""Positive control for language neurons: deactivate each language's neurons, watch its NLL rise.

If the neurons that a method (LAPE, CLAS ``specific``, ...) calls language-specific for ``L``
really carry ``L``, zeroing them should raise the language-model loss on held-out text in ``L``
more than on text in other languages (Tang et al. 2024 report this for LAPE neurons).

* :func:`deactivation_matrix` -- for each language ``L`` with neurons in the set, zero them
  (:class:`~clas_lens.steering.Deactivate` on the ``"specific"`` mask of ``L``) and measure, on
  every evaluated language's held-out sentences, the mean paired change in per-sentence NLL
  (:func:`~clas_lens.lm_nll.sentence_nll`, nats/token) against the unsteered model, with a
  Student-t interval (:func:`~clas_lens.metrics.t_interval`). Tidy: one row per
  (deactivated, lang).
* :func:`diagonal_dominance` -- does each deactivation hurt its own language most? The score
  is the mean diagonal delta minus the mean off-diagonal delta; its p-value comes from
  permuting the pairing of rows with columns.
* :func:`figure` -- the matrix as a plotly heatmap (pure; takes the frame).

Held-out sentences (``ids``) should be disjoint from those the neurons were identified on.
See docs/methods.md, "Peer methods" (LAPE) and "Statistical tests".

>>> import torch
>>> from clas_lens.neurons import identify_neurons
>>> from clas_lens.stats import collect_stats
>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> corpus = {"en": ["the cat sat", "a dog ran", "red sky", "one two"],
...           "de": ["die Katze sass", "ein Hund lief", "roter Himmel", "eins zwei"]}
>>> ns = identify_neurons(collect_stats(model, corpus, site="act"), "lape", top_rate=0.1)
>>> m = deactivation_matrix(model, corpus, ns)
>>> m.shape, list(m.columns[:6])
((4, 9), ['deactivated', 'lang', 'delta_nll', 'ci_low', 'ci_high', 'n'])
>>> sorted(diagonal_dominance(m))[:4]
['diag_mean', 'method', 'n_langs', 'n_perm']
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from clas_lens.data.corpus import as_corpus
from clas_lens.errors import DataValidationError
from clas_lens.lm_nll import sentence_nll
from clas_lens.metrics import t_interval
from clas_lens.specs import resolve_layers
from clas_lens.steering import Deactivate, steer
from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = ["deactivation_matrix", "diagonal_dominance", "figure", "COLUMNS"]

#: Columns of :func:`deactivation_matrix`.
COLUMNS: tuple[str, ...] = (
    "deactivated", "lang", "delta_nll", "ci_low", "ci_high", "n", "n_neurons", "nll_unsteered", "nll_steered",
)


def _held_out_texts(corpus, langs: Sequence[str], ids: Sequence[str] | None) -> dict[str, list[str]]:
    all_ids = [str(i) for i in corpus.ids]
    if ids is None:
        pos = list(range(len(all_ids)))
    else:
        where = {i: p for p, i in enumerate(all_ids)}
        missing = [str(i) for i in ids if str(i) not in where]
        if missing:
            raise DataValidationError(f"Unknown id {missing[0]!r} ({len(missing)} unknown); the corpus has e.g. {all_ids[:3]}.")
        pos = [where[str(i)] for i in ids]
    if not pos:
        raise DataValidationError("deactivation_matrix needs at least one held-out sentence.")
    out = {}
    for lang in langs:
        texts = list(corpus.texts(lang))
        out[lang] = [texts[p] for p in pos]
    return out


def deactivation_matrix(
    model,
    corpus,
    neurons,
    *,
    langs: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    layers: Any = None,
    batch_size: int = 16,
    category: str = "specific",
    strength: float = 1.0,
    confidence: float = DEFAULT_CONFIDENCE,
    max_length: int | None = None,
) -> pd.DataFrame:
    """Mean change in per-sentence NLL when each language's neurons are zeroed.

    Args:
        model: a TransformerBridge (the one the neurons were identified on).
        corpus: a parallel corpus or ``{lang: [texts]}``; only the ``ids`` sentences are used.
        neurons: a :class:`~clas_lens.neurons.NeuronSet` with per-language ``category`` masks,
            e.g. from ``identify_neurons(stats, "lape")`` or ``"clas"``.
        langs: languages evaluated, and deactivated where they have neurons (default: the
            set's languages present in the corpus). A language with no neuron (in ``layers``)
            is not deactivated (a warning names it) but still evaluated.
        ids: held-out sentence ids (default: every sentence of the corpus).
        layers: layer spec restricting the deactivation (default: every layer).
        batch_size, max_length: as in :func:`~clas_lens.lm_nll.sentence_nll`.
        category: the per-language category zeroed (``"specific"``).
        strength: ``Deactivate`` strength, ``h' = (1 - strength) * h`` (1: zero).
        confidence: level of the t interval.

    Returns:
        DataFrame with :data:`COLUMNS`: ``delta_nll`` = mean over sentences of steered minus
        unsteered NLL (nats/token; positive: the deactivation hurts), ``ci_low``/``ci_high``
        its paired t interval, ``n`` the sentences with a finite NLL, ``n_neurons`` the
        neurons zeroed, and the two mean NLLs. Rows: deactivated language major, ``lang`` minor.
    """
    corpus = as_corpus(corpus, what="deactivation_matrix")
    if langs is None:
        langs = [l for l in neurons.langs if l in corpus.langs]
    elif isinstance(langs, str):
        langs = [langs]
    langs = list(langs)
    unknown = [l for l in langs if l not in corpus.langs]
    if unknown or not langs:
        raise DataValidationError(f"Languages {unknown or langs} are not in the corpus (it has {list(corpus.langs)}).")
    neurons.check_model(model)
    texts = _held_out_texts(corpus, langs, ids)
    rows_of = resolve_layers(layers, neurons.shape[0])
    deactivated, n_neurons = [], {}
    for lang in langs:
        if lang not in neurons.langs:
            continue
        n = int(neurons.mask(category, lang)[rows_of].sum())
        if n:
            deactivated.append(lang)
            n_neurons[lang] = n
    skipped = [l for l in langs if l not in deactivated]
    if skipped:
        warnings.warn(f"No {category!r} neurons to deactivate for {skipped} (in the layers chosen).", stacklevel=2)
    nll = lambda lang: sentence_nll(model, texts[lang], batch_size=batch_size, max_length=max_length)  # noqa: E731
    base = {lang: nll(lang) for lang in langs}
    rows = []
    for d in deactivated:
        iv = Deactivate(neurons, target_lang=d, strength=strength, layers=layers, site=neurons.site, category=category)
        with steer(model, iv):
            steered = {lang: nll(lang) for lang in langs}
        for lang in langs:
            ok = torch.isfinite(base[lang]) & torch.isfinite(steered[lang])
            diffs = (steered[lang] - base[lang])[ok].numpy()
            lo, hi = t_interval(diffs, confidence) if diffs.size else (math.nan, math.nan)
            rows.append({
                "deactivated": d, "lang": lang,
                "delta_nll": float(diffs.mean()) if diffs.size else math.nan,
                "ci_low": lo, "ci_high": hi, "n": int(diffs.size), "n_neurons": n_neurons[d],
                "nll_unsteered": float(base[lang][ok].mean()) if diffs.size else math.nan,
                "nll_steered": float(steered[lang][ok].mean()) if diffs.size else math.nan,
            })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _square(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """The deactivated x lang matrix of ``value`` restricted to languages in both roles."""
    for col in ("deactivated", "lang", value):
        if col not in frame.columns:
            raise DataValidationError(f"The frame lacks column {col!r}: pass deactivation_matrix output.")
    mat = frame.pivot(index="deactivated", columns="lang", values=value)
    both = [l for l in dict.fromkeys(frame["deactivated"]) if l in mat.columns]
    return mat.loc[both, both]


def diagonal_dominance(
    frame: pd.DataFrame, n_perm: int = 2000, seed: int = 0, *, value: str = "delta_nll"
) -> dict[str, Any]:
    """Does deactivating ``L``'s neurons hurt ``L`` most? Score and permutation p-value.

    On the square part of the matrix (languages both deactivated and evaluated, ``k`` of them)
    the score is ``mean(diagonal) - mean(off-diagonal)`` of ``value``. Under the null the
    pairing of deactivated languages with evaluated ones carries no information, so the
    columns are permuted as a whole (row and column effects -- a deactivation that hurts
    everything, a language that suffers from anything -- are kept) and the score recomputed.
    One-sided p-value (large scores): all ``k!`` permutations when ``k! <= n_perm`` (exact,
    the identity included, so ``p >= 1/k!``: 1/6 for 3 languages, 1/24 for 4, 1/120 for 5),
    else ``n_perm`` random ones with ``(1 + hits) / (1 + n_perm)``.

    Also reported, without a test: ``share_row_max``, the share of rows whose diagonal cell
    is the row's largest.

    Returns ``{"score", "p_value", "diag_mean", "off_mean", "share_row_max", "n_langs",
    "n_perm", "method"}`` (method ``"exact"`` or ``"monte-carlo"``).

    >>> df = pd.DataFrame({"deactivated": list("aabb"), "lang": list("abab"), "delta_nll": [1.0, 0.1, 0.2, 0.8]})
    >>> r = diagonal_dominance(df)
    >>> round(r["score"], 2), r["p_value"], r["method"], r["share_row_max"]
    (0.75, 0.5, 'exact', 1.0)
    """
    mat = _square(frame, value)
    k = mat.shape[0]
    if k < 2:
        raise DataValidationError(f"diagonal_dominance needs at least 2 languages deactivated and evaluated; got {k}.")
    M = mat.to_numpy(dtype=np.float64)
    if not np.isfinite(M).all():
        raise DataValidationError("The matrix has missing or non-finite cells: every cell needs a value.")
    total = M.sum()

    def score(perms: np.ndarray) -> np.ndarray:  # perms: [r, k] column of each row
        diag = M[np.arange(k), perms].mean(1)
        return diag - (total - k * diag) / (k * k - k)

    obs = float(score(np.arange(k)[None])[0])
    tol = 1e-12 * max(1.0, float(np.abs(M).sum()))
    if math.factorial(k) <= n_perm:
        perms = np.array(list(itertools.permutations(range(k))))
        hits = int((score(perms) >= obs - tol).sum())
        p, method, n_used = hits / len(perms), "exact", len(perms)
    else:
        rng = np.random.default_rng(seed)
        perms = np.argsort(rng.random((n_perm, k)), axis=1)
        hits = int((score(perms) >= obs - tol).sum())
        p, method, n_used = (1 + hits) / (1 + n_perm), "monte-carlo", n_perm
    diag = np.diag(M)
    return {
        "score": obs,
        "p_value": float(p),
        "diag_mean": float(diag.mean()),
        "off_mean": float((total - diag.sum()) / (k * k - k)),
        "share_row_max": float((M.argmax(1) == np.arange(k)).mean()),
        "n_langs": k,
        "n_perm": n_used,
        "method": method,
    }


def figure(frame: pd.DataFrame, *, value: str = "delta_nll", title: str | None = None) -> go.Figure:
    """Heatmap of ``value`` (rows: deactivated language, columns: evaluated language).

    Cells show the value and, when the frame has them, its interval; the colour scale is
    centred on 0 (red: the deactivation raises the NLL).

    >>> df = pd.DataFrame({"deactivated": list("aabb"), "lang": list("abab"), "delta_nll": [1.0, 0.1, 0.2, 0.8],
    ...                    "ci_low": [0.8, 0.0, 0.1, 0.6], "ci_high": [1.2, 0.2, 0.3, 1.0]})
    >>> fig = figure(df)
    >>> fig.data[0].type, list(fig.data[0].y), fig.data[0].text[0][0]
    ('heatmap', ['a', 'b'], '1.000<br>[0.800, 1.200]')
    """
    for col in ("deactivated", "lang", value):
        if col not in frame.columns:
            raise DataValidationError(f"The frame lacks column {col!r}: pass deactivation_matrix output.")
    rows = list(dict.fromkeys(frame["deactivated"]))
    cols = list(dict.fromkeys(frame["lang"]))
    z = frame.pivot(index="deactivated", columns="lang", values=value).reindex(index=rows, columns=cols)
    has_ci = {"ci_low", "ci_high"} <= set(frame.columns)
    if has_ci:
        lo = frame.pivot(index="deactivated", columns="lang", values="ci_low").reindex(index=rows, columns=cols)
        hi = frame.pivot(index="deactivated", columns="lang", values="ci_high").reindex(index=rows, columns=cols)
    text = [
        [f"{z.iat[i, j]:.3f}" + (f"<br>[{lo.iat[i, j]:.3f}, {hi.iat[i, j]:.3f}]" if has_ci else "") for j in range(len(cols))]
        for i in range(len(rows))
    ]
    fig = go.Figure(go.Heatmap(
        z=z.to_numpy(dtype=float), x=cols, y=rows, text=text, texttemplate="%{text}", colorscale="RdBu_r", zmid=0.0,
        colorbar={"title": value},
    ))
    fig.update_layout(
        title=title or f"Deactivating language neurons: {value}",
        xaxis_title="evaluated language", yaxis_title="neurons deactivated", yaxis_autorange="reversed",
    )
    return fig
