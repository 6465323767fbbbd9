"""The ``xquad`` task: XQuAD (``google/xquad``, config ``xquad.{lang}``) through ``datasets``,
or local files in its schema (``data_files=``); items and scoring as :mod:`~clas_lens.data.tasks.qa`.

Offline (or when the hub fails) the error says how to pass local files.

>>> import json, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "de.jsonl"
>>> rec = {"context": "Gebaut 1890.", "question": "Wann?", "answers": {"text": ["1890"], "answer_start": [7]}}
>>> _ = f.write_text(json.dumps(rec) + "\\n")
>>> load_xquad(["de"], data_files=f).items("de")[0].references
['1890']
"""
from __future__ import annotations

from typing import Any, Sequence

from clas_lens.data.tasks.base import Task
from clas_lens.data.tasks.qa import QA_OPTIONS, qa_task
from clas_lens.data.tasks.registry import register_task
from clas_lens.languages import XQUAD_LANGS

#: How to pass XQuAD as local files (part of the error when the hub is unavailable).
XQUAD_LOCAL_HINT = (
    "Pass local files in the SQuAD schema (id, context, question, answers {text, "
    "answer_start}): load_task('xquad', langs=[...], data_files={'de': 'xquad/de.jsonl'}) "
    "or data_files='xquad/{lang}.jsonl'; or use the embedded task 'qa'."
)


def load_xquad(langs: Sequence[str], **options: Any) -> Task:
    """The ``xquad`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    Options as ``qa`` plus ``hub_split="validation"``, ``dataset="google/xquad"`` and
    ``hub_config="xquad.{lang}"`` (the dataset's config per language, ``{lang}`` filled in).

    >>> import os, unittest.mock
    >>> with unittest.mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1"}):
    ...     load_xquad(["de"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.data.hub.DatasetUnavailableError: Cannot load xquad (de) from the Hugging Face hub 'google/xquad' (config 'xquad.de'), split 'validation': ...
    """
    hub = (options.get("dataset", "google/xquad"), options.get("hub_config", "xquad.{lang}"), options.get("hub_split", "validation"))
    return qa_task("xquad", langs, options, hub=hub, hint=XQUAD_LOCAL_HINT)


register_task(
    "xquad",
    load_xquad,
    options=QA_OPTIONS | {"hub_split", "dataset", "hub_config"},
    hub_split=True,
    languages=lambda **options: list(XQUAD_LANGS),
)
