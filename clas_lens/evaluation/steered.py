"""Evaluate a task across languages under steering conditions, with CIs and paired tests.

:func:`evaluate` runs :func:`~clas_lens.evaluation.predict` for every (language, condition)
inside :func:`clas_lens.steering.steer` and returns a tidy DataFrame, one row per (lang,
condition, metric) (:func:`~clas_lens.evaluation.summarise`): ``task, lang, condition, metric,
value, ci_low, ci_high, n`` and, for every condition except the unsteered one, the paired gain
against it on the same items: ``diff, diff_ci_low, diff_ci_high, p_value, p_holm, mde, test``
(``diff = steered - unsteered``; calibrated tests by default -- exact McNemar mid-p with
Newcombe's CI for binary metrics, the sign-flip test with a t interval for continuous ones --
or ``test="bootstrap"``), and ``split``. The per-item predictions of every run are kept in
``df.attrs["predictions"]`` (with a ``condition`` column); for NLI tasks the per-class recall
is in ``df.attrs["per_class_recall"]``.

Per-language templates (``ClasSteering(neurons)`` with ``target_lang=None``, ``SetNeurons.int_mu
(neurons, stats)``, ``DiffMeanSteering(None, "en", ...)``) are bound to each evaluated language:
German is steered with German's specific neurons, Swahili with Swahili's. The anchor language
(English by default) is evaluated in every run, so an English drop is always reported next to a
gain. See docs/methods.md, "Evaluation".
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from clas_lens.errors import DataValidationError
from clas_lens.evaluation.breakdown import NLI_TASKS, per_class_recall
from clas_lens.evaluation.inference import check_test
from clas_lens.evaluation.prediction import predict
from clas_lens.evaluation.summary import summarise
from clas_lens.metrics import resolve_confidence
from clas_lens.models import model_info
from clas_lens.steering import as_interventions, bind_lang, steer
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED, canonical_condition, is_unsteered

_BULKY = ("neurons", "mask", "values", "means")


def describe(interventions) -> list[dict]:
    """``to_dict()`` of each intervention without its bulky parts (masks, values, means).

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> describe(Deactivate(torch.eye(2, 64, dtype=torch.bool)))[0]["type"]
    'Deactivate'
    """
    out = []
    for iv in as_interventions(interventions):
        d = iv.to_dict()
        for k in _BULKY:
            if k in d:
                d[k] = "..."
        out.append(d)
    return out


def steering_conditions(conditions: Mapping[str, Any] | None) -> tuple[dict[str, list], str]:
    """``({name: [interventions]}, name of the unsteered condition)``.

    The first condition without interventions is the unsteered one (a legacy name,
    ``"baseline"`` or ``"base"``, becomes ``"unsteered"``); when there is none,
    ``"unsteered"`` is added first. A condition with interventions may not be called
    ``"unsteered"`` (or a legacy name of it).

    >>> conds, ref = steering_conditions({"baseline": None})
    >>> list(conds), ref
    (['unsteered'], 'unsteered')
    """
    if conditions is None:
        conditions = {}
    if not isinstance(conditions, Mapping):
        raise DataValidationError(
            "conditions must be a dict {name: intervention | list | None}, e.g. "
            f"{{'{UNSTEERED}': None, 'clas': ClasSteering(neurons)}}."
        )
    out: dict[str, list] = {}
    for k, v in conditions.items():
        ivs = as_interventions(v)
        name = str(k)
        if is_unsteered(name):
            if ivs:
                raise DataValidationError(
                    f"Condition {name!r} has interventions, but {name!r} names the unsteered condition; "
                    "give the steered condition another name."
                )
            name = canonical_condition(name)
        if name in out:
            raise DataValidationError(f"Two conditions are named {name!r} (legacy names of {UNSTEERED!r} included).")
        out[name] = ivs
    empty = [k for k, v in out.items() if not v]
    if empty:
        return out, empty[0]
    return {UNSTEERED: [], **out}, UNSTEERED


def evaluate(
    model,
    task,
    langs: Sequence[str] | None = None,
    conditions: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
    anchor: str | None = "en",
    batch_size: int = 32,
    test: str = "calibrated",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Score ``task`` in ``langs`` under each steering condition; tidy rows + paired diffs.

    Args:
        model: a TransformerBridge.
        task: a Task (``load_task``), or anything :func:`~clas_lens.evaluation.predict` runs
            (``name``, ``metrics``, ``items(lang)`` and ``mode`` or its own ``predict``).
        langs: languages to evaluate (default: the task's); ``anchor`` is added (first) if missing.
        conditions: ``{name: intervention | list of them | None}``. The first condition with no
            intervention is the unsteered reference; if there is none, ``"unsteered"`` is
            added. Templates (``target_lang=None``) are bound to each evaluated language.
        limit: first n items per language.
        anchor: language evaluated in every run (None: do not add one).
        batch_size: passed to :func:`~clas_lens.evaluation.predict`.
        test: ``"calibrated"`` (default: Wilson / t intervals, exact McNemar mid-p and
            Newcombe for binary metrics, sign-flip and t for continuous ones) or
            ``"bootstrap"`` (the seeded percentile and paired bootstrap).
        n_boot, seed, confidence: settings of the CIs and tests (``n_boot`` for the bootstrap;
            ``seed`` also seeds the Monte-Carlo sign-flip test; ``alpha``: deprecated
            complement of ``confidence``).

    Returns:
        DataFrame with :data:`~clas_lens.evaluation.COLUMNS`; ``attrs``: ``predictions`` (per
        item, with ``condition``), ``per_class_recall`` (nli / xnli), ``unsteered`` (the reference condition's name; also under
        the deprecated key ``baseline``), ``conditions`` (intervention settings, incl. site),
        ``model_info``, ``langs``.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.data.tasks import load_task
    >>> from clas_lens.steering import Deactivate
    >>> model = tiny_model("llama")
    >>> task = load_task("cloze", langs=["en", "de"])
    >>> off = Deactivate(torch.ones(2, 64, dtype=torch.bool), layers=[1])
    >>> df = evaluate(model, task, ["de"], {"none": None, "off": off}, limit=3, n_boot=100)
    >>> sorted(set(df["lang"])), sorted(set(df["condition"]))
    (['de', 'en'], ['none', 'off'])
    >>> len(df.attrs["predictions"])
    12
    """
    confidence = resolve_confidence(confidence, alpha, where="evaluate")
    check_test(test)  # before any forward pass
    langs = list(langs) if langs is not None else list(getattr(task, "langs", []))
    if isinstance(langs, str):
        langs = [langs]
    if anchor is not None and anchor not in langs:
        langs = [anchor] + langs
    if not langs:
        raise DataValidationError("evaluate() got no languages: pass langs=[...].")
    if len(set(langs)) != len(langs):
        raise DataValidationError(f"Duplicated languages in {langs}.")
    for lang in langs:
        task.items(lang)  # a clear error for an unknown language before any work
    conds, reference = steering_conditions(conditions)
    # Bind templates and build every hook once up front: errors (unknown language, a
    # NeuronSet from another model) surface before the first forward pass.
    bound: dict[tuple[str, str], list] = {}
    for lang in langs:
        for name, ivs in conds.items():
            b = bind_lang(ivs, lang)
            for iv in b:
                iv.hooks(model)
            bound[(lang, name)] = b
    runs = [(lang, name) for lang in langs for name in conds]
    show = progress if progress is not None else len(runs) >= 4
    preds = []
    for lang, name in tqdm(runs, desc=f"evaluate {getattr(task, 'name', '')}", disable=not show, leave=False):
        with steer(model, *bound[(lang, name)]):
            df = predict(model, task, lang, limit=limit, batch_size=batch_size)
        df = df.copy()
        if "lang" not in df.columns:
            df.insert(0, "lang", lang)
        if "task" not in df.columns:
            df.insert(0, "task", getattr(task, "name", "task"))
        df.insert(int(df.columns.get_loc("lang")) + 1, "condition", name)
        preds.append(df)
    predictions = pd.concat(preds, ignore_index=True)
    out = summarise(
        predictions, list(task.metrics), baseline=reference, test=test, n_boot=n_boot, seed=seed, confidence=confidence
    )
    out.attrs["predictions"] = predictions
    if getattr(task, "name", None) in NLI_TASKS and {"answer_index", "pred_index"} <= set(predictions.columns):
        out.attrs["per_class_recall"] = per_class_recall(predictions, confidence=confidence)
    out.attrs["unsteered"] = reference
    out.attrs["baseline"] = reference  # deprecated key (one release): read attrs["unsteered"]
    out.attrs["conditions"] = {name: describe(ivs) for name, ivs in conds.items()}
    out.attrs["model_info"] = model_info(model).to_dict()
    out.attrs["langs"] = langs
    return out
