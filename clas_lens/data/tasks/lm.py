"""The ``lm`` task: language modelling on held-out sentences of the parallel corpus.

Items are the corpus's sentences in its ``dev`` and ``test`` splits (never ``stats``, which
neuron statistics read; see :mod:`~clas_lens.data.tasks.heldout`), one per (id, language), the
sentence itself as the item's text (``prompt``). Scored (mode ``lm``) by the mean token
negative log-likelihood of the sentence, ``nll`` (nats per token, lower is better), and
``neg_nll = -nll``, the "higher is better" dense outcome that gains are computed on.

>>> task = load_lm(["en"], split="dev")
>>> task.mode, task.metrics, {it.split for it in task.items("en")}
('lm', ['neg_nll', 'nll'], {'dev'})
"""
from __future__ import annotations

from typing import Any, Sequence

from clas_lens.data.splits import CORPUS_FRACTIONS, check_fractions
from clas_lens.data.tasks.base import MODE_METRICS, Task, TaskItem, make_task
from clas_lens.data.tasks.heldout import corpus_languages, heldout_ids, task_corpus
from clas_lens.data.tasks.registry import register_task
from clas_lens.data.tasks.selection import record_split

#: Options of the lm task (``split`` / ``split_fractions``: the corpus's, see heldout).
LM_OPTIONS: frozenset[str] = frozenset({"corpus"})


def load_lm(langs: Sequence[str], **options: Any) -> Task:
    """The ``lm`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    ``corpus="default"``: the corpus's name or path (or a ParallelCorpus); ``split``: None
    (dev and test), ``"dev"``, ``"test"`` or a fraction pair outside the stats range;
    ``split_fractions``: the corpus's (default stats 0.4 / dev 0.2 / test 0.4).

    >>> len(load_lm(["de"]).items("de")) > len(load_lm(["de"], split="dev").items("de"))
    True
    """
    corpus = task_corpus(options.get("corpus", "default"), langs)
    fractions = check_fractions(options.get("split_fractions"), CORPUS_FRACTIONS)
    ids = heldout_ids(corpus, options.get("split"), fractions)
    item_map = {
        lang: [TaskItem(i, lang, corpus.text(i, lang), split=label) for i, label in ids] for lang in langs
    }
    config: dict[str, Any] = {"corpus": corpus.name, "corpus_hash": corpus.hash()}
    record_split(config, corpus.name or "corpus", options.get("split"), fractions)
    return make_task("lm", "lm", list(MODE_METRICS["lm"]), item_map, config, options)


register_task(
    "lm",
    load_lm,
    options=LM_OPTIONS,
    languages=lambda **options: corpus_languages(options.get("corpus", "default")),
    own_split=True,
)
