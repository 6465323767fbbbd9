"""What a task is: :class:`TaskItem`, :class:`Task`, and the helpers every task loader shares.

A :class:`Task` holds items per language and the settings of its evaluation (generation
length, bootstrap settings); it does not run models. Prediction and scores live in
:mod:`clas_lens.evaluation` (:func:`~clas_lens.evaluation.predict`,
:func:`~clas_lens.evaluation.score_task`).

The helpers build items the same way for every task: :func:`fill_template` (prompts never end
with whitespace), :func:`per_language` (one value or ``{lang: value}`` over defaults),
:func:`option_prefix` (a leading space, none for languages written without spaces),
:func:`task_records` (records from local files, the embedded folder or the hub),
:func:`file_languages` (the languages of a file-based task),
:func:`item_id` / :func:`text_field` (checked fields) and :func:`make_task` (the checks and
settings common to every task).

>>> item = TaskItem("a", "en", "Monday, Tuesday,", [" Wednesday", " Friday"], 0)
>>> task = Task(name="toy", mode="choice", metrics=["accuracy"], item_map={"en": [item]})
>>> task.langs, task.items("en")[0].options[0], task.confidence
(['en'], ' Wednesday', 0.95)
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

from clas_lens.data.hub import load_hub_records, read_records, resolve_data_files
from clas_lens.data.loaders import EMBEDDED_DIR, embedded_languages
from clas_lens.data.tasks.options import (  # noqa: F401  (COMMON_OPTIONS, check_options: re-exported)
    COMMON_OPTIONS,
    check_length_norm,
    check_options,
    confidence_from_alpha,
)
from clas_lens.checks import positive_int
from clas_lens.errors import DataValidationError
from clas_lens.languages import NO_SPACE_LANGS, canonical_order
from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Metrics of each task mode, dense (continuous, paired) first and binary beside them.
MODE_METRICS: dict[str, list[str]] = {
    "choice": ["margin", "gold_logprob", "accuracy"],
    "generate": ["gold_logprob", "f1", "exact_match"],
    "lm": ["neg_nll", "nll"],
}
#: What fills a template's fields in the content-free prompt of contextual calibration.
CONTENT_FREE = "N/A"

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pandas as pd

@dataclasses.dataclass(frozen=True)
class TaskItem:
    """One evaluation item.

    Choice items have ``options`` (with their leading space) and ``answer`` (index of the
    correct option); generation items have ``references`` (acceptable answers); language-model
    items (mode ``"lm"``) only their text as ``prompt``. ``split``: the split the item belongs
    to (:mod:`clas_lens.data.splits`); ``content_free``: the prompt's template filled with
    "N/A", for contextual calibration of choice items.

    >>> TaskItem("q1", "de", "Kontext: ...\\nAntwort:", references=["1890"]).references
    ['1890']
    """

    id: str
    lang: str
    prompt: str
    options: list[str] | None = None
    answer: int | None = None
    references: list[str] | None = None
    split: str | None = None
    content_free: str | None = None


@dataclasses.dataclass(kw_only=True)
class Task:
    """A task over languages: its items and the settings of its evaluation.

    ``mode`` is ``"choice"`` (options scored by summed log-probability: metrics ``margin``,
    ``gold_logprob``, ``accuracy``), ``"generate"`` (greedy generation: ``gold_logprob``,
    ``f1``, ``exact_match``) or ``"lm"`` (sentence NLL: ``neg_nll``, ``nll``). Choice tasks
    score options after ``length_norm`` ("none", "tokens", "chars") and, with ``calibrate``,
    minus their score after the content-free prompt. ``config`` records every option the task
    was built with, its split included. Bootstrap CIs of its scores use ``seed``,
    ``n_boot`` and ``confidence`` (``alpha=``: the deprecated complement, still accepted).

    >>> t = Task(name="toy", mode="choice", metrics=["accuracy"], item_map={"en": []}, n_boot=200)
    >>> t.to_dict()["n_boot"], t.to_dict()["confidence"]
    (200, 0.95)
    """

    name: str
    mode: Literal["choice", "generate", "lm"]
    metrics: list[str]
    item_map: dict[str, list[TaskItem]]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_new_tokens: int = 16
    stop: str | None = "\n"
    seed: int = 0
    n_boot: int = 1000
    confidence: float = DEFAULT_CONFIDENCE
    length_norm: str = "none"
    calibrate: bool = False
    alpha: dataclasses.InitVar[float | None] = None

    def __post_init__(self, alpha: float | None) -> None:
        if alpha is not None:
            self.confidence = confidence_from_alpha(alpha, self.confidence, where="Task", stacklevel=4)

    @property
    def langs(self) -> list[str]:
        """Languages of the task, in order."""
        return list(self.item_map)

    def __repr__(self) -> str:
        counts = ", ".join(f"{lang}:{len(v)}" for lang, v in self.item_map.items())
        return f"Task({self.name!r}, mode={self.mode!r}, items {counts})"

    def items(self, lang: str) -> list[TaskItem]:
        """Items of ``lang`` (in file order)."""
        if lang not in self.item_map:
            raise DataValidationError(
                f"Task {self.name!r} has no language {lang!r}; it has {', '.join(self.item_map)}."
            )
        return list(self.item_map[lang])

    def to_dict(self) -> dict[str, Any]:
        """What to record in a run: name, mode, metrics, languages, item counts and options."""
        return {
            "name": self.name,
            "mode": self.mode,
            "metrics": list(self.metrics),
            "langs": self.langs,
            "n_items": {lang: len(v) for lang, v in self.item_map.items()},
            "config": dict(self.config),
            "max_new_tokens": self.max_new_tokens,
            "stop": self.stop,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "confidence": self.confidence,
            "length_norm": self.length_norm,
            "calibrate": self.calibrate,
        }

    # -- deprecated (one release): the data layer does not run models --------------------
    def predict(self, model, lang: str, *, limit: int | None = None, batch_size: int = 32) -> "pd.DataFrame":
        """Deprecated: use ``clas_lens.evaluation.predict(model, task, lang, ...)``.

        >>> import warnings
        >>> from clas_lens.data.tasks import load_task
        >>> from clas_lens.testing import tiny_model
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     df = load_task("cloze", langs=["en"]).predict(tiny_model("llama"), "en", limit=1)
        >>> caught[0].category.__name__, len(df)
        ('DeprecationWarning', 1)
        """
        warnings.warn(
            "Task.predict(model, lang) is deprecated; use clas_lens.evaluation.predict(model, task, lang).",
            DeprecationWarning,
            stacklevel=2,
        )
        # Deliberate deprecation shim, removed with this method: the data layer does not run
        # models, so the evaluation layer is imported here, lazily, only to forward the old call.
        from clas_lens.evaluation import predict

        return predict(model, self, lang, limit=limit, batch_size=batch_size)

    def evaluate(
        self, model, langs: Sequence[str] | None = None, *, limit: int | None = None, batch_size: int = 32
    ) -> "pd.DataFrame":
        """Deprecated: use ``clas_lens.evaluation.score_task(model, task, langs, ...)``.

        >>> import warnings
        >>> from clas_lens.data.tasks import load_task
        >>> from clas_lens.testing import tiny_model
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     df = load_task("cloze", langs=["en"]).evaluate(tiny_model("llama"), limit=2)
        >>> caught[0].category.__name__, df["n"].tolist()
        ('DeprecationWarning', [2, 2, 2])
        """
        warnings.warn(
            "Task.evaluate(model, langs) is deprecated; use clas_lens.evaluation.score_task(model, task, langs).",
            DeprecationWarning,
            stacklevel=2,
        )
        # Deliberate deprecation shim, removed with this method (see Task.predict).
        from clas_lens.evaluation import score_task

        return score_task(model, self, langs, limit=limit, batch_size=batch_size)


def _alpha_of(task: Task) -> float:
    warnings.warn("Task.alpha is deprecated; use Task.confidence (alpha = 1 - confidence).", DeprecationWarning, stacklevel=2)
    return round(1.0 - task.confidence, 12)


# Deprecation shim (one release): ``alpha`` is an init-only argument of the dataclass; reading
# ``task.alpha`` still answers, with a warning, instead of the InitVar's class default.
Task.alpha = property(_alpha_of, doc="Deprecated complement of :attr:`Task.confidence`.")  # type: ignore[assignment]


def per_language(value: Any, lang: str, defaults: Mapping[str, Any], what: str, task: str) -> Any:
    """A per-language parameter: ``value[lang]`` of a mapping (else the default), one value
    for every language, or the default when None.

    >>> per_language({"de": "x"}, "en", {"en": "y"}, "template", "nli"), per_language("z", "en", {}, "template", "nli")
    ('y', 'z')
    """
    if isinstance(value, Mapping):
        if lang in value:
            return value[lang]
        value = None
    if value is not None:
        return value
    if lang not in defaults:
        raise DataValidationError(
            f"Task {task!r} has no default {what} for language {lang!r} (defaults exist for "
            f"{', '.join(defaults)}). Pass {what}={{{lang!r}: ...}}."
        )
    return defaults[lang]


def option_prefix(prefix: Any, lang: str) -> str:
    """What goes before each option: ``prefix`` (or ``prefix[lang]``), by default a space, none
    for languages written without spaces (:data:`~clas_lens.languages.NO_SPACE_LANGS`).

    >>> option_prefix(None, "de"), option_prefix(None, "zh"), option_prefix({"de": "_"}, "de")
    (' ', '', '_')
    """
    if isinstance(prefix, Mapping):
        prefix = prefix.get(lang)
    if prefix is None:
        return "" if lang in NO_SPACE_LANGS else " "
    return str(prefix)


def fill_template(template: str, lang: str, task: str, **fields: str) -> str:
    """``template`` filled with ``fields``; a prompt may not end with whitespace.

    >>> fill_template("Q: {question}\\nA:", "en", "qa", question="Why?")
    'Q: Why?\\nA:'
    """
    try:
        prompt = template.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise DataValidationError(
            f"Task {task!r}, language {lang!r}: the template cannot be filled ({type(e).__name__}: {e}). "
            f"It may use the placeholders {', '.join('{' + k + '}' for k in fields)} only "
            "(write literal braces as {{ }})."
        ) from None
    if prompt != prompt.rstrip():
        raise DataValidationError(
            f"Task {task!r}, language {lang!r}: the prompt ends with whitespace. Prompts must not "
            "end with a space (SentencePiece glues it to the next word); put the space at the start "
            "of the options (option_prefix) or of the generated answer instead."
        )
    return prompt


def file_languages(kind: str, data_files: Any = None) -> list[str]:
    """Languages of a file-based task: the keys of a ``data_files`` mapping, else the languages
    with an embedded file ``data/embedded/{kind}/{lang}.jsonl``.

    >>> file_languages("nli", {"zh": "zh.jsonl", "de": "de.jsonl"}), "en" in file_languages("qa")
    (['de', 'zh'], True)
    """
    if isinstance(data_files, Mapping):
        return canonical_order(data_files)
    return embedded_languages(kind)


def task_records(
    task: str, lang: str, data_files: Any, n_langs: int, hub: tuple[str, str | None, str] | None, hint: str
) -> list[tuple[str, dict[str, Any]]]:
    """``[(where, record)]`` of one language: from ``data_files`` when given, else the embedded
    folder ``data/embedded/{task}/`` (``hub`` None), else the hub dataset ``(path, config,
    split)``, ``config`` formatted with ``{lang}`` (``hint`` says how to pass local files when
    the hub is unavailable).

    >>> where, rec = task_records("nli", "en", None, 1, None, "")[0]
    >>> where.endswith("en.jsonl:1"), sorted(rec)[:3]
    (True, ['hypothesis', 'id', 'label'])
    """
    out: list[tuple[str, dict[str, Any]]] = []
    if data_files is not None:
        for f in resolve_data_files(data_files, lang, n_langs=n_langs):
            for k, rec in enumerate(read_records(f, keep_line=True)):
                line = rec.pop("__line__", None)
                out.append((f"{f}:{line}" if line is not None else f"{f} row {k}", rec))
        return out
    if hub is None:
        f = EMBEDDED_DIR / task / f"{lang}.jsonl"
        for rec in read_records(f, keep_line=True):
            out.append((f"{f}:{rec.pop('__line__')}", rec))
        return out
    path, name, split = hub
    name = name.format(lang=lang) if name is not None else None
    rows = load_hub_records(path, name, split, what=f"{task} ({lang})", local_hint=hint)
    return [(f"{path}[{name}] {split} row {k}", r) for k, r in enumerate(rows)]


def item_id(rec: Mapping[str, Any], k: int, where: str, seen: set[str], prefix: str = "") -> str:
    """The record's ``id`` (``{prefix}{k:05d}`` when it has none); a repeated id is an error.

    >>> item_id({}, 2, "f:3", set(), prefix="item-")
    'item-00002'
    """
    rid = rec.get("id")
    rid = f"{prefix}{k:05d}" if rid is None or rid == "" else str(rid)
    if rid in seen:
        raise DataValidationError(f"{where}: duplicate id {rid!r}.")
    seen.add(rid)
    return rid


def text_field(rec: Mapping[str, Any], key: str, where: str) -> str:
    """``rec[key]``, which must be a non-empty string.

    >>> text_field({"premise": "It rains."}, "premise", "f:1")
    'It rains.'
    """
    val = rec.get(key)
    if not isinstance(val, str) or not val.strip():
        raise DataValidationError(f"{where}: field {key!r} is missing or empty (id {rec.get('id')!r}).")
    return val


def make_task(
    name: str,
    mode: Literal["choice", "generate", "lm"],
    metrics: list[str],
    item_map: dict[str, list[TaskItem]],
    config: dict[str, Any],
    options: Mapping[str, Any],
) -> Task:
    """The :class:`Task`, after the checks every loader shares: no language without items;
    ``data_files``, for generation ``max_new_tokens`` / ``stop`` and for choice tasks
    ``length_norm`` / ``calibrate``, recorded in ``config``; the common options (:data:`COMMON_OPTIONS`) passed on.

    >>> it = TaskItem("a", "en", "Q:", references=["x"])
    >>> make_task("toy", "generate", ["f1"], {"en": [it]}, {}, {"max_new_tokens": 4}).config
    {'max_new_tokens': 4, 'stop': '\\n'}
    """
    for lang, items in item_map.items():
        if not items:
            raise DataValidationError(f"Task {name!r}: no items for language {lang!r}.")
    data_files = options.get("data_files")
    if data_files is not None:
        config["data_files"] = (
            {k: str(v) for k, v in data_files.items()} if isinstance(data_files, Mapping) else str(data_files)
        )
    gen: dict[str, Any] = {}
    if mode == "generate":
        gen = {"max_new_tokens": positive_int(options.get("max_new_tokens", 16), f"task {name!r} option 'max_new_tokens'"),
               "stop": options.get("stop", "\n")}
        config.update(gen)
    if mode == "choice":
        gen = {"length_norm": check_length_norm(options.get("length_norm")), "calibrate": bool(options.get("calibrate", False))}
        config.update(gen)
    common = {k: options[k] for k in ("seed", "n_boot", "confidence", "alpha") if k in options}
    return Task(name=name, mode=mode, metrics=metrics, item_map=item_map, config=config, **gen, **common)
