"""clas_lens.attribution: activation x gradient against a plain HF autograd reference; ablation
against hand-written HF zeroing hooks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from clas_lens.attribution import ablation_check, attribute_neurons, item_metric
from clas_lens.errors import DataValidationError
from clas_lens.testing import hf_reference


@dataclasses.dataclass
class Item:  # the TaskItem contract
    id: str
    lang: str
    prompt: str
    options: list | None
    answer: int | None
    references: list | None = None


class ToyTask:
    name = "toy"
    langs = ["en", "de"]

    def __init__(self, mode="choice"):
        self.mode = mode

    def items(self, lang):
        if self.mode == "generate":
            return [Item("g1", lang, "Q: One, two, what comes next? A:", None, None, ["three", "3"]),
                    Item("g2", lang, "Monday, Tuesday,", None, None, [" Wednesday"])]
        if lang == "en":
            return [Item("c1", lang, "One, two,", [" three", " cat", " Monday"], 0),
                    Item("c2", lang, "The cat sat on the", [" mat", " dog"], 1),
                    Item("c3", lang, "Monday, Tuesday,", [" Wednesday", " one"], 0)]
        return [Item("d1", lang, "Eins, zwei,", [" drei", " Katze"], 0)]


# ---------------------------------------------------------------------------------------------
# independent reference
# ---------------------------------------------------------------------------------------------


def _capture_modules(hf, site):
    """Per layer: (module, kind) whose output ('out') or input ('in') is the site activation."""
    if hasattr(hf, "transformer"):  # GPT-2: act output == post
        return [(blk.mlp.act, "out") for blk in hf.transformer.h]
    layers = hf.model.layers
    if site == "act":
        return [(layer.mlp.act_fn, "out") for layer in layers]
    return [(layer.mlp.down_proj, "in") for layer in layers]


def hf_attribution(model, items, site, answer_text=lambda it: None):
    """Mean over items of sum(a * dM/da), M the margin (or reference log-prob), per layer."""
    hf = hf_reference(model)
    tok = model.tokenizer
    mods = _capture_modules(hf, site)
    caps = {l: [] for l in range(len(mods))}
    handles = []
    for l, (mod, kind) in enumerate(mods):
        if kind == "out":
            handles.append(mod.register_forward_hook(lambda m, a, out, l=l: caps[l].append(out)))
        else:
            handles.append(mod.register_forward_pre_hook(lambda m, a, l=l: caps[l].append(a[0])))
    total = None
    for it in items:
        for v in caps.values():
            v.clear()
        options = it.options if it.options else [answer_text(it)]
        lps = []
        for opt in options:
            p_ids = tok(it.prompt)["input_ids"]
            ids = tok(it.prompt + opt)["input_ids"]
            assert ids[: len(p_ids)] == p_ids
            logp = hf(torch.tensor([ids])).logits.log_softmax(-1)[0]
            lps.append(sum(logp[t - 1, ids[t]] for t in range(len(p_ids), len(ids))))
        lp = torch.stack(lps)
        if it.options:
            metric = lp[it.answer] - torch.cat([lp[: it.answer], lp[it.answer + 1 :]]).max()
        else:
            metric = lp[0]
        flat = [t for l in caps for t in caps[l]]
        grads = torch.autograd.grad(metric, flat)
        per_layer, k = [], 0
        for l in caps:
            s = 0
            for t in caps[l]:
                s = s + (t.detach().double() * grads[k].double()).sum(dim=(0, 1))
                k += 1
            per_layer.append(s)
        cur = torch.stack(per_layer)
        total = cur if total is None else total + cur
    for h in handles:
        h.remove()
    return total / len(items)


@pytest.mark.parametrize("site", ["post", "act"])
def test_attribution_matches_hf_autograd(tiny, site):
    task = ToyTask()
    df = attribute_neurons(tiny, task, "en", site=site)
    assert list(df.columns) == ["layer", "neuron", "score"]
    assert df.attrs["n_items"] == 3 and df.attrs["metric"] == "margin" and df.attrs["site"] == site
    got = torch.tensor(df.score.to_numpy()).reshape(2, -1)
    ref = hf_attribution(tiny, task.items("en"), site)
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-5 * float(ref.abs().max()))
    assert float(ref.abs().max()) > 0


def test_generate_task_scores_first_reference_logprob(tiny_llama):
    task = ToyTask("generate")
    df = attribute_neurons(tiny_llama, task, "de", limit=1)
    assert df.attrs["metric"] == "reference_logprob" and df.attrs["n_items"] == 1
    # "three" is scored as " three" after a prompt ending in ":"
    ref = hf_attribution(tiny_llama, task.items("de")[:1], "post", answer_text=lambda it: " " + it.references[0])
    got = torch.tensor(df.score.to_numpy()).reshape(2, -1)
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-5 * float(ref.abs().max()))
    from clas_lens.scoring import option_logprobs

    with torch.no_grad():
        m = item_metric(tiny_llama, task, task.items("de")[1])
        assert float(m) == pytest.approx(float(option_logprobs(tiny_llama, "Monday, Tuesday,", [" Wednesday"])[0]))


def test_layers_subset_and_zero_ablation_first_order(tiny_gpt2):
    task = ToyTask()
    full = attribute_neurons(tiny_gpt2, task, "en")
    last = attribute_neurons(tiny_gpt2, task, "en", layers="last:1")
    assert last.layer.unique().tolist() == [1]
    np.testing.assert_allclose(last.score.to_numpy(), full[full.layer == 1].score.to_numpy(), rtol=1e-6, atol=1e-9)
    # scaling one neuron by (1 - eps) changes the metric by about -eps * score (first order)
    from clas_lens.sites import neuron_sites

    row = full.iloc[int(full.score.abs().to_numpy().argmax())]
    layer, neuron, score = int(row.layer), int(row.neuron), float(row.score)
    eps = 1e-3
    sites = neuron_sites(tiny_gpt2)

    def scale(v):
        v = v.clone()
        v[..., neuron] *= 1 - eps
        return v

    with torch.no_grad():
        base = np.mean([float(item_metric(tiny_gpt2, task, it)) for it in task.items("en")])
        with tiny_gpt2.hooks(fwd_hooks=sites.edit_hooks("post", layer, scale)):
            scaled = np.mean([float(item_metric(tiny_gpt2, task, it)) for it in task.items("en")])
    assert scaled - base == pytest.approx(-eps * score, rel=0.05, abs=1e-7)


def test_errors(tiny_llama):
    task = ToyTask()
    with pytest.raises(DataValidationError, match="no language 'fr'"):
        attribute_neurons(tiny_llama, task, "fr")

    class Bad(ToyTask):
        def items(self, lang):
            return [Item("x", lang, "One,", [" two"], 0)]

    with pytest.raises(DataValidationError, match="at least two options"):
        attribute_neurons(tiny_llama, Bad(), "en")
    with pytest.raises(ValueError, match="site"):
        attribute_neurons(tiny_llama, task, "en", site="resid")
    import pandas as pd

    with pytest.raises(DataValidationError, match="missing"):
        ablation_check(tiny_llama, task, "en", pd.DataFrame({"layer": [0]}))


# ---------------------------------------------------------------------------------------------
# ablation check
# ---------------------------------------------------------------------------------------------


def _hf_margin_with_zeroed(hf, model, items, neurons):
    """Mean margin with ``neurons`` [(layer, neuron)] zeroed at the down-projection input."""
    tok = model.tokenizer
    handles = []
    for layer, mlp in enumerate(hf.model.layers):
        cols = [n for l, n in neurons if l == layer]

        def pre(m, args, cols=cols):
            x = args[0].clone()
            x[..., cols] = 0
            return (x,)

        handles.append(mlp.mlp.down_proj.register_forward_pre_hook(pre))
    vals = []
    with torch.no_grad():
        for it in items:
            lps = []
            for opt in it.options:
                p_ids = tok(it.prompt)["input_ids"]
                ids = tok(it.prompt + opt)["input_ids"]
                logp = hf(torch.tensor([ids])).logits.log_softmax(-1)[0]
                lps.append(sum(logp[t - 1, ids[t]] for t in range(len(p_ids), len(ids))))
            lp = torch.stack(lps)
            vals.append(float(lp[it.answer] - torch.cat([lp[: it.answer], lp[it.answer + 1 :]]).max()))
    for h in handles:
        h.remove()
    return float(np.mean(vals))


@pytest.mark.parametrize("site", ["post", "act"])
def test_ablation_check_against_hf_zeroing(tiny_llama, site):
    task = ToyTask()
    scores = attribute_neurons(tiny_llama, task, "en", site=site)
    rep = ablation_check(tiny_llama, task, "en", scores, k=8, n_random=3, seed=1, site=site)
    assert rep.condition.tolist() == ["top", "random", "random", "random"]
    assert list(rep.columns) == ["condition", "draw", "k", "baseline", "ablated", "metric_drop", "predicted_drop", "neurons"]
    items = task.items("en")
    hf = hf_reference(tiny_llama)
    top = rep.neurons[0]
    expected_top = scores.sort_values("score", ascending=False, kind="stable").head(8)
    assert sorted(top) == sorted(zip(expected_top.layer.tolist(), expected_top.neuron.tolist()))
    assert rep.predicted_drop[0] == pytest.approx(expected_top.score.sum())
    # zeroing gives the same model at both sites; compare with hand-written HF zeroing
    assert rep.baseline[0] == pytest.approx(_hf_margin_with_zeroed(hf, tiny_llama, items, []), abs=1e-4)
    for row in rep.itertuples():
        assert row.ablated == pytest.approx(_hf_margin_with_zeroed(hf, tiny_llama, items, row.neurons), abs=1e-4)
        assert row.metric_drop == pytest.approx(row.baseline - row.ablated)
        if row.condition == "random":
            assert not set(row.neurons) & set(top)
    s = rep.attrs["summary"]
    assert s["top_drop"] == rep.metric_drop[0] and s["n_items"] == 3
    assert s["random_drop_mean"] == pytest.approx(rep.metric_drop[1:].mean())
    # seeded draws are reproducible
    again = ablation_check(tiny_llama, task, "en", scores, k=8, n_random=3, seed=1, site=site)
    assert again.neurons.tolist() == rep.neurons.tolist()


def test_top_attributed_neurons_matter_more_than_random(tiny):
    task = ToyTask()
    scores = attribute_neurons(tiny, task, "en")
    rep = ablation_check(tiny, task, "en", scores, k=10, n_random=5)
    s = rep.attrs["summary"]
    assert s["top_drop"] > s["random_drop_mean"]
    with pytest.raises(ValueError, match="k="):
        ablation_check(tiny, task, "en", scores, k=0)
