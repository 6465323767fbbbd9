"""Evaluation tasks: items per language, built from embedded data, CLDR or the hub.

``load_task(name, langs=None, **options) -> Task``. Tasks (one module each, registered in
:mod:`~clas_lens.data.tasks.registry`):

==============  ==========  ================================================================
name            mode        data and scoring
==============  ==========  ================================================================
``nli``         choice      embedded ``data/embedded/nli/{lang}.jsonl`` (XNLI schema: id,
                            premise, hypothesis, label 0 entailment / 1 neutral / 2
                            contradiction); the label words are scored by log-probability
                            after a per-language prompt.
``qa``          generate    embedded ``data/embedded/qa/{lang}.jsonl`` (SQuAD schema); greedy
                            generation after "Context / Question / Answer:", stopped at a
                            newline, scored by SQuAD F1 and exact match (characters for zh /
                            ja / th); ``gold_logprob``: the first reference, teacher-forced.
``cloze``       choice      built from CLDR (``babel``): 2-4 weekday (month) names, a cyclic
                            sequence forward or backward in steps of 1-3, joined by the
                            language's list separator; options: all 7 (12) names (342 items
                            per language, keys computed).
``xnli``        choice      ``facebook/xnli`` (one config per language) through ``datasets``,
                            or local files in that schema (``data_files=``); scored like
                            ``nli``.
``xquad``       generate    ``google/xquad`` (``xquad.{lang}``) or local files; scored like
                            ``qa``.
``lm``          lm          held-out sentences (dev / test splits) of the parallel corpus;
                            mean token NLL ``nll`` and ``neg_nll = -nll``.
``completion``  choice      held-out corpus sentences without their final word (zh / ja / th:
                            the final 2 characters); options: that word and 3 final words of
                            other sentences (seeded). Hundreds of items per language.
==============  ==========  ================================================================

Metrics (:data:`MODE_METRICS`), dense first: choice ``margin`` (gold option's score minus the
best other's), ``gold_logprob`` (the gold option's summed log-probability), ``accuracy``;
generate ``gold_logprob``, ``f1``, ``exact_match``; lm ``neg_nll``, ``nll``. Every task takes
``split=`` (``"dev"``, ``"test"``, a fraction pair; default all items) and labels each item with
its split (:mod:`clas_lens.data.splits`); choice tasks take ``length_norm=`` and ``calibrate=``.

Prompts and label words are parameters (``template=``, ``label_words=``, ``option_prefix=``)
with stated defaults: the English NLI prompt is the one "Sharing Matters" used (see
:data:`NLI_TEMPLATES`). Prompts never end with a space; options carry their leading space
(none for zh / ja / th, see :data:`~clas_lens.languages.NO_SPACE_LANGS`), so that prompt +
option tokenises as the model would read it. A task is data: predictions and scores come from
:mod:`clas_lens.evaluation` (``predict(model, task, lang)``, ``score_task(model, task)``).
Other tasks join with :func:`register_task`.

>>> task = load_task("cloze", langs=["en", "de"])
>>> task.mode, task.metrics, len(task.items("en"))
('choice', ['margin', 'gold_logprob', 'accuracy'], 342)
>>> item = task.items("en")[0]
>>> item.prompt, item.options[item.answer]
('Monday, Tuesday, Wednesday,', ' Thursday')
"""
from __future__ import annotations

from typing import Any

# Importable from here before the split into modules (kept for the old import paths).
from clas_lens.data.loaders import EMBEDDED_DIR, embedded_languages  # noqa: F401
from clas_lens.data.tasks.base import COMMON_OPTIONS, MODE_METRICS, Task, TaskItem
from clas_lens.data.tasks.options import CHOICE_OPTIONS, LENGTH_NORMS
from clas_lens.data.tasks.registry import TaskSpec, available_languages, load_task, register_task, task_names, task_spec

# The built-in tasks register themselves on import, in this order.
from clas_lens.data.tasks.nli import NLI_LABEL_WORDS, NLI_LABELS, NLI_TEMPLATES  # noqa: E402  isort: skip
from clas_lens.data.tasks.qa import QA_TEMPLATES  # noqa: E402  isort: skip
from clas_lens.data.tasks.cloze import CLOZE_KINDS, CLOZE_SEPARATORS, cloze_names, cloze_separator  # noqa: E402  isort: skip
from clas_lens.data.tasks import xnli, xquad  # noqa: E402,F401  isort: skip
from clas_lens.data.tasks import lm, completion  # noqa: E402,F401  isort: skip
from clas_lens.languages import (  # noqa: F401  (re-exported: defined once in clas_lens.languages)
    LANGUAGES,
    NO_SPACE_LANGS,
    XNLI_LANGS,
    XQUAD_LANGS,
    check_lang_code,
)

__all__ = [
    "TASKS",
    "Task",
    "TaskItem",
    "TaskSpec",
    "COMMON_OPTIONS",
    "CHOICE_OPTIONS",
    "LENGTH_NORMS",
    "MODE_METRICS",
    "load_task",
    "register_task",
    "task_names",
    "task_spec",
    "available_languages",
    "NLI_LABELS",
    "NLI_TEMPLATES",
    "NLI_LABEL_WORDS",
    "QA_TEMPLATES",
    "CLOZE_SEPARATORS",
    "CLOZE_KINDS",
    "cloze_names",
    "cloze_separator",
    "NO_SPACE_LANGS",
    "XNLI_LANGS",
    "XQUAD_LANGS",
]


def __getattr__(name: str) -> Any:
    # TASKS is read from the registry on every access, so it lists tasks registered later.
    if name == "TASKS":
        return task_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
