"""Tasks: items, templates, validation, local benchmark files, prediction and evaluation."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from clas_lens.data.hub import DatasetUnavailableError
from clas_lens.data.tasks import (
    NLI_LABEL_WORDS,
    NLI_TEMPLATES,
    QA_TEMPLATES,
    TASKS,
    TaskItem,
    available_languages,
    cloze_names,
    cloze_separator,
    load_task,
)
from clas_lens.errors import DataValidationError
from clas_lens.scoring import option_logprobs

CORE = ("en", "de", "es", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw")


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


XNLI_DE = [
    {"premise": "Der Laden öffnet um neun Uhr.", "hypothesis": "Der Laden ist morgens geöffnet.", "label": 0},
    {"premise": "Anna hat einen Hund.", "hypothesis": "Annas Hund ist braun.", "label": 1},
    {"premise": "Es regnet heute den ganzen Tag.", "hypothesis": "Heute ist es trocken.", "label": 2},
]
CTX = "Die Brücke wurde 1890 gebaut und ist 300 Meter lang."
XQUAD_DE = [
    {"id": "x1", "context": CTX, "question": "Wann wurde die Brücke gebaut?", "answers": {"text": ["1890"], "answer_start": [CTX.index("1890")]}},
    {"id": "x2", "context": CTX, "question": "Wie lang ist die Brücke?", "answers": {"text": ["300 Meter", "300"], "answer_start": [CTX.index("300"), CTX.index("300")]}},
]


# -- registry and errors ------------------------------------------------------------------
def test_unknown_task_lists_available():
    with pytest.raises(DataValidationError, match=r"Unknown task 'nope'; available tasks: nli, qa, cloze, xnli, xquad"):
        load_task("nope")
    assert TASKS == ("nli", "qa", "cloze", "xnli", "xquad")


def test_unknown_language_lists_available():
    with pytest.raises(DataValidationError, match=r"no language\(s\) 'ko'; available: en.*data_files"):
        load_task("nli", langs=["en", "ko"])
    with pytest.raises(DataValidationError, match=r"Unknown language code 'klingon'"):
        load_task("cloze", langs=["klingon"])
    with pytest.raises(DataValidationError, match=r"no language\(s\) 'ja'; available: ar, bg"):
        load_task("xnli", langs=["ja"])
    task = load_task("cloze", langs=["en"])
    with pytest.raises(DataValidationError, match=r"no language 'de'; it has en"):
        task.items("de")


def test_unknown_option_lists_accepted():
    with pytest.raises(DataValidationError, match=r"Unknown option\(s\) \['kinds'\] for task 'nli'; accepted: .*label_words"):
        load_task("nli", langs=["en"], kinds=("weekday",))


def test_every_core_language_has_templates():
    for lang in CORE:
        assert lang in NLI_TEMPLATES and lang in NLI_LABEL_WORDS and lang in QA_TEMPLATES
        assert len(set(NLI_LABEL_WORDS[lang])) == 3
        assert "{premise}" in NLI_TEMPLATES[lang] and "{hypothesis}" in NLI_TEMPLATES[lang]
        assert NLI_TEMPLATES[lang] == NLI_TEMPLATES[lang].rstrip()
        assert QA_TEMPLATES[lang] == QA_TEMPLATES[lang].rstrip()


# -- nli ----------------------------------------------------------------------------------
def test_nli_embedded_english():
    task = load_task("nli", langs=["en"])
    assert task.mode == "choice" and task.metrics == ["accuracy"]
    items = task.items("en")
    assert len(items) >= 90
    it = items[0]
    assert isinstance(it, TaskItem) and it.lang == "en"
    assert it.prompt.startswith("Take the following as truth: ")
    assert '\nThen the following statement: "' in it.prompt
    assert it.prompt.endswith('is "true", "false", or "inconclusive"?')
    assert it.options == [" true", " inconclusive", " false"]
    assert it.answer in (0, 1, 2) and it.references is None


def test_nli_no_space_languages_have_bare_options(tmp_path):
    f = write_jsonl(tmp_path / "zh.jsonl", [{"id": "a", "premise": "下雨了。", "hypothesis": "天气很好。", "label": 2}])
    task = load_task("nli", langs=["zh"], data_files={"zh": f})
    assert task.items("zh")[0].options == list(NLI_LABEL_WORDS["zh"])


def test_nli_custom_template_and_words(tmp_path):
    f = write_jsonl(tmp_path / "de.jsonl", XNLI_DE)
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


def test_nli_template_errors(tmp_path):
    f = write_jsonl(tmp_path / "de.jsonl", XNLI_DE)
    with pytest.raises(DataValidationError, match="ends with whitespace"):
        load_task("nli", langs=["de"], data_files=f, template="{premise} {hypothesis} Answer: ")
    with pytest.raises(DataValidationError, match=r"cannot be filled.*\{premise\}, \{hypothesis\}"):
        load_task("nli", langs=["de"], data_files=f, template="{premise} {context}?")
    with pytest.raises(DataValidationError, match="3 non-empty words"):
        load_task("nli", langs=["de"], data_files=f, label_words=("ja", "nein"))
    with pytest.raises(DataValidationError, match=r"no default template for language 'ko'.*template=\{'ko'"):
        load_task("nli", langs=["ko"], data_files={"ko": f})


def test_nli_record_errors(tmp_path):
    bad = write_jsonl(tmp_path / "de.jsonl", [XNLI_DE[0], {"premise": "A.", "hypothesis": "B.", "label": 5}])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: label must be 0"):
        load_task("nli", langs=["de"], data_files=bad)
    bad = write_jsonl(tmp_path / "de.jsonl", [{"id": "a", "premise": " ", "hypothesis": "B.", "label": 0}])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:1: field 'premise' is missing or empty \(id 'a'\)"):
        load_task("nli", langs=["de"], data_files=bad)
    bad = write_jsonl(tmp_path / "de.jsonl", [dict(XNLI_DE[0], id="a"), dict(XNLI_DE[1], id="a")])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: duplicate id 'a'"):
        load_task("nli", langs=["de"], data_files=bad)


# -- qa -----------------------------------------------------------------------------------
def test_qa_embedded_english():
    task = load_task("qa", langs=["en"])
    assert task.mode == "generate" and task.metrics == ["f1", "exact_match"]
    assert task.max_new_tokens == 16 and task.stop == "\n"
    it = task.items("en")[0]
    assert it.prompt.startswith("Context: ") and "\nQuestion: " in it.prompt and it.prompt.endswith("\nAnswer:")
    assert it.references and it.options is None and it.answer is None


def test_qa_span_verification(tmp_path):
    bad = dict(XQUAD_DE[0], answers={"text": ["1890"], "answer_start": [3]})
    f = write_jsonl(tmp_path / "de.jsonl", [XQUAD_DE[1], bad])
    with pytest.raises(DataValidationError, match=r"de\.jsonl:2: answer '1890' is not at answer_start 3 .*occurs at offset 17.*id 'x1', lang 'de'"):
        load_task("qa", langs=["de"], data_files=f)
    bad = dict(XQUAD_DE[0], answers={"text": ["1999"], "answer_start": [17]})
    f = write_jsonl(tmp_path / "de.jsonl", [bad])
    with pytest.raises(DataValidationError, match="not in the context"):
        load_task("qa", langs=["de"], data_files=f)
    bad = dict(XQUAD_DE[0], answers={"text": [], "answer_start": []})
    f = write_jsonl(tmp_path / "de.jsonl", [bad])
    with pytest.raises(DataValidationError, match="no answers"):
        load_task("qa", langs=["de"], data_files=f)


# -- cloze --------------------------------------------------------------------------------
def test_cloze_items_english():
    task = load_task("cloze", langs=["en"])
    items = task.items("en")
    assert len(items) == 7 + 12
    days = [it for it in items if it.id.startswith("weekday")]
    assert days[0].prompt == "Monday, Tuesday, Wednesday,"
    assert days[0].options[days[0].answer] == " Thursday"
    assert days[6].prompt == "Sunday, Monday, Tuesday,"
    assert days[6].options[days[6].answer] == " Wednesday"
    months = [it for it in items if it.id.startswith("month")]
    assert len(months[0].options) == 12
    assert months[11].options[months[11].answer] == " March"  # December, January, February -> March


def test_cloze_languages_separators_and_forms():
    task = load_task("cloze", langs=["zh", "ar", "el", "th", "de"], kinds="month")
    zh = task.items("zh")[0]
    assert zh.prompt == "一月、二月、三月、" and zh.options[zh.answer] == "四月"
    ar = task.items("ar")[0]
    assert ar.prompt.endswith("،") and ar.options[ar.answer].startswith(" ")
    el = task.items("el")[0]
    assert el.prompt.startswith("Ιανουάριος")  # stand-alone (nominative), not genitive Ιανουαρίου
    th = task.items("th")[0]
    assert not th.prompt.endswith(" ") and th.options[th.answer] == " เมษายน"  # CLDR's Thai separator is a space
    assert cloze_separator("zh") == "、" and cloze_separator("ar") == "، " and cloze_separator("en") == ", "
    assert cloze_names("sw", "weekday")[0] == "Jumatatu"
    assert all(not it.prompt.endswith(" ") for lang in task.langs for it in task.items(lang))


def test_cloze_options():
    task = load_task("cloze", langs=["en"], kinds=["weekday"], separators={"en": " / "}, option_prefix={"en": " "})
    it = task.items("en")[0]
    assert it.prompt == "Monday / Tuesday / Wednesday /" and it.options[it.answer] == " Thursday"
    with pytest.raises(DataValidationError, match="Unknown cloze kind 'year'"):
        load_task("cloze", langs=["en"], kinds=["year"])


def test_cloze_default_and_other_cldr_languages():
    from clas_lens.data.corpus import embedded_languages

    assert load_task("cloze").langs == embedded_languages("corpus")
    yo = load_task("cloze", langs=["yo"], kinds="weekday")  # Yoruba: not in LANGUAGES, known to CLDR
    assert len(yo.items("yo")) == 7


def test_available_languages():
    assert "en" in available_languages("nli") and "en" in available_languages("qa")
    assert set(("en", "de", "zh")) <= set(available_languages("cloze"))
    assert len(available_languages("xnli")) == 15 and len(available_languages("xquad")) == 12


# -- xnli / xquad -------------------------------------------------------------------------
def test_xnli_offline_error_says_how_to_pass_local_files(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"hub is disabled.*data_files=\{'de': 'xnli/de.jsonl'\}"):
        load_task("xnli", langs=["de"])
    with pytest.raises(DatasetUnavailableError, match=r"google/xquad.*data_files"):
        load_task("xquad", langs=["de"])


def test_xnli_from_local_jsonl_and_csv(tmp_path):
    write_jsonl(tmp_path / "de.jsonl", XNLI_DE)
    en = [{"premise": "The shop opens at nine.", "hypothesis": "The shop is closed all day.", "label": "contradiction"}]
    pd.DataFrame(en).to_csv(tmp_path / "en.csv", index=False)
    task = load_task("xnli", langs=["de", "en"], data_files={"de": tmp_path / "de.jsonl", "en": tmp_path / "en.csv"})
    assert task.langs == ["de", "en"]
    assert [it.answer for it in task.items("de")] == [0, 1, 2]
    assert task.items("en")[0].answer == 2
    assert task.items("de")[0].options == [" wahr", " unklar", " falsch"]
    assert task.config["split"] == "test" and task.config["dataset"] == "facebook/xnli"
    pattern = load_task("xnli", langs=["de"], data_files=str(tmp_path / "{lang}.jsonl"))
    assert len(pattern.items("de")) == 3


def test_xquad_from_local_files(tmp_path):
    write_jsonl(tmp_path / "de.jsonl", XQUAD_DE)
    task = load_task("xquad", langs=["de"], data_files=tmp_path / "de.jsonl", max_new_tokens=4)
    assert task.max_new_tokens == 4
    items = task.items("de")
    assert items[1].references == ["300 Meter", "300"]
    assert items[0].prompt == f"Kontext: {CTX}\nFrage: Wann wurde die Brücke gebaut?\nAntwort:"
    # Parquet with nested answers works too.
    pd.DataFrame(XQUAD_DE).to_parquet(tmp_path / "de.parquet")
    t2 = load_task("xquad", langs=["de"], data_files={"de": tmp_path / "de.parquet"})
    assert t2.items("de")[1].references == ["300 Meter", "300"]


def test_data_files_needs_mapping_for_several_languages(tmp_path):
    f = write_jsonl(tmp_path / "de.jsonl", XNLI_DE)
    with pytest.raises(DataValidationError, match=r"mapping \{lang: path\}"):
        load_task("xnli", langs=["de", "en"], data_files=f)


# -- predict / evaluate -------------------------------------------------------------------
def test_predict_choice(tiny_llama):
    task = load_task("cloze", langs=["en"], kinds=["weekday"])
    df = task.predict(tiny_llama, "en", limit=3)
    assert list(df.columns) == ["task", "lang", "item_id", "prediction", "reference", "accuracy", "margin", "pred_index", "answer_index"]
    assert len(df) == 3 and df["item_id"].tolist() == ["weekday-01", "weekday-02", "weekday-03"]
    assert df.loc[0, "reference"] == "Thursday"
    it = task.items("en")[0]
    with torch.no_grad():
        lp = option_logprobs(tiny_llama, it.prompt, it.options)
    others = torch.cat([lp[: it.answer], lp[it.answer + 1 :]])
    assert df.loc[0, "margin"] == pytest.approx(float(lp[it.answer] - others.max()), abs=1e-4)
    assert df.loc[0, "pred_index"] == int(lp.argmax())
    assert df.loc[0, "accuracy"] == float(int(lp.argmax()) == it.answer)
    assert ((df["margin"] > 0) == (df["accuracy"] == 1.0)).all()
    with pytest.raises(ValueError, match="limit"):
        task.predict(tiny_llama, "en", limit=0)


def test_predict_generate(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "de.jsonl", XQUAD_DE)
    task = load_task("xquad", langs=["de"], data_files=tmp_path / "de.jsonl", max_new_tokens=3)
    df = task.predict(tiny_llama, "de")
    assert list(df.columns) == ["task", "lang", "item_id", "prediction", "reference", "f1", "exact_match", "references"]
    assert df["item_id"].tolist() == ["x1", "x2"]
    assert df.loc[1, "reference"] == "300 Meter" and df.loc[1, "references"] == ["300 Meter", "300"]
    assert df["f1"].between(0, 1).all() and df["exact_match"].isin([0.0, 1.0]).all()
    assert all("\n" not in p and p == p.strip() for p in df["prediction"])


def test_evaluate_tidy_with_seeded_ci(tiny_llama):
    task = load_task("cloze", langs=["en", "de"], kinds=["weekday"])
    df = task.evaluate(tiny_llama, limit=4)
    assert list(df.columns) == ["task", "lang", "metric", "value", "ci_low", "ci_high", "n"]
    assert df["lang"].tolist() == ["en", "de"] and (df["n"] == 4).all()
    assert (df["ci_low"] <= df["value"]).all() and (df["value"] <= df["ci_high"]).all()
    preds = df.attrs["predictions"]
    assert len(preds) == 8 and set(preds["lang"]) == {"en", "de"}
    assert df.loc[0, "value"] == pytest.approx(preds[preds["lang"] == "en"]["accuracy"].mean())
    again = task.evaluate(tiny_llama, langs=["en"], limit=4)
    assert again.iloc[0].to_dict() == df.iloc[0].to_dict()
    with pytest.raises(DataValidationError, match="no language 'fr'"):
        task.evaluate(tiny_llama, langs=["fr"])


def test_task_to_dict():
    task = load_task("qa", langs=["en"], seed=3)
    d = task.to_dict()
    assert d["name"] == "qa" and d["mode"] == "generate" and d["seed"] == 3
    assert d["n_items"]["en"] >= 60 and d["max_new_tokens"] == 16
