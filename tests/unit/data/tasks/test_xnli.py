"""The xnli task: offline error with the local-files hint, local JSONL / CSV / pattern files."""
from __future__ import annotations

import pandas as pd
import pytest

from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.tasks import load_task
from clas_lens.errors import DataValidationError


def test_xnli_offline_error_says_how_to_pass_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"hub is disabled.*data_files=\{'de': 'xnli/de.jsonl'\}"):
        load_task("xnli", langs=["de"])


def test_xnli_from_local_jsonl_and_csv(tmp_path, write_jsonl, xnli_de):
    write_jsonl(tmp_path / "de.jsonl", xnli_de)
    en = [{"premise": "The shop opens at nine.", "hypothesis": "The shop is closed all day.", "label": "contradiction"}]
    pd.DataFrame(en).to_csv(tmp_path / "en.csv", index=False)
    task = load_task("xnli", langs=["de", "en"], data_files={"de": tmp_path / "de.jsonl", "en": tmp_path / "en.csv"})
    assert task.langs == ["de", "en"]
    assert [it.answer for it in task.items("de")] == [0, 1, 2]
    assert task.items("en")[0].answer == 2
    assert task.items("de")[0].options == [" wahr", " unklar", " falsch"]
    assert task.config["hub_split"] == "test" and task.config["split"] is None and task.config["dataset"] == "facebook/xnli"
    pattern = load_task("xnli", langs=["de"], data_files=str(tmp_path / "{lang}.jsonl"))
    assert len(pattern.items("de")) == 3


def test_data_files_needs_mapping_for_several_languages(tmp_path, write_jsonl, xnli_de):
    f = write_jsonl(tmp_path / "de.jsonl", xnli_de)
    with pytest.raises(DataValidationError, match=r"mapping \{lang: path\}"):
        load_task("xnli", langs=["de", "en"], data_files=f)


def test_hub_split_and_the_old_split_spelling(tmp_path, write_jsonl, xnli_de, monkeypatch):
    f = write_jsonl(tmp_path / "de.jsonl", xnli_de)
    task = load_task("xnli", langs=["de"], data_files=f, hub_split="validation")
    assert task.config["hub_split"] == "validation" and task.config["split"] is None
    with pytest.warns(DeprecationWarning, match=r"split= now selects items.*hub_split='validation'"):
        old = load_task("xnli", langs=["de"], data_files=f, split="validation")
    assert old.config["hub_split"] == "validation"
    # a split name selects items (by id) from the hub split
    test = load_task("xnli", langs=["de"], data_files=f, split=(0.0, 1.0))
    assert test.config["split"] == "0-1" and len(test.items("de")) == 3
