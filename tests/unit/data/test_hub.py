"""Hub and local-file access: offline errors, strict JSON lines, other file types, data_files."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from clas_lens.data.hub import (
    DatasetUnavailableError,
    hub_offline,
    load_hub_records,
    read_jsonl_strict,
    read_records,
    resolve_data_files,
)
from clas_lens.errors import DataValidationError

ROWS = [{"id": 1, "text": "hi"}, {"id": 2, "text": "ho"}]


def test_offline_error_carries_the_local_hint(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "yes")
    assert hub_offline()
    with pytest.raises(DatasetUnavailableError, match=r"Cannot load X from the Hugging Face hub 'org/ds' \(config 'c'\), split 'test'.*Use local files"):
        load_hub_records("org/ds", "c", "test", what="X", local_hint="Use local files.")


def test_read_records_of_every_file_type(tmp_path):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    (tmp_path / "a.json").write_text(json.dumps({"data": ROWS}))
    pd.DataFrame(ROWS).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(ROWS).to_csv(tmp_path / "a.tsv", index=False, sep="\t")
    pd.DataFrame(ROWS).to_parquet(tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.json", "a.csv", "a.tsv", "a.parquet"):
        assert read_records(tmp_path / name) == ROWS, name
    assert read_records(tmp_path / "a.jsonl", keep_line=True)[1]["__line__"] == 2
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataValidationError, match="Unsupported data file type 'a.txt'"):
        read_records(tmp_path / "a.txt")
    with pytest.raises(DataValidationError, match="does not exist"):
        read_records(tmp_path / "nope.jsonl")


def test_strict_json_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataValidationError, match=r"x\.jsonl:2: expected a JSON object, got list"):
        read_jsonl_strict(p)


def test_resolve_data_files(tmp_path):
    assert resolve_data_files({"de": "d.jsonl", "en": ["e1.jsonl", "e2.jsonl"]}, "en", n_langs=2) == [
        tmp_path.__class__("e1.jsonl"),
        tmp_path.__class__("e2.jsonl"),
    ]
    assert [str(p) for p in resolve_data_files("x/{lang}.jsonl", "sw", n_langs=3)] == ["x/sw.jsonl"]
    assert [str(p) for p in resolve_data_files("one.jsonl", "sw", n_langs=1)] == ["one.jsonl"]
    with pytest.raises(DataValidationError, match=r"no entry for language 'fr'"):
        resolve_data_files({"de": "d.jsonl"}, "fr", n_langs=1)
    with pytest.raises(DataValidationError, match=r"mapping \{lang: path\}"):
        resolve_data_files("one.jsonl", "sw", n_langs=2)
