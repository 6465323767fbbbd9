"""The ``xnli`` task: XNLI (``facebook/xnli``, one config per language) through ``datasets``,
or local files in its schema (``data_files=``); items and scoring as :mod:`~clas_lens.data.tasks.nli`.

Offline (or when the hub fails) the error says how to pass local files.

>>> import json, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "de.jsonl"
>>> _ = f.write_text(json.dumps({"premise": "Es regnet.", "hypothesis": "Es ist nass.", "label": 0}) + "\\n")
>>> load_xnli(["de"], data_files=f).items("de")[0].options
[' wahr', ' unklar', ' falsch']
"""
from __future__ import annotations

from typing import Any, Sequence

from clas_lens.data.tasks.base import Task
from clas_lens.data.tasks.nli import NLI_OPTIONS, nli_task
from clas_lens.data.tasks.registry import register_task
from clas_lens.languages import XNLI_LANGS

#: How to pass XNLI as local files (part of the error when the hub is unavailable).
XNLI_LOCAL_HINT = (
    "Pass local files in the XNLI schema (premise, hypothesis, label 0/1/2; optional id): "
    "load_task('xnli', langs=[...], data_files={'de': 'xnli/de.jsonl'}) or "
    "data_files='xnli/{lang}.jsonl' (.jsonl, .json, .csv, .tsv or .parquet); or use the "
    "embedded task 'nli'."
)


def load_xnli(langs: Sequence[str], **options: Any) -> Task:
    """The ``xnli`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    Options as ``nli`` plus ``hub_split="test"``, ``dataset="facebook/xnli"`` and
    ``hub_config="{lang}"`` (the dataset's config per language, ``{lang}`` filled in).

    >>> import os, unittest.mock
    >>> with unittest.mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1"}):
    ...     load_xnli(["de"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clas_lens.data.hub.DatasetUnavailableError: Cannot load xnli (de) from the Hugging Face hub 'facebook/xnli' (config 'de'), split 'test': ...
    """
    hub = (options.get("dataset", "facebook/xnli"), options.get("hub_config", "{lang}"), options.get("hub_split", "test"))
    return nli_task("xnli", langs, options, hub=hub, hint=XNLI_LOCAL_HINT)


register_task(
    "xnli",
    load_xnli,
    options=NLI_OPTIONS | {"hub_split", "dataset", "hub_config"},
    hub_split=True,
    languages=lambda **options: list(XNLI_LANGS),
)
