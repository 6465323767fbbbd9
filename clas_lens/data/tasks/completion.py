"""The ``completion`` task: choose a held-out corpus sentence's final word among four.

Built from the parallel corpus's ``dev`` and ``test`` splits (never ``stats``; see
:mod:`~clas_lens.data.tasks.heldout`), one item per (sentence, language):

* the sentence's end punctuation (Unicode punctuation, e.g. ``.``, ``?``, ``。``, ``।``) is
  dropped; the final word -- the last whitespace-separated word, or for languages written
  without spaces (zh, ja, th) the final 2 characters (a character with its combining marks
  and, in Thai, its dependent vowels, leading ones included) -- is removed; the rest is the ``prompt`` (it never ends with whitespace);
* the options are that word and ``n_distractors=3`` final words of other held-out sentences of
  the same language (distinct, case-insensitively, from it and from each other), each after the
  option prefix (a space; none for zh / ja / th), in a seeded order (``distractor_seed=0``,
  and the item's id and language: the same item always gets the same options);
* the verified key is the removed word (``answer`` indexes it). A sentence whose final word
  holds punctuation at its edges, or whose prompt would end with whitespace, is skipped.

Mode ``choice`` (metrics ``margin``, ``gold_logprob``, ``accuracy``); content-free prompt
"N/A". With the 600-sentence corpus the dev and test splits give more than 300 items per
language (the 19 CLDR cloze items are too few to detect gains of a few points).

>>> task = load_completion(["en"], split="dev")
>>> item = task.items("en")[0]
>>> len(item.options), item.split, item.prompt[-1] != " "
(4, 'dev', True)
"""
from __future__ import annotations

import dataclasses
import random
import unicodedata
from typing import Any, Sequence

from clas_lens.data.splits import CORPUS_FRACTIONS, check_fractions
from clas_lens.data.tasks.base import CONTENT_FREE, MODE_METRICS, Task, TaskItem, make_task, option_prefix
from clas_lens.data.tasks.heldout import corpus_languages, heldout_ids, task_corpus
from clas_lens.data.tasks.options import CHOICE_OPTIONS
from clas_lens.data.tasks.registry import register_task
from clas_lens.data.tasks.selection import record_split
from clas_lens.errors import DataValidationError
from clas_lens.languages import NO_SPACE_LANGS

#: Options of the completion task.
COMPLETION_OPTIONS: frozenset[str] = frozenset({"corpus", "distractor_seed", "n_distractors"}) | CHOICE_OPTIONS
#: Characters removed from the end of a no-space language's sentence.
NO_SPACE_WORD_CHARS = 2


#: Thai vowels and signs written after (or above / below) their consonant, and before it.
_THAI_FOLLOWING = frozenset(chr(c) for c in [*range(0x0E30, 0x0E3B), 0x0E45, *range(0x0E47, 0x0E4F)])
_THAI_LEADING = frozenset(chr(c) for c in range(0x0E40, 0x0E45))


def _punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _attached(ch: str) -> bool:
    """A character that belongs to the one before it (combining marks, Thai dependent vowels)."""
    return unicodedata.category(ch).startswith("M") or ch in _THAI_FOLLOWING


def split_final_word(text: str, lang: str) -> tuple[str, str] | None:
    """``(prompt, final word)`` of a sentence, or None when it cannot be split cleanly.

    >>> split_final_word("The bus leaves at seven o'clock.", "en")
    ('The bus leaves at seven', "o'clock")
    >>> split_final_word("去市场的公交车每天早上七点发车。", "zh")
    ('去市场的公交车每天早上七点', '发车')
    >>> split_final_word("รถออกทุกเช้าเวลาเจ็ดโมง", "th")
    ('รถออกทุกเช้าเวลาเจ็ด', 'โมง')
    """
    body = text.strip()
    while body and (_punct(body[-1]) or body[-1].isspace()):
        body = body[:-1]
    if lang in NO_SPACE_LANGS:
        end, bases = len(body), 0
        while end > 0 and bases < NO_SPACE_WORD_CHARS:
            end -= 1
            if not _attached(body[end]):
                bases += 1
        while end > 0 and body[end - 1] in _THAI_LEADING:  # a leading vowel goes with its consonant
            end -= 1
        prompt, word = body[:end], body[end:]
    else:
        parts = body.rsplit(None, 1)
        if len(parts) != 2:
            return None
        prompt, word = parts
    if (
        not prompt.strip()
        or prompt != prompt.rstrip()
        or not word
        or any(ch.isspace() for ch in word)
        or _punct(word[0])
        or _punct(word[-1])
    ):
        return None
    return prompt, word


