"""The task registry: task names, the options and languages each accepts, and :func:`load_task`.

Each task module registers itself with :func:`register_task` (the built-in ones, in order:
nli, qa, cloze, xnli, xquad); :func:`load_task` looks the name up, checks options and
languages the same way for every task, and calls the task's loader. :data:`TASKS` is read from
the registry, so a task registered by a user is listed too.

>>> task_names()[:3]
('nli', 'qa', 'cloze')
>>> load_task("cloze", langs=["en"], kinds="weekday").items("en")[0].prompt
'Monday, Tuesday, Wednesday,'
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

from clas_lens.data.tasks.base import Task, check_options, confidence_from_alpha
from clas_lens.errors import DataValidationError
from clas_lens.languages import check_lang_code


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    ``loader(langs, **options) -> Task`` builds it for checked languages and options;
    ``languages(**options)`` lists the languages it has (with those options);
    ``any_language``: other languages are accepted too (cloze: any language CLDR knows);
    ``default_langs()``: the languages used when none are asked for (default: all it has);
    ``missing_hint``: appended to the error for a language it does not have.

    >>> task_spec("cloze").any_language, sorted(task_spec("cloze").options)
    (True, ['kinds', 'option_prefix', 'separators'])
    """

    name: str
    loader: Callable[..., Task]
    options: frozenset[str]
    languages: Callable[..., list[str]]
    any_language: bool = False
    default_langs: Callable[[], list[str]] | None = None
    missing_hint: str = ""


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
) -> TaskSpec:
    """Register task ``name`` (see :class:`TaskSpec`); a name already registered is refused.

    ``options`` are the task's own options; ``seed``, ``n_boot`` and ``confidence`` are
    accepted by every task.

    >>> register_task("nli", lambda langs, **o: None, languages=lambda **o: [])
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Task 'nli' is already registered; choose another name.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataValidationError(f"A task name must be a non-empty string, got {name!r}.")
    if name in _REGISTRY:
        raise DataValidationError(f"Task {name!r} is already registered; choose another name.")
    spec = TaskSpec(name, loader, frozenset(options), languages, any_language, default_langs, missing_hint)
    _REGISTRY[name] = spec
    return spec


def task_names() -> tuple[str, ...]:
    """Names of the registered tasks, in registration order.

    >>> task_names()
    ('nli', 'qa', 'cloze', 'xnli', 'xquad')
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
      its deprecated complement, still works with a DeprecationWarning).
    * nli / xnli: ``template`` (str, or {lang: str} with ``{premise}`` and ``{hypothesis}``;
      default :data:`~clas_lens.data.tasks.nli.NLI_TEMPLATES`), ``label_words`` ((entailment,
      neutral, contradiction) or {lang: ...}; default
      :data:`~clas_lens.data.tasks.nli.NLI_LABEL_WORDS`), ``option_prefix`` (default " ", ""
      for zh / ja / th).
    * qa / xquad: ``template`` (``{context}``, ``{question}``; default
      :data:`~clas_lens.data.tasks.qa.QA_TEMPLATES`), ``max_new_tokens=16``, ``stop="\\n"``.
    * nli / qa / xnli / xquad: ``data_files`` -- local files in the task's schema:
      {lang: path}, a pattern with ``{lang}``, or a path for a single language.
    * xnli: ``split="test"``, ``dataset="facebook/xnli"``; xquad: ``split="validation"``,
      ``dataset="google/xquad"``.
    * cloze: ``kinds=("weekday", "month")``, ``separators`` ({lang: sep}; default CLDR's list
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
    return spec.loader(list(langs), **options)
