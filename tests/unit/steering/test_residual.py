"""DiffMeanSteering (clas_lens/steering/residual.py) against the reference, the residual means it
uses (re-exported from clas_lens.stats), the deprecated ``scale=`` and old saved dicts."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError
from clas_lens.steering import DiffMeanSteering, ResidualMeans, residual_means

from ._reference import TEXTS, check_against_reference, engine_logits, ref_of


def test_diffmean_matches_reference(tiny):
    corpus = {"en": ["the cat sat on the mat", "one two three"], "de": ["Der Hund schläft im Garten", "eins zwei"]}
    rm = residual_means(tiny, corpus, layers=None)
    iv = DiffMeanSteering("en", "de", layers=[0], strength=6.0, means=rm)
    d = rm.vector("de", 0) - rm.vector("en", 0)
    delta = (6.0 * d / d.norm()).float()
    # DiffMean edits BOS like any real token (no edit_bos option): the reference edits it too
    check_against_reference(tiny, [iv], [("resid", 0, lambda h: h + delta, "all", True)])
    iv_last = DiffMeanSteering("en", "de", layers=[0], strength=6.0, means=rm, positions="last")
    check_against_reference(tiny, [iv_last], [("resid", 0, lambda h: h + delta, "last", True)])


def test_residual_means_equal_hf_hidden_states(tiny_llama):
    corpus = {"en": ["the cat sat", "a b"], "ru": ["Привет мир как дела"]}
    rm = residual_means(tiny_llama, corpus, layers=[0], batch_size=1)
    ref = ref_of(tiny_llama)
    for lang, texts in corpus.items():
        acc, n = torch.zeros(32, dtype=torch.float64), 0
        for t in texts:
            ids = tiny_llama.tokenizer(t, return_tensors="pt").input_ids
            with torch.no_grad():
                hs = ref(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
            acc += hs[1:].double().sum(0)  # drop BOS
            n += hs.shape[0] - 1
        assert rm.n_tokens[lang] == n
        assert (rm.means[lang][0] - acc / n).abs().max() < 1e-5


def test_residual_means_are_the_stats_ones():
    from clas_lens.stats import residual_means as stats_rm
    from clas_lens.stats.residual_means import ResidualMeans as StatsRM

    assert ResidualMeans is StatsRM and residual_means is stats_rm


def test_diffmean_templates_and_errors(tiny_llama):
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"]})
    tpl = DiffMeanSteering(None, "en", means=rm)
    assert tpl.needs_lang and tpl.for_lang("de").source_lang == "de"
    assert DiffMeanSteering("de", None, means=rm).for_lang("en").target_lang == "en"
    with pytest.raises(DataValidationError, match="for_lang"):
        tpl.hooks(tiny_llama)
    with pytest.raises(DataValidationError, match="source_lang or target_lang"):
        DiffMeanSteering(None, None, means=rm)
    with pytest.raises(DataValidationError, match="means="):
        DiffMeanSteering("en", "de")
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        DiffMeanSteering("en", "xx", means=rm)
    # a layer spec other than a list keeps every layer's means in the saved dict
    for spec in ("last:1", "all"):
        d = DiffMeanSteering("en", "de", layers=spec, means=rm).to_dict()
        assert d["layers"] == spec and d["means"]["layers"] == rm.layers


def test_deprecated_scale_and_old_dicts(tiny_llama):
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"]}, layers=[0, 1])
    new = DiffMeanSteering("en", "de", layers=[1], strength=3.0, means=rm)
    with pytest.warns(DeprecationWarning, match="strength"):
        old = DiffMeanSteering("en", "de", layers=[1], scale=3.0, means=rm)
    with pytest.warns(DeprecationWarning, match="strength"):
        assert old.scale == 3.0
    assert old.to_dict() == new.to_dict()
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    assert torch.equal(engine_logits(tiny_llama, enc, old), engine_logits(tiny_llama, enc, new))
    saved = json.loads(json.dumps(new.to_dict()))
    saved["scale"] = saved.pop("strength")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        back = DiffMeanSteering.from_dict(saved)
    assert back.strength == 3.0 and back.to_dict() == new.to_dict()
    assert torch.equal(engine_logits(tiny_llama, enc, back), engine_logits(tiny_llama, enc, new))
