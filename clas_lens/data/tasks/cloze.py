"""The ``cloze`` task: continue a sequence of weekday or month names, built from CLDR (``babel``).

Each item shows 2-4 names of a cyclic sequence joined by the language's list separator (CLDR's
"standard" list pattern) and asks for the next one; the options are all 7 weekday (12 month)
names, scored by log-probability (mode ``choice``: metrics ``margin``, ``gold_logprob``,
``accuracy``); the content-free prompt shows "N/A" as often as the item shows names. Sequences
run forward or backward in steps of 1, 2 or 3 ("Monday, Wednesday, Friday," -> "Sunday"), so
every language has 7 x 18 + 12 x 18 = 342 items whose key is computed, not written. The 19 items
with three consecutive names forward (ids ``weekday-01`` .. ``month-12``) come first and keep the
ids of earlier releases; ``steps=1, lengths=3, directions="forward"`` gives only them. Any
language CLDR knows works; by default the task covers the embedded corpus's languages.

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
#: Sequence directions, steps and shown lengths of the cloze items (the defaults: all of them).
CLOZE_DIRECTIONS: tuple[str, ...] = ("forward", "backward")
CLOZE_STEPS: tuple[int, ...] = (1, 2, 3)
CLOZE_LENGTHS: tuple[int, ...] = (2, 3, 4)
#: Options of the cloze task.
CLOZE_OPTIONS: frozenset[str] = (
    frozenset({"kinds", "separators", "option_prefix", "directions", "steps", "lengths"}) | CHOICE_OPTIONS
)


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


def cloze_patterns(directions: Any = CLOZE_DIRECTIONS, steps: Any = CLOZE_STEPS, lengths: Any = CLOZE_LENGTHS) -> list[tuple[str, int, int]]:
    """The (direction, step, length) patterns of the cloze items, checked; the earlier releases'
    pattern (forward, 1, 3) first when it is included.

    >>> cloze_patterns()[:3], len(cloze_patterns())
    ([('forward', 1, 3), ('forward', 1, 2), ('forward', 1, 4)], 18)
    >>> cloze_patterns("backward", 2, [2, 3])
    [('backward', 2, 2), ('backward', 2, 3)]
    """
    directions = (directions,) if isinstance(directions, str) else tuple(directions)
    steps = (steps,) if isinstance(steps, int) else tuple(steps)
    lengths = (lengths,) if isinstance(lengths, int) else tuple(lengths)
    for d in directions:
        if d not in CLOZE_DIRECTIONS:
            raise DataValidationError(f"Unknown cloze direction {d!r}; choose from {list(CLOZE_DIRECTIONS)}.")
    for name, values, allowed in (("step", steps, CLOZE_STEPS), ("length", lengths, CLOZE_LENGTHS)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise DataValidationError(f"cloze {name}s must be some of {list(allowed)}; got {list(values)}.")
    patterns = [(d, s, n) for d in directions for s in steps for n in lengths]
    return sorted(patterns, key=lambda p: p != ("forward", 1, 3))


def cloze_item_id(kind: str, index: int, pattern: tuple[str, int, int]) -> str:
    """The id of the cloze item of ``kind`` starting at name ``index`` (0-based) with ``pattern``:
    ``weekday-01`` for three consecutive names forward (the earlier releases' ids), otherwise
    ``<kind>-<f|b><step>x<length>-<start>``.

    >>> cloze_item_id("weekday", 0, ("forward", 1, 3)), cloze_item_id("month", 11, ("backward", 2, 4))
    ('weekday-01', 'month-b2x4-12')
    """
    direction, step, length = pattern
    if pattern == ("forward", 1, 3):
        return f"{kind}-{index + 1:02d}"
    return f"{kind}-{direction[0]}{step}x{length}-{index + 1:02d}"


def cloze_items(
    lang: str,
    kinds: Sequence[str],
    separators: Any = None,
    option_prefix: Any = None,
    patterns: Sequence[tuple[str, int, int]] | None = None,
) -> list[TaskItem]:
    """The cloze items of ``lang``: for every start name of each kind and every pattern
    (:func:`cloze_patterns`), the shown names and, as the answer, the name that continues them.
    ``separators``: one separator or ``{lang: sep}``; ``option_prefix`` (or ``{lang: prefix}``):
    default the separator's trailing whitespace. Items of the first pattern come first.

    >>> [it.prompt for it in cloze_items("zh", ["weekday"])][:1]
    ['星期一、星期二、星期三、']
    >>> it = cloze_items("en", ["weekday"], patterns=[("backward", 2, 3)])[0]
    >>> it.id, it.prompt, it.options[it.answer]
    ('weekday-b2x3-01', 'Monday, Saturday, Thursday,', ' Tuesday')
    """
    sep = cloze_separator(lang, separators if isinstance(separators, Mapping) else None)
    if isinstance(separators, str):
        sep = separators
    body = sep.rstrip()
    trailing = sep[len(body) :]
    if isinstance(option_prefix, Mapping):
        option_prefix = option_prefix.get(lang)
    prefix = trailing if option_prefix is None else str(option_prefix)
    names_of = {}
    for kind in kinds:
        names = cloze_names(lang, kind)
        if len(set(names)) != len(names):
            raise DataValidationError(f"CLDR {kind} names for {lang!r} are not distinct: {names}.")
        names_of[kind] = names
    items = []
    for pattern in patterns or cloze_patterns():
        direction, step, length = pattern
        signed = step if direction == "forward" else -step
        content_free = sep.join([CONTENT_FREE] * length) + body
        for kind in kinds:
            names = names_of[kind]
            n = len(names)
            options = [prefix + name for name in names]
            for i in range(n):
                shown = [names[(i + j * signed) % n] for j in range(length)]
                prompt = sep.join(shown) + body  # ends with the separator minus its trailing space
                answer = (i + length * signed) % n
                items.append(TaskItem(cloze_item_id(kind, i, pattern), lang, prompt, options, answer, None,
                                      content_free=content_free))
    return items


def load_cloze(langs: Sequence[str], **options: Any) -> Task:
    """The ``cloze`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    >>> len(load_cloze(["de"]).items("de")), len(load_cloze(["de"], kinds="month", steps=1, lengths=3, directions="forward").items("de"))
    (342, 12)
    """
    kinds = options.get("kinds", CLOZE_KINDS)
    if isinstance(kinds, str):
        kinds = (kinds,)
    for kind in kinds:
        if kind not in CLOZE_KINDS:
            raise DataValidationError(f"Unknown cloze kind {kind!r}; choose from {list(CLOZE_KINDS)}.")
    patterns = cloze_patterns(
        options.get("directions", CLOZE_DIRECTIONS), options.get("steps", CLOZE_STEPS), options.get("lengths", CLOZE_LENGTHS)
    )
    item_map = {
        lang: cloze_items(lang, kinds, options.get("separators"), options.get("option_prefix"), patterns) for lang in langs
    }
    config = {
        "kinds": list(kinds),
        "separators": options.get("separators"),
        "option_prefix": options.get("option_prefix"),
        "patterns": [list(p) for p in patterns],
    }
    return make_task("cloze", "choice", list(MODE_METRICS["choice"]), item_map, config, options)


register_task(
    "cloze",
    load_cloze,
    options=CLOZE_OPTIONS,
    languages=lambda **options: list(LANGUAGES),
    any_language=True,
    default_langs=lambda: embedded_languages("corpus"),
)
