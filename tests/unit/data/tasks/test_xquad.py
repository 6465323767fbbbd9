"""The xquad task: offline error with the local-files hint, local JSONL and parquet files."""
from __future__ import annotations

import pandas as pd
import pytest

from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.tasks import load_task


def test_xquad_offline_error_says_how_to_pass_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"google/xquad.*data_files"):
        load_task("xquad", langs=["de"])


def test_xquad_from_local_files(tmp_path, write_jsonl, xquad_de, ctx):
    write_jsonl(tmp_path / "de.jsonl", xquad_de)
    task = load_task("xquad", langs=["de"], data_files=tmp_path / "de.jsonl", max_new_tokens=4)
    assert task.max_new_tokens == 4
    items = task.items("de")
    assert items[1].references == ["300 Meter", "300"]
    assert items[0].prompt == f"Kontext: {ctx}\nFrage: Wann wurde die Brücke gebaut?\nAntwort:"
    assert task.config["hub_split"] == "validation" and task.config["split"] is None and task.config["dataset"] == "google/xquad"
    # Parquet with nested answers works too.
    pd.DataFrame(xquad_de).to_parquet(tmp_path / "de.parquet")
    t2 = load_task("xquad", langs=["de"], data_files={"de": tmp_path / "de.parquet"})
    assert t2.items("de")[1].references == ["300 Meter", "300"]
