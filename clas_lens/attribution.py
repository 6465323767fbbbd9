"""Neuron attribution (activation x gradient of a task metric) and an ablation sanity check.

:func:`attribute_neurons` scores every MLP neuron by attribution patching: for each task item,
``sum over rows and positions of a * dM/da``, where ``a`` is the neuron's activation at the site
and ``M`` the item's metric, averaged over the language's items. To first order, zero-ablating
a neuron everywhere changes ``M`` by ``-score``: a large positive score marks a neuron the
metric relies on.

The metric ``M`` (computed with :func:`clas_lens.scoring.option_logprobs`, grad enabled, with
``share_prefix=False`` so that one forward over whole ``prompt + option`` rows shows every
position to the hooks exactly once):

* ``"choice"`` items -- the margin: log-prob of the correct option minus the best other option;
* ``"generate"`` items -- the log-prob of the first reference answer after the prompt (a
  leading space is added when the prompt does not end in whitespace, except for languages
  written without spaces: zh, ja, th -- as the scoring module expects).

At site ``"act"`` of a gated MLP, ``dM/d act = dM/d post * up`` (``post = act * up``), so the
score is ``act * up * dM/d post``; at ``"post"`` (and for non-gated MLPs) ``post * dM/d post``.

:func:`ablation_check` zero-ablates the top-k attributed neurons and ``n_random`` random sets
of k neurons and reports the mean metric drop of each.

>>> import dataclasses
>>> from clas_lens.testing import tiny_model
>>> @dataclasses.dataclass
... class Item:
...     id: str; lang: str; prompt: str; options: list; answer: int; references: list = None
>>> class Task:
...     name, mode, langs = "toy", "choice", ["en"]
...     def items(self, lang):
...         return [Item("a", "en", "One, two,", [" three", " cat"], 0), Item("b", "en", "The cat", [" sat", " two"], 0)]
>>> model = tiny_model("llama")
>>> df = attribute_neurons(model, Task(), "en")
>>> list(df.columns), len(df) == 2 * 64
(['layer', 'neuron', 'score'], True)
>>> report = ablation_check(model, Task(), "en", df, k=5, n_random=2)
>>> report.condition.tolist()
['top', 'random', 'random']
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from einops import rearrange, reduce, repeat
from jaxtyping import Float
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.languages import NO_SPACE_LANGS  # languages written without spaces: no space before an answer
from clas_lens.scoring import option_logprobs, score_choices
from clas_lens.sites import check_site, neuron_sites
from clas_lens.vocab import DEFAULT_SITE

__all__ = ["attribute_neurons", "ablation_check", "item_metric"]


def _mode(task, item) -> str:
    mode = getattr(task, "mode", None)
    if mode in ("choice", "generate"):
        return mode
    return "choice" if getattr(item, "options", None) else "generate"


def _continuation(prompt: str, answer: str, lang: str | None) -> str:
    if answer[:1].isspace() or prompt[-1:].isspace() or (lang or "").split("_")[0] in NO_SPACE_LANGS:
        return answer
    return " " + answer


def _scoring_request(task, item) -> tuple[str, list[str], int | None]:
    """(prompt, options, answer index or None) of one item."""
    if _mode(task, item) == "choice":
        options = list(item.options or [])
        if len(options) < 2 or item.answer is None or not 0 <= int(item.answer) < len(options):
            raise DataValidationError(
                f"Choice item {item.id!r} needs at least two options and a valid answer index "
                f"(got {len(options)} options, answer={item.answer!r})."
            )
        return item.prompt, options, int(item.answer)
    refs = list(getattr(item, "references", None) or [])
    if not refs or not refs[0]:
        raise DataValidationError(f"Generate item {item.id!r} has no reference answer to score.")
    return item.prompt, [_continuation(item.prompt, refs[0], getattr(item, "lang", None))], None


def _metric_from_logprobs(lp: Tensor, answer: int | None) -> Tensor:
    if answer is None:
        return lp[0]
    others = torch.cat([lp[:answer], lp[answer + 1 :]])
    return lp[answer] - others.max()


def item_metric(model, task, item) -> Float[Tensor, ""]:
    """The item's metric (margin for choice items, reference log-prob for generate items).

    Differentiable when grad is enabled.
    """
    prompt, options, answer = _scoring_request(task, item)
    return _metric_from_logprobs(option_logprobs(model, prompt, options), answer)


def _items(task, lang: str, limit: int | None) -> list:
    langs = getattr(task, "langs", None)
    if langs is not None and lang not in langs:
        raise DataValidationError(f"Task {getattr(task, 'name', task)!r} has no language {lang!r} (it has {list(langs)}).")
    items = list(task.items(lang))
    if limit is not None:
        items = items[: int(limit)]
    if not items:
        raise DataValidationError(f"Task {getattr(task, 'name', task)!r} has no items for {lang!r}.")
    return items


def attribute_neurons(
    model,
    task,
    lang: str,
    *,
    site: str = DEFAULT_SITE,
    limit: int | None = None,
    layers=None,
    progress: bool | None = None,
) -> "pd.DataFrame":  # noqa: F821
    """Activation x gradient attribution of every neuron to the task metric, per language.

    Args:
        model: a TransformerBridge.
        task: a Task (``.items(lang)`` -> TaskItems, ``.mode`` "choice" | "generate").
        lang: the language whose items are scored.
        site: ``"post"`` or ``"act"``.
        limit: use only the first ``limit`` items.
        layers: layers to score (``None``: all; ints, negative or ``"last:k"``).

    Returns:
        Tidy DataFrame (layer, neuron, score): the mean over items of the summed
        ``activation * d metric / d activation``. ``df.attrs`` records lang, site, task,
        metric and n_items.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    check_site(site)
    sites = neuron_sites(model)
    layers = sites.check_layers(layers)
    items = _items(task, lang, limit)
    use_up = site == "act" and sites.gated
    total = torch.zeros((len(layers), sites.d_mlp), dtype=torch.float64)
    cap: dict[str, dict[int, Tensor]] = {"post": {}, "act": {}, "up": {}}

    def capture_post(layer):
        def fn(t):
            if not t.requires_grad:
                t = t.detach().requires_grad_(True)
            cap["post"][layer] = t
            return t

        return fn

    hooks = []
    for layer in layers:
        hooks += sites.edit_hooks("post", layer, capture_post(layer))
        if use_up:
            hooks += sites.read_hooks("act", layer, lambda v, layer=layer: cap["act"].__setitem__(layer, v.detach()))
            hooks.append((sites.up_hook(layer), lambda t, hook, layer=layer: cap["up"].__setitem__(layer, t.detach())))
    metric_name = "margin" if _mode(task, items[0]) == "choice" else "reference_logprob"
    show = progress if progress is not None else len(items) >= 16
    for item in tqdm(items, desc=f"attribution {lang}", disable=not show, leave=False):
        prompt, options, answer = _scoring_request(task, item)
        for d in cap.values():
            d.clear()
        with torch.enable_grad(), model.hooks(fwd_hooks=hooks):
            metric = _metric_from_logprobs(option_logprobs(model, prompt, options, share_prefix=False), answer)
            posts = [cap["post"][l] for l in layers]
            grads = torch.autograd.grad(metric, posts, allow_unused=True)
        for i, (layer, post, g) in enumerate(zip(layers, posts, grads)):
            if g is None:
                continue
            if use_up:
                a_g = cap["act"][layer] * cap["up"][layer] * g
            else:
                a_g = post.detach() * g
            total[i] += reduce(a_g.to(torch.float64), "batch pos neuron -> neuron", "sum").cpu()
    mean = total / len(items)
    # one row per (layer, neuron), layer-major
    df = pd.DataFrame(
        {
            "layer": repeat(np.array(layers, dtype=np.int64), "layer -> (layer neuron)", neuron=sites.d_mlp),
            "neuron": repeat(np.arange(sites.d_mlp, dtype=np.int64), "neuron -> (layer neuron)", layer=len(layers)),
            "score": rearrange(mean, "layer neuron -> (layer neuron)").numpy(),
        }
    )
    df.attrs.update(
        {"lang": lang, "site": site, "task": getattr(task, "name", None), "metric": metric_name, "n_items": len(items)}
    )
    return df


