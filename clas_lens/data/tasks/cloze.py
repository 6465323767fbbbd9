"""The ``cloze`` task: continue a sequence of weekday or month names, built from CLDR (``babel``).

Each item shows three consecutive names joined by the language's list separator (CLDR's
"standard" list pattern) and asks for the fourth; the options are all 7 weekday (12 month)
names, scored by log-probability (mode ``choice``: metrics ``margin``, ``gold_logprob``,
``accuracy``); the content-free prompt shows "N/A" three times. Any language CLDR
knows works; by default the task covers the embedded corpus's languages.

>>> it = load_cloze(["en"], kinds="weekday").items("en")[0]
>>> it.prompt, it.options[it.answer]
('Monday, Tuesday, Wednesday,', ' Thursday')
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from babel import Locale, UnknownLocaleError

from clas_lens.data.loaders import embedded_languages
from clas_lens.data.tasks.base import CONTENT_FREE, MODE_METRICS, Task, TaskItem, make_task
from clas_lens.data.tasks.options import CHOICE_OPTIONS
from clas_lens.data.tasks.registry import register_task
from clas_lens.errors import DataValidationError
from clas_lens.languages import LANGUAGES

#: List separators where CLDR's "standard" list pattern is a conjunction (Arabic "و").
CLOZE_SEPARATORS: dict[str, str] = {"ar": "، "}
CLOZE_KINDS: tuple[str, ...] = ("weekday", "month")
#: Options of the cloze task.
CLOZE_OPTIONS: frozenset[str] = frozenset({"kinds", "separators", "option_prefix"}) | CHOICE_OPTIONS


def cloze_separator(lang: str, separators: Mapping[str, str] | None = None) -> str:
    """The language's list separator: CLDR's "standard" list pattern, unless that is a
    conjunction (then :data:`CLOZE_SEPARATORS` or ", ").

    >>> cloze_separator("en"), cloze_separator("zh"), cloze_separator("ar")
    (', ', '、', '، ')
    """
    if separators and lang in separators:
        return separators[lang]
    if lang in CLOZE_SEPARATORS:
        return CLOZE_SEPARATORS[lang]
    try:
        pattern = Locale.parse(lang).list_patterns["standard"]["middle"]
    except Exception:
        return ", "
    sep = pattern.replace("{0}", "").replace("{1}", "")
    if not sep or any(ch.isalpha() for ch in sep):
        return ", "
    return sep


def cloze_names(lang: str, kind: str) -> list[str]:
    """CLDR stand-alone wide weekday names (Monday first) or month names (January first).

    >>> cloze_names("de", "weekday")[:2], cloze_names("el", "month")[0]
    (['Montag', 'Dienstag'], 'Ιανουάριος')
    """
    try:
        loc = Locale.parse(lang)
    except (UnknownLocaleError, ValueError) as e:
        raise DataValidationError(f"CLDR (babel) has no locale {lang!r} for the cloze task: {e}.") from None
    if kind == "weekday":
        names = loc.days["stand-alone"]["wide"]
        return [names[i] for i in range(7)]
    if kind == "month":
        names = loc.months["stand-alone"]["wide"]
        return [names[i] for i in range(1, 13)]
    raise DataValidationError(f"Unknown cloze kind {kind!r}; choose from {list(CLOZE_KINDS)}.")


def cloze_items(lang: str, kinds: Sequence[str], separators: Any = None, option_prefix: Any = None) -> list[TaskItem]:
    """The cloze items of ``lang``: for every name of each kind, that name and the next two
    shown, the one after them the answer. ``separators``: one separator or ``{lang: sep}``;
    ``option_prefix`` (or ``{lang: prefix}``): default the separator's trailing whitespace.

    >>> [it.prompt for it in cloze_items("zh", ["weekday"])][:1]
    ['星期一、星期二、星期三、']
    """
    sep = cloze_separator(lang, separators if isinstance(separators, Mapping) else None)
    if isinstance(separators, str):
        sep = separators
    body = sep.rstrip()
    trailing = sep[len(body) :]
    if isinstance(option_prefix, Mapping):
        option_prefix = option_prefix.get(lang)
    prefix = trailing if option_prefix is None else str(option_prefix)
    items = []
    content_free = sep.join([CONTENT_FREE] * 3) + body
    for kind in kinds:
        names = cloze_names(lang, kind)
        n = len(names)
        if len(set(names)) != n:
            raise DataValidationError(f"CLDR {kind} names for {lang!r} are not distinct: {names}.")
        options = [prefix + name for name in names]
        for i in range(n):
            shown = [names[(i + j) % n] for j in range(3)]
            prompt = sep.join(shown) + body  # ends with the separator minus its trailing space
            items.append(TaskItem(f"{kind}-{i + 1:02d}", lang, prompt, options, (i + 3) % n, None, content_free=content_free))
    return items


def load_cloze(langs: Sequence[str], **options: Any) -> Task:
    """The ``cloze`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    >>> len(load_cloze(["de"], kinds="month").items("de"))
    12
    """
    kinds = options.get("kinds", CLOZE_KINDS)
    if isinstance(kinds, str):
        kinds = (kinds,)
    for kind in kinds:
        if kind not in CLOZE_KINDS:
            raise DataValidationError(f"Unknown cloze kind {kind!r}; choose from {list(CLOZE_KINDS)}.")
    item_map = {
        lang: cloze_items(lang, kinds, options.get("separators"), options.get("option_prefix")) for lang in langs
    }
    config = {"kinds": list(kinds), "separators": options.get("separators"), "option_prefix": options.get("option_prefix")}
    return make_task("cloze", "choice", list(MODE_METRICS["choice"]), item_map, config, options)


register_task(
    "cloze",
    load_cloze,
    options=CLOZE_OPTIONS,
    languages=lambda **options: list(LANGUAGES),
    any_language=True,
    default_langs=lambda: embedded_languages("corpus"),
)
