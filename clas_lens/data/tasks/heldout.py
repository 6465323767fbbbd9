"""The held-out part of a parallel corpus, for tasks built from it (``lm``, ``completion``).

Neuron statistics and identification read the corpus's ``"stats"`` split; tasks built from the
same sentences must not. :func:`heldout_ids` returns the ids of every other split (by default
``dev`` and ``test``, :data:`~clas_lens.data.splits.CORPUS_FRACTIONS`), each with its split,
using the same stable hash as :meth:`~clas_lens.data.corpus.ParallelCorpus.split` (keyed by the
corpus's name), so the two never overlap. :func:`task_corpus` loads the corpus a task names.

>>> corpus = task_corpus("default", ["en"])
>>> ids = heldout_ids(corpus, None, None)
>>> stats = set(corpus.split("stats").ids)
>>> sorted({label for _, label in ids}), any(i in stats for i, _ in ids)
(['dev', 'test'], False)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from clas_lens.data.corpus import ParallelCorpus, load_corpus
from clas_lens.data.loaders import embedded_languages
from clas_lens.data.splits import CORPUS_FRACTIONS, Split, check_fractions, in_range, resolve_split, split_label
from clas_lens.errors import DataValidationError

#: The corpus split that tasks never read.
STATS_SPLIT = "stats"


def task_corpus(corpus: Any, langs: Sequence[str] | None) -> ParallelCorpus:
    """The corpus of a task: a :class:`~clas_lens.data.corpus.ParallelCorpus` as given (its
    ``langs`` kept), else ``load_corpus(corpus, langs)`` (language-ID check off: the embedded
    corpus is checked by its own tests).

    >>> task_corpus("default", ["de"]).langs
    ['de']
    """
    if isinstance(corpus, ParallelCorpus):
        return corpus if langs is None else corpus.subset(langs=langs)
    return load_corpus(corpus, langs=langs, check_langid=False)


def corpus_languages(corpus: Any = "default") -> list[str]:
    """Languages of a task's corpus (the embedded corpus's files without loading them).

    >>> "en" in corpus_languages()
    True
    """
    if isinstance(corpus, str) and corpus == "default":
        return embedded_languages("corpus")
    return task_corpus(corpus, None).langs


def heldout_ids(
    corpus: ParallelCorpus, split: Split | None, fractions: Mapping[str, float] | None
) -> list[tuple[str, str]]:
    """``[(id, split label)]`` of the corpus's held-out items, in corpus order.

    ``split`` None: every split but ``"stats"``, each id with its split's name; a split name
    (not ``"stats"``): that split; a ``(start, stop)`` pair: that range, which may not overlap
    the stats range. ``fractions``: default stats 0.4 / dev 0.2 / test 0.4 (must name a
    ``"stats"`` split).

    >>> corpus = task_corpus("default", ["en"])
    >>> {label for _, label in heldout_ids(corpus, "dev", None)}
    {'dev'}
    """
    fractions = check_fractions(fractions, CORPUS_FRACTIONS)
    if STATS_SPLIT not in fractions:
        raise DataValidationError(
            f"split_fractions of a corpus task must name the {STATS_SPLIT!r} split the task never reads; got {fractions}."
        )
    key = corpus.name or "corpus"
    stats = resolve_split(STATS_SPLIT, fractions)[1]
    if split is None:
        out = [(i, split_label(key, i, fractions)) for i in corpus.ids]
        return [(i, label) for i, label in out if label != STATS_SPLIT]
    if split == STATS_SPLIT:
        raise DataValidationError(
            f"The {STATS_SPLIT!r} split of the corpus is reserved for neuron statistics; tasks read "
            f"{[n for n in fractions if n != STATS_SPLIT]} (or split=None for all of them)."
        )
    label, (start, stop) = resolve_split(split, fractions)
    if start < stats[1] and stats[0] < stop:
        raise DataValidationError(
            f"split={split!r} overlaps the {STATS_SPLIT!r} range {list(stats)} of the corpus; choose a range outside it."
        )
    out = [(i, label) for i in corpus.ids if in_range(key, i, (start, stop))]
    if not out:
        raise DataValidationError(f"split={split!r} holds no items of the corpus {corpus.name!r}.")
    return out