# ---------------------------------------------------------------------------------------------
# ablation check
# ---------------------------------------------------------------------------------------------


def _zero_hooks(sites, site: str, neurons: Sequence[tuple[int, int]]) -> list:
    by_layer: dict[int, list[int]] = {}
    for layer, n in neurons:
        by_layer.setdefault(int(layer), []).append(int(n))
    hooks = []
    for layer, idx in by_layer.items():
        index = torch.tensor(sorted(set(idx)), dtype=torch.long)

        def fn(v, index=index):
            v = v.clone()
            v[..., index.to(v.device)] = 0
            return v

        hooks += sites.edit_hooks(site, layer, fn)
    return hooks


@torch.no_grad()
def _mean_metric(model, task, items, hooks, batch_size: int) -> tuple[float, np.ndarray]:
    requests = [_scoring_request(task, it) for it in items]
    with model.hooks(fwd_hooks=hooks):
        lps = score_choices(model, [(p, o) for p, o, _ in requests], batch_size=batch_size, progress=False)
    vals = np.array([float(_metric_from_logprobs(lp, a)) for lp, (_, _, a) in zip(lps, requests)])
    return float(vals.mean()), vals


def ablation_check(
    model,
    task,
    lang: str,
    scores: "pd.DataFrame",  # noqa: F821
    *,
    k: int = 20,
    n_random: int = 5,
    seed: int = 0,
    site: str = DEFAULT_SITE,
    limit: int | None = None,
    batch_size: int = 32,
) -> "pd.DataFrame":  # noqa: F821
    """Zero-ablate the top-``k`` attributed neurons and ``n_random`` random k-sets; report drops.

    Random sets are drawn (seeded) from the scored neurons outside the top k. Zeroing acts the
    same at both sites, so ``site`` only chooses where the hook sits.

    Returns:
        DataFrame, one row per condition (``"top"``, then ``"random"`` x n_random): condition,
        draw, k, baseline (mean metric, no ablation), ablated (mean metric), metric_drop
        (baseline - ablated; the margin drop for choice tasks), predicted_drop (sum of the ablated neurons' scores, the
        first-order estimate), neurons (the ablated ``(layer, neuron)`` pairs).
        ``df.attrs["summary"]``: top_drop, random_drop_mean,
        random_drop_std, n_items, lang, metric.
    """
    import pandas as pd

    check_site(site)
    missing = {"layer", "neuron", "score"} - set(getattr(scores, "columns", []))
    if missing:
        raise DataValidationError(
            f"scores must be the DataFrame of attribute_neurons (columns layer, neuron, score); missing {sorted(missing)}."
        )
    if not 1 <= k <= len(scores):
        raise ValueError(f"k={k} must be between 1 and the {len(scores)} scored neurons.")
    if n_random < 0:
        raise ValueError(f"n_random must be >= 0, got {n_random}.")
    sites = neuron_sites(model)
    items = _items(task, lang, limit)
    sc = scores.reset_index(drop=True)
    order = np.argsort(-sc["score"].to_numpy(), kind="stable")
    top = order[:k]
    rest = order[k:] if len(order) - k >= k else order
    rng = np.random.default_rng(seed)
    draws = [("top", 0, top)] + [("random", i, rng.choice(rest, size=k, replace=False)) for i in range(n_random)]
    base_mean, _ = _mean_metric(model, task, items, [], batch_size)
    rows = []
    for condition, draw, rows_idx in draws:
        neurons = list(zip(sc["layer"].to_numpy()[rows_idx], sc["neuron"].to_numpy()[rows_idx]))
        abl_mean, _ = _mean_metric(model, task, items, _zero_hooks(sites, site, neurons), batch_size)
        rows.append(
            {
                "condition": condition,
                "draw": draw,
                "k": k,
                "baseline": base_mean,
                "ablated": abl_mean,
                "metric_drop": base_mean - abl_mean,
                "predicted_drop": float(sc["score"].to_numpy()[rows_idx].sum()),
                "neurons": [(int(l), int(n)) for l, n in neurons],
            }
        )
    df = pd.DataFrame(rows)
    rnd = df[df.condition == "random"]["metric_drop"]
    df.attrs["summary"] = {
        "top_drop": float(df.loc[0, "metric_drop"]),
        "random_drop_mean": float(rnd.mean()) if len(rnd) else math.nan,
        "random_drop_std": float(rnd.std(ddof=1)) if len(rnd) > 1 else math.nan,
        "n_items": len(items),
        "lang": lang,
        "metric": "margin" if _mode(task, items[0]) == "choice" else "reference_logprob",
    }
    return df
