"""The task registry: task names, the options and languages each accepts, and :func:`load_task`.

Each task module registers itself with :func:`register_task` (the built-in ones, in order:
nli, qa, cloze, xnli, xquad, lm, completion); :func:`load_task` looks the name up, checks options and
languages the same way for every task, and calls the task's loader. :data:`TASKS` is read from
the registry, so a task registered by a user is listed too.

>>> task_names()[:3]
('nli', 'qa', 'cloze')
>>> load_task("cloze", langs=["en"], kinds="weekday").items("en")[0].prompt
'Monday, Tuesday, Wednesday,'
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Iterable, Sequence

from clas_lens.data.splits import SPLIT_NAMES
from clas_lens.data.tasks.base import Task, check_options, confidence_from_alpha
from clas_lens.data.tasks.selection import apply_split
from clas_lens.errors import DataValidationError
from clas_lens.languages import check_lang_code


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    ``loader(langs, **options) -> Task`` builds it for checked languages and options;
    ``languages(**options)`` lists the languages it has (with those options);
    ``any_language``: other languages are accepted too (cloze: any language CLDR knows);
    ``default_langs()``: the languages used when none are asked for (default: all it has);
    ``missing_hint``: appended to the error for a language it does not have;
    ``own_split``: the loader takes ``split`` / ``split_fractions`` itself (tasks built from
    the corpus's dev and test parts), else :func:`load_task` splits the items it returns;
    ``hub_split``: the task reads a hub split (``hub_split=``), which ``split=`` named before
    item splits existed (a value other than a split name is still read so, with a warning).

    >>> task_spec("cloze").any_language, sorted(task_spec("cloze").options)
    (True, ['calibrate', 'directions', 'kinds', 'length_norm', 'lengths', 'option_prefix', 'separators', 'steps'])
    """

    name: str
    loader: Callable[..., Task]
    options: frozenset[str]
    languages: Callable[..., list[str]]
    any_language: bool = False
    default_langs: Callable[[], list[str]] | None = None
    missing_hint: str = ""
    own_split: bool = False
    hub_split: bool = False


_REGISTRY: dict[str, TaskSpec] = {}


