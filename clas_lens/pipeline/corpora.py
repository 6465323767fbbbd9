"""Which part of the run's parallel corpus each step of the pipeline reads.

The design (docs/methods.md, "Evaluation"): neuron statistics, identification and their
split-half stability read the corpus's ``stats`` split; settings are chosen on ``dev``; every
number the summary reports -- the ``lm`` / ``completion`` tasks, the positive control, the
residual clusters -- comes from held-out ``test`` sentences. An item's split depends only on its
id and the corpus's name (:mod:`clas_lens.data.splits`), so the parts never overlap and the
tasks built from the corpus (:mod:`clas_lens.data.tasks.heldout`) agree with them.

>>> from clas_lens.config import RunConfig
>>> cfg = RunConfig.from_dict({"corpus": {"langs": ["en", "de"]}})
>>> stats, test = corpus_part(cfg, STATS_SPLIT, 10), corpus_part(cfg, REPORT_SPLIT)
>>> len(stats), stats.split_info["split"], set(stats.ids) & set(test.ids)
(10, 'stats', set())
"""
from __future__ import annotations

from clas_lens.config import RunConfig
from clas_lens.data.corpus import ParallelCorpus, load_corpus

__all__ = ["STATS_SPLIT", "SELECT_SPLIT", "REPORT_SPLIT", "run_corpus", "corpus_part"]

#: The split neuron statistics and identification read.
STATS_SPLIT = "stats"
#: The split on which each method's setting is chosen.
SELECT_SPLIT = "dev"
#: The split every reported number comes from.
REPORT_SPLIT = "test"


def run_corpus(cfg: RunConfig) -> ParallelCorpus:
    """The run's whole corpus (``[corpus] name``, ``langs``, ``drop_incomplete``)."""
    c = cfg.corpus
    return load_corpus(c.name, langs=c.langs, drop_incomplete=c.drop_incomplete)


def corpus_part(cfg: RunConfig, split: str, limit: int = 0, corpus: ParallelCorpus | None = None) -> ParallelCorpus:
    """The first ``limit`` items (0: all) of ``split`` of the run's corpus.

    ``corpus``: the run's corpus or a part of it; used as it is when it already is that split
    (``corpus.split_info``), else the split is taken from the whole corpus (a part such as "the
    first n items" would give a smaller, different selection).
    """
    info = getattr(corpus, "split_info", None) or {}
    part = corpus if corpus is not None and info.get("split") == split else run_corpus(cfg).split(split)
    if limit and limit < len(part):
        sub = part.subset(ids=part.ids[:limit])
        sub.split_info = part.split_info
        return sub
    return part
