"""predict (choice and generation tasks, tasks with their own predict) and score_task."""
from __future__ import annotations

import json

import pytest
import torch

from _steering_toys import ToyTask
from clas_lens.data.tasks import load_task
from clas_lens.errors import DataValidationError
from clas_lens.evaluation import CHOICE_COLUMNS, GENERATE_COLUMNS, LM_COLUMNS, SCORE_COLUMNS, predict, score_task
from clas_lens.metrics import bootstrap_ci
from clas_lens.scoring import option_logprobs

CTX = "Die Brücke wurde 1890 gebaut und ist 300 Meter lang."
XQUAD_DE = [
    {"id": "x1", "context": CTX, "question": "Wann wurde die Brücke gebaut?", "answers": {"text": ["1890"], "answer_start": [CTX.index("1890")]}},
    {"id": "x2", "context": CTX, "question": "Wie lang ist die Brücke?", "answers": {"text": ["300 Meter", "300"], "answer_start": [CTX.index("300"), CTX.index("300")]}},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_predict_choice(tiny_llama):
    task = load_task("cloze", langs=["en"], kinds=["weekday"])
    df = predict(tiny_llama, task, "en", limit=3)
    assert list(df.columns) == ["task", "lang", "item_id", "split", "prediction", "reference", "accuracy", "margin",
                                "gold_logprob", "pred_index", "answer_index"]
    assert list(df.columns) == CHOICE_COLUMNS
    assert len(df) == 3 and df["item_id"].tolist() == ["weekday-01", "weekday-02", "weekday-03"]
    assert df.loc[0, "reference"] == "Thursday"
    it = task.items("en")[0]
    with torch.no_grad():
        lp = option_logprobs(tiny_llama, it.prompt, it.options)
    others = torch.cat([lp[: it.answer], lp[it.answer + 1 :]])
    assert df.loc[0, "margin"] == pytest.approx(float(lp[it.answer] - others.max()), abs=1e-4)
    assert df.loc[0, "pred_index"] == int(lp.argmax())
    assert df.loc[0, "gold_logprob"] == pytest.approx(float(lp[it.answer]), abs=1e-4)  # the gold option's log-prob
    assert df["split"].tolist() == [i.split for i in task.items("en")[:3]] and set(df["split"]) <= {"dev", "test"}
    assert df.loc[0, "accuracy"] == float(int(lp.argmax()) == it.answer)
    assert ((df["margin"] > 0) == (df["accuracy"] == 1.0)).all()
    with pytest.raises(ValueError, match="limit"):
        predict(tiny_llama, task, "en", limit=0)


def test_predict_generate(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "de.jsonl", XQUAD_DE)
    task = load_task("xquad", langs=["de"], data_files=tmp_path / "de.jsonl", max_new_tokens=3)
    df = predict(tiny_llama, task, "de")
    assert list(df.columns) == ["task", "lang", "item_id", "split", "prediction", "reference", "f1", "exact_match",
                                "gold_logprob", "references"]
    assert list(df.columns) == GENERATE_COLUMNS
    assert df["item_id"].tolist() == ["x1", "x2"]
    assert df.loc[1, "reference"] == "300 Meter" and df.loc[1, "references"] == ["300 Meter", "300"]
    assert df["f1"].between(0, 1).all() and df["exact_match"].isin([0.0, 1.0]).all()
    assert all("\n" not in p and p == p.strip() for p in df["prediction"])
    # gold_logprob: the first reference, teacher-forced after the prompt (with its leading space)
    for k, it in enumerate(task.items("de")):
        with torch.no_grad():
            lp = option_logprobs(tiny_llama, it.prompt, [" " + it.references[0]])
        assert df.loc[k, "gold_logprob"] == pytest.approx(float(lp[0]), abs=1e-4)


def test_predict_runs_a_task_with_its_own_predict(tiny_llama):
    task = ToyTask(langs=["en"], n=3)
    df = predict(tiny_llama, task, "en", limit=2)
    assert task.calls == ["en"] and df["item_id"].tolist() == ["en-0", "en-1"]


def test_predict_scores_a_duck_task_without_predict(tiny_llama):
    real = load_task("cloze", langs=["en"], kinds=["weekday"])

    class Duck:
        name, mode, metrics = "duck", "choice", ["accuracy"]

        def items(self, lang):
            return real.items(lang)

    got = predict(tiny_llama, Duck(), "en", limit=2)
    ref = predict(tiny_llama, real, "en", limit=2)
    assert got["task"].tolist() == ["duck", "duck"]
    assert got.drop(columns="task").equals(ref.drop(columns="task"))
    Duck.mode = "rank"
    with pytest.raises(DataValidationError, match="mode 'rank'"):
        predict(tiny_llama, Duck(), "en")


def test_score_task_tidy_with_seeded_ci(tiny_llama):
    task = load_task("cloze", langs=["en", "de"], kinds=["weekday"])
    df = score_task(tiny_llama, task, limit=4)
    assert list(df.columns) == ["task", "lang", "metric", "value", "ci_low", "ci_high", "n", "split"]
    assert list(df.columns) == SCORE_COLUMNS
    assert df["metric"].tolist() == ["margin", "gold_logprob", "accuracy"] * 2
    assert df["lang"].tolist() == ["en"] * 3 + ["de"] * 3 and (df["n"] == 4).all()
    preds = df.attrs["predictions"]
    assert set(df["split"]) == {"+".join(sorted(set(preds["split"])))}
    assert (df["ci_low"] <= df["value"]).all() and (df["value"] <= df["ci_high"]).all()
    assert len(preds) == 8 and set(preds["lang"]) == {"en", "de"}
    acc = df[df.metric == "accuracy"].reset_index(drop=True)
    assert acc.loc[0, "value"] == pytest.approx(preds[preds["lang"] == "en"]["accuracy"].mean())
    assert df.loc[0, "value"] == pytest.approx(preds[preds["lang"] == "en"]["margin"].mean())
    again = score_task(tiny_llama, task, langs=["en"], limit=4)
    assert again.iloc[0].to_dict() == df.iloc[0].to_dict()
    with pytest.raises(DataValidationError, match="no language 'fr'"):
        score_task(tiny_llama, task, langs=["fr"])


def test_score_task_bootstrap_settings(tiny_llama):
    task = load_task("cloze", langs=["en"], kinds=["weekday"], n_boot=300, seed=2, confidence=0.8)
    df = score_task(tiny_llama, task)
    acc = df.attrs["predictions"]["accuracy"].to_numpy()
    k = int(df.index[df.metric == "accuracy"][0])
    assert (df.loc[k, "ci_low"], df.loc[k, "ci_high"]) == bootstrap_ci(acc, n_boot=300, seed=2, confidence=0.8)
    wide = score_task(tiny_llama, task, confidence=0.99, n_boot=300, seed=2)
    assert (wide.loc[k, "ci_low"], wide.loc[k, "ci_high"]) == bootstrap_ci(acc, n_boot=300, seed=2, confidence=0.99)
    with pytest.warns(DeprecationWarning, match="alpha"):
        old = score_task(tiny_llama, task, alpha=0.01, n_boot=300, seed=2)
    assert old.iloc[k].to_dict() == wide.iloc[k].to_dict()


def test_lm_task_nll_equals_a_hand_computation(tiny_llama):
    from clas_lens.testing import hf_reference

    task = load_task("lm", langs=["en"], split="dev")
    df = predict(tiny_llama, task, "en", limit=3, batch_size=2)
    assert list(df.columns) == LM_COLUMNS == ["task", "lang", "item_id", "split", "nll", "neg_nll"]
    assert set(df["split"]) == {"dev"} and df["task"].tolist() == ["lm"] * 3
    ref = hf_reference(tiny_llama)
    tok = tiny_llama.tokenizer
    for k, it in enumerate(task.items("en")[:3]):
        ids = tok(it.prompt)["input_ids"]  # BOS first: every word of the sentence is a target
        with torch.no_grad():
            logp = ref(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        nll = -sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids))) / (len(ids) - 1)
        assert df.loc[k, "nll"] == pytest.approx(nll, abs=1e-4)
        assert df.loc[k, "neg_nll"] == -df.loc[k, "nll"]
    scores = score_task(tiny_llama, task, limit=3)
    assert scores["metric"].tolist() == ["neg_nll", "nll"] and scores["split"].tolist() == ["dev", "dev"]