def register_task(
    name: str,
    loader: Callable[..., Task],
    *,
    options: Iterable[str] = (),
    languages: Callable[..., list[str]],
    any_language: bool = False,
    default_langs: Callable[[], list[str]] | None = None,
    missing_hint: str = "",
    own_split: bool = False,
    hub_split: bool = False,
) -> TaskSpec:
    """Register task ``name`` (see :class:`TaskSpec`); a name already registered is refused.

    ``options`` are the task's own options; ``seed``, ``n_boot``, ``confidence``, ``split``
    and ``split_fractions`` are accepted by every task.

    >>> register_task("nli", lambda langs, **o: None, languages=lambda **o: [])
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Task 'nli' is already registered; choose another name.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataValidationError(f"A task name must be a non-empty string, got {name!r}.")
    if name in _REGISTRY:
        raise DataValidationError(f"Task {name!r} is already registered; choose another name.")
    spec = TaskSpec(
        name, loader, frozenset(options), languages, any_language, default_langs, missing_hint, own_split, hub_split
    )
    _REGISTRY[name] = spec
    return spec


def task_names() -> tuple[str, ...]:
    """Names of the registered tasks, in registration order.

    >>> task_names()
    ('nli', 'qa', 'cloze', 'xnli', 'xquad', 'lm', 'completion')
    """
    return tuple(_REGISTRY)


def __getattr__(name: str) -> Any:
    # TASKS is read from the registry on every access, so it lists tasks registered later.
    if name == "TASKS":
        return task_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def task_spec(name: str) -> TaskSpec:
    """The registered :class:`TaskSpec` of ``name``; an unknown name lists the available ones.

    >>> task_spec("qa").options >= {"template", "data_files"}
    True
    """
    if name not in _REGISTRY:
        raise DataValidationError(f"Unknown task {name!r}; available tasks: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def available_languages(name: str, **options: Any) -> list[str]:
    """Languages a task can be built for without extra data.

    nli / qa: languages with an embedded file (or keys of a ``data_files`` mapping); cloze:
    every language of :data:`~clas_lens.languages.LANGUAGES` (any other language CLDR knows
    works too); xnli / xquad: the benchmark's languages.

    >>> "en" in available_languages("nli"), len(available_languages("xnli"))
    (True, 15)
    """
    return task_spec(name).languages(**options)


def load_task(name: str, langs: Sequence[str] | None = None, **options: Any) -> Task:
    """Build task ``name`` for ``langs`` (default: every available language; for cloze the
    embedded corpus's languages).

    Options (all recorded in ``task.config``):

    * all tasks: ``seed=0``, ``n_boot=1000``, ``confidence=0.95`` (bootstrap CIs; ``alpha=``,
      its deprecated complement, still works with a DeprecationWarning); ``split`` (None: all
      items; ``"dev"``, ``"test"`` or a ``(start, stop)`` fraction pair: by a stable hash of
      (task name, item id), see :mod:`clas_lens.data.splits`) and ``split_fractions``
      (default dev 0.3 / test 0.7; lm and completion: the corpus's stats 0.4 / dev 0.2 /
      test 0.4, never "stats"). Every item carries its split (``item.split``).
    * choice tasks (nli, xnli, cloze, completion): ``length_norm`` ("none", "tokens",
      "chars": divide an option's summed log-prob by its token or character count) and
      ``calibrate=False`` (subtract each option's score after the content-free prompt, the
      template filled with "N/A"). The defaults keep the plain summed log-probability.
    * nli / xnli: ``template`` (str, or {lang: str} with ``{premise}`` and ``{hypothesis}``;
      default :data:`~clas_lens.data.tasks.nli.NLI_TEMPLATES`), ``label_words`` ((entailment,
      neutral, contradiction) or {lang: ...}; default
      :data:`~clas_lens.data.tasks.nli.NLI_LABEL_WORDS`), ``option_prefix`` (default " ", ""
      for zh / ja / th).
    * qa / xquad: ``template`` (``{context}``, ``{question}``; default
      :data:`~clas_lens.data.tasks.qa.QA_TEMPLATES`), ``max_new_tokens=16``, ``stop="\\n"``.
    * nli / qa / xnli / xquad: ``data_files`` -- local files in the task's schema:
      {lang: path}, a pattern with ``{lang}``, or a path for a single language.
    * xnli: ``hub_split="test"``, ``dataset="facebook/xnli"``; xquad:
      ``hub_split="validation"``, ``dataset="google/xquad"`` (``split="train"`` or
      ``"validation"``, the old spelling, still selects the hub split with a
      DeprecationWarning).
    * lm, completion: ``corpus="default"`` (a name or path for :func:`~clas_lens.data.corpus.load_corpus`).
    * cloze: ``kinds=("weekday", "month")``, ``directions``, ``steps``, ``lengths`` (the sequence patterns), ``separators`` ({lang: sep}; default CLDR's list
      separator), ``option_prefix`` (default: the separator's trailing whitespace, so " " after
      ", " and nothing after "、").

    >>> t = load_task("nli", langs=["en"])
    >>> t.items("en")[0].options
    [' true', ' inconclusive', ' false']
    """
    spec = task_spec(name)
    check_options(name, options, spec.options)
    if "alpha" in options:
        options["confidence"] = confidence_from_alpha(
            options.pop("alpha"), options.get("confidence"), where="load_task", stacklevel=3
        )
    split = options.pop("split", None)
    fractions = options.pop("split_fractions", None)
    if spec.hub_split and isinstance(split, str) and split not in SPLIT_NAMES and split not in (fractions or {}):
        warnings.warn(
            f"load_task({name!r}, split={split!r}): split= now selects items (dev / test); the hub "
            f"split is hub_split={split!r}.",
            DeprecationWarning,
            stacklevel=2,
        )
        options["hub_split"], split = split, None
    if spec.own_split:
        options.update(split=split, split_fractions=fractions)
    available = spec.languages(**options)
    if langs is None:
        langs = spec.default_langs() if spec.default_langs is not None else available
    else:
        langs = [langs] if isinstance(langs, str) else list(langs)
        for lang in langs:
            check_lang_code(lang)
        missing = [lang for lang in langs if lang not in available and not spec.any_language]
        if missing:
            raise DataValidationError(
                f"Task {name!r} has no language(s) {', '.join(map(repr, missing))}; available: "
                f"{', '.join(available) if available else '(none)'}.{spec.missing_hint}"
            )
    if not langs:
        raise DataValidationError(f"Task {name!r}: no languages to load.")
    task = spec.loader(list(langs), **options)
    return task if spec.own_split else apply_split(task, split, fractions)