def completion_items(
    lang: str, sentences: Sequence[tuple[str, str, str]], *, seed: int = 0, n_distractors: int = 3
) -> list[TaskItem]:
    """Items from ``[(id, split label, text)]`` of one language (the distractor pool is every
    final word among ``sentences``).

    >>> rows = [("a", "dev", "I like green apples."), ("b", "dev", "We walked home."),
    ...         ("c", "test", "She reads books."), ("d", "test", "They sing songs.")]
    >>> it = completion_items("en", rows)[0]
    >>> it.prompt, it.options[it.answer], sorted(it.options)
    ('I like green', ' apples', [' apples', ' books', ' home', ' songs'])
    """
    parsed = [(i, label, split_final_word(text, lang)) for i, label, text in sentences]
    pool: dict[str, str] = {}
    for _, _, pw in parsed:
        if pw is not None:
            pool.setdefault(pw[1].casefold(), pw[1])
    words = [pool[k] for k in sorted(pool)]
    prefix = option_prefix(None, lang)
    items: list[TaskItem] = []
    for i, label, pw in parsed:
        if pw is None:
            continue
        prompt, word = pw
        others = [w for w in words if w.casefold() != word.casefold()]
        if len(others) < n_distractors:
            raise DataValidationError(
                f"completion ({lang}): {len(others)} distinct other final words, fewer than n_distractors={n_distractors}."
            )
        rng = random.Random(f"{seed}|{lang}|{i}")
        options = rng.sample(others, n_distractors)
        answer = rng.randrange(n_distractors + 1)
        options.insert(answer, word)
        items.append(
            TaskItem(i, lang, prompt, [prefix + w for w in options], answer, None, split=label, content_free=CONTENT_FREE)
        )
    return items


def load_completion(langs: Sequence[str], **options: Any) -> Task:
    """The ``completion`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    ``corpus="default"``, ``split`` (None: dev and test; ``"dev"``, ``"test"`` or a pair
    outside the stats range), ``split_fractions`` (the corpus's), ``distractor_seed=0``,
    ``n_distractors=3``, ``length_norm``, ``calibrate``. An item's options do not depend on
    ``split`` (the distractor pool is the whole held-out part).

    >>> a = load_completion(["de"]).items("de")
    >>> b = {it.id: it for it in load_completion(["de"], split="test").items("de")}
    >>> all(it.options == b[it.id].options for it in a if it.id in b)
    True
    """
    corpus = task_corpus(options.get("corpus", "default"), langs)
    fractions = check_fractions(options.get("split_fractions"), CORPUS_FRACTIONS)
    pool_ids = heldout_ids(corpus, None, fractions)
    keep = {i: label for i, label in heldout_ids(corpus, options.get("split"), fractions)}
    seed, n_distractors = int(options.get("distractor_seed", 0)), int(options.get("n_distractors", 3))
    if n_distractors < 1:
        raise DataValidationError(f"n_distractors must be >= 1, got {n_distractors}.")
    item_map = {}
    for lang in langs:
        rows = [(i, label, corpus.text(i, lang)) for i, label in pool_ids]
        items = completion_items(lang, rows, seed=seed, n_distractors=n_distractors)
        item_map[lang] = [dataclasses.replace(it, split=keep[it.id]) for it in items if it.id in keep]
    config: dict[str, Any] = {
        "corpus": corpus.name, "corpus_hash": corpus.hash(), "distractor_seed": seed, "n_distractors": n_distractors,
    }
    record_split(config, corpus.name or "corpus", options.get("split"), fractions)
    return make_task("completion", "choice", list(MODE_METRICS["choice"]), item_map, config, options)


register_task(
    "completion",
    load_completion,
    options=COMPLETION_OPTIONS,
    languages=lambda **options: corpus_languages(options.get("corpus", "default")),
    own_split=True,
)
