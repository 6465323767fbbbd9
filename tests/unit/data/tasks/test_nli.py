"""The nli task: embedded items, templates and label words, no-space languages, record errors."""
from __future__ import annotations

import pytest

from clas_lens.data.tasks import NLI_LABEL_WORDS, NLI_TEMPLATES, TaskItem, load_task
from clas_lens.data.tasks.nli import nli_items, nli_languages
from clas_lens.errors import DataValidationError

CORE = ("en", "de", "es", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw")


def test_every_core_language_has_templates():
    for lang in CORE:
        assert lang in NLI_TEMPLATES and lang in NLI_LABEL_WORDS
        assert len(set(NLI_LABEL_WORDS[lang])) == 3
        assert "{premise}" in NLI_TEMPLATES[lang] and "{hypothesis}" in NLI_TEMPLATES[lang]
        assert NLI_TEMPLATES[lang] == NLI_TEMPLATES[lang].rstrip()


def test_nli_embedded_english():
    task = load_task("nli", langs=["en"])
    assert task.mode == "choice" and task.metrics == ["margin", "gold_logprob", "accuracy"]
    items = task.items("en")
    assert len(items) >= 90
    it = items[0]
    assert isinstance(it, TaskItem) and it.lang == "en"
    assert it.prompt.startswith("Take the following as truth: ")
    assert '\nThen the following statement: "' in it.prompt
    assert it.prompt.endswith('is "true", "false", or "inconclusive"?')
    assert it.options == [" true", " inconclusive", " false"]
    assert it.answer in (0, 1, 2) and it.references is None


def test_nli_no_space_languages_have_bare_options(tmp_path, write_jsonl):
    f = write_jsonl(tmp_path / "zh.jsonl", [{"id": "a", "premise": "下雨了。", "hypothesis": "天气很好。", "label": 2}])
    task = load_task("nli", langs=["zh"], data_files={"zh": f})
    assert task.items("zh")[0].options == list(NLI_LABEL_WORDS["zh"])
    assert nli_languages(data_files={"zh": f}) == ["zh"]


def test_nli_custom_template_and_words(tmp_path, write_jsonl, xnli_de):
    f = write_jsonl(tmp_path / "de.jsonl", xnli_de)
    task = load_task(
        "nli",
        langs=["de"],
        data_files=f,
        template="P: {premise}\nH: {hypothesis}\nAntwort:",
        label_words={"de": ("ja", "vielleicht", "nein")},
        option_prefix=" ",
    )
    it = task.items("de")[2]
    assert it.prompt == "P: Es regnet heute den ganzen Tag.\nH: Heute ist es trocken.\nAntwort:"
    assert it.options == [" ja", " vielleicht", " nein"] and it.answer == 2
    assert it.id == "item-00002"  # generated when the file has no ids
    assert task.config["label_words"] == {"de": ("ja", "vielleicht", "nein")}


def test_nli_template_errors(tmp_path, write_jsonl, xnli_de):
    f = write_jsonl(tmp_path / "de.jsonl", xnli_de)
    with pytest.raises(DataValidationError, match="ends with whitespace"):
        load_task("nli", langs=["de"], data_files=f, template="{premise} {hypothesis} Answer: ")
    with pytest.raises(DataValidationError, match=r"cannot be filled.*\{premise\}, \{hypothesis\}"):
        load_task("nli", langs=["de"], data_files=f, template="{premise} {context}?")
    with pytest.raises(DataValidationError, match="3 non-empty words"):
        load_task("nli", langs=["de"], data_files=f, label_words=("ja", "nein"))
    with pytest.raises(DataValidationError, match=r"no default template for language 'ko'.*template=\{'ko'"):
        load_task("nli", langs=["ko"], data_files={"ko": f})


def test_nli_record_errors(tmp_path, write_jsonl, xnli_de):
    bad = write_jsonl(tmp_path / "de.jsonl", [xnli_de[0], {"premise": "A.", "hypothesis": "B.", "label": 5}])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: label must be 0"):
        load_task("nli", langs=["de"], data_files=bad)
    bad = write_jsonl(tmp_path / "de.jsonl", [{"id": "a", "premise": " ", "hypothesis": "B.", "label": 0}])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:1: field 'premise' is missing or empty \(id 'a'\)"):
        load_task("nli", langs=["de"], data_files=bad)
    bad = write_jsonl(tmp_path / "de.jsonl", [dict(xnli_de[0], id="a"), dict(xnli_de[1], id="a")])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: duplicate id 'a'"):
        load_task("nli", langs=["de"], data_files=bad)


def test_nli_label_names_and_numeric_strings():
    recs = [("f:1", {"premise": "A.", "hypothesis": "B.", "label": "Neutral"}), ("f:2", {"premise": "A.", "hypothesis": "B.", "label": "2"})]
    items = nli_items("nli", "en", recs, "{premise} {hypothesis}", ("t", "m", "f"), "")
    assert [it.answer for it in items] == [1, 2] and items[0].options == ["t", "m", "f"]
    with pytest.raises(DataValidationError, match="label must be 0"):
        nli_items("nli", "en", [("f:1", {"premise": "A.", "hypothesis": "B.", "label": True})], "{premise}", ("t", "m", "f"), "")
