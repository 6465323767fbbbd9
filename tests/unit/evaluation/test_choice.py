"""Choice predictions: length_norm and contextual calibration against a hand computation with
option_logprobs on a tiny model; gold_logprob is the gold option's raw log-prob; the task's
settings are the defaults and predict() can override them."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from clas_lens.data.tasks import TaskItem, load_task
from clas_lens.errors import DataValidationError
from clas_lens.evaluation import CHOICE_COLUMNS, predict
from clas_lens.evaluation.choice import decision_scores, predict_choice
from clas_lens.scoring import option_logprobs


def hand_lengths(tok, prompt, options, how):
    if how == "none":
        return torch.ones(len(options))
    if how == "chars":
        return torch.tensor([float(len(o)) for o in options])
    p = len(tok(prompt)["input_ids"])
    return torch.tensor([float(len(tok(prompt + o)["input_ids"]) - p) for o in options])


@pytest.mark.parametrize("how", ["none", "tokens", "chars"])
@pytest.mark.parametrize("calibrate", [False, True])
def test_scores_as_defined(tiny_llama, how, calibrate):
    task = load_task("cloze", langs=["en"], kinds="weekday")
    items = task.items("en")[:3]
    df = predict(tiny_llama, task, "en", limit=3, length_norm=how, calibrate=calibrate)
    assert list(df.columns) == CHOICE_COLUMNS
    tok = tiny_llama.tokenizer
    for k, it in enumerate(items):
        with torch.no_grad():
            raw = option_logprobs(tiny_llama, it.prompt, it.options).cpu()
            cf = option_logprobs(tiny_llama, "N/A, N/A, N/A,", it.options).cpu()
        score = raw / hand_lengths(tok, it.prompt, it.options, how)
        if calibrate:
            score = score - cf / hand_lengths(tok, "N/A, N/A, N/A,", it.options, how)
        others = torch.cat([score[: it.answer], score[it.answer + 1 :]])
        assert df.loc[k, "margin"] == pytest.approx(float(score[it.answer] - others.max()), abs=1e-4)
        assert df.loc[k, "pred_index"] == int(score.argmax())
        assert df.loc[k, "accuracy"] == float(int(score.argmax()) == it.answer)
        assert df.loc[k, "gold_logprob"] == pytest.approx(float(raw[it.answer]), abs=1e-4)  # always the raw log-prob


def test_task_settings_are_the_defaults(tiny_llama):
    plain = load_task("nli", langs=["en"])
    tuned = load_task("nli", langs=["en"], length_norm="tokens", calibrate=True)
    a = predict(tiny_llama, tuned, "en", limit=3)
    b = predict(tiny_llama, plain, "en", limit=3, length_norm="tokens", calibrate=True)
    pd.testing.assert_frame_equal(a, b)
    c = predict(tiny_llama, tuned, "en", limit=3, length_norm="none", calibrate=False)
    pd.testing.assert_frame_equal(c, predict(tiny_llama, plain, "en", limit=3))
    assert (a["gold_logprob"] == c["gold_logprob"]).all() and not (a["margin"] == c["margin"]).all()
    with pytest.raises(DataValidationError, match="length_norm='words'"):
        predict(tiny_llama, plain, "en", limit=1, length_norm="words")


def test_calibration_needs_a_content_free_prompt(tiny_llama):
    items = [TaskItem("a", "en", "One, two,", [" three", " four"], 0)]
    with pytest.raises(DataValidationError, match="content-free prompt.*'a'"):
        predict_choice(tiny_llama, "t", "en", items, calibrate=True)
    raw = [torch.tensor([-1.0, -2.0])]
    assert decision_scores(tiny_llama, items, raw, length_norm="none", calibrate=False)[0].tolist() == [-1.0, -2.0]
