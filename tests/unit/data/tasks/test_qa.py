"""The qa task: embedded items, templates, answer-span verification."""
from __future__ import annotations

import pytest

from clas_lens.data.tasks import QA_TEMPLATES, load_task
from clas_lens.data.tasks.qa import answer_spans
from clas_lens.errors import DataValidationError

CORE = ("en", "de", "es", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw")


def test_every_core_language_has_a_template():
    for lang in CORE:
        assert lang in QA_TEMPLATES
        assert QA_TEMPLATES[lang] == QA_TEMPLATES[lang].rstrip()


def test_qa_embedded_english():
    task = load_task("qa", langs=["en"])
    assert task.mode == "generate" and task.metrics == ["gold_logprob", "f1", "exact_match"]
    assert task.max_new_tokens == 16 and task.stop == "\n"
    it = task.items("en")[0]
    assert it.prompt.startswith("Context: ") and "\nQuestion: " in it.prompt and it.prompt.endswith("\nAnswer:")
    assert it.references and it.options is None and it.answer is None


def test_qa_span_verification(tmp_path, write_jsonl, xquad_de):
    bad = dict(xquad_de[0], answers={"text": ["1890"], "answer_start": [3]})
    f = write_jsonl(tmp_path / "de.jsonl", [xquad_de[1], bad])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: answer '1890' is not at answer_start 3 .*occurs at offset 17.*id 'x1', lang 'de'"):
        load_task("qa", langs=["de"], data_files=f)
    bad = dict(xquad_de[0], answers={"text": ["1999"], "answer_start": [17]})
    f = write_jsonl(tmp_path / "de.jsonl", [bad])
    with pytest.raises(DataValidationError, match="not in the context"):
        load_task("qa", langs=["de"], data_files=f)
    bad = dict(xquad_de[0], answers={"text": [], "answer_start": []})
    f = write_jsonl(tmp_path / "de.jsonl", [bad])
    with pytest.raises(DataValidationError, match="no answers"):
        load_task("qa", langs=["de"], data_files=f)


def test_answer_formats():
    assert answer_spans({"answers": [{"text": "a", "answer_start": 0}]}, "f:1", "x") == [("a", 0)]
    assert answer_spans({"answers": {"text": ["a", "b"]}}, "f:1", "x") == [("a", None), ("b", None)]
    with pytest.raises(DataValidationError, match=r"2 texts but 1 answer_start"):
        answer_spans({"answers": {"text": ["a", "b"], "answer_start": [0]}}, "f:1", "x")
