"""Language identification with CLD2 (``pycld2``): offline, instant, ~80 languages.

Used to check that corpus and task files are in the language they claim
(:func:`check_corpus_languages`) and to measure the *language fidelity* of generated text
(:func:`language_fidelity`: the share of outputs detected as the expected language).

CLD2 codes are mapped to ISO 639-1 (``iw`` -> ``he``, ``zh-Hant`` -> ``zh``, ``jw`` -> ``jv``
...). Text CLD2 cannot identify gets the code ``"und"`` (undetermined) and confidence 0.

Confidence is CLD2's share (0-1) of the text's bytes in the top language, halved when CLD2
itself flags the result as unreliable (typical for a few words).

>>> detect_language("Der Hund schläft den ganzen Nachmittag im Garten hinter dem Haus.")[0]
'de'
>>> detect_language("")
('und', 0.0)
"""
from __future__ import annotations

import unicodedata
import warnings
from typing import Any, Iterable, Mapping, Sequence

#: CLD2 code -> ISO 639-1 where they differ.
CLD2_TO_ISO: dict[str, str] = {
    "zh-Hant": "zh",
    "zh": "zh",
    "iw": "he",
    "jw": "jv",
    "in": "id",
    "ji": "yi",
    "mo": "ro",
    "sh": "sr",
    "nb": "no",
    "nn": "no",
    "tl": "tl",
    "un": "und",
    "xxx": "und",
}

#: Languages CLD2 cannot tell apart reliably; a text detected as one of its group is not
#: flagged when the expected language is another of the group.
_CONFUSABLE: tuple[frozenset[str], ...] = (
    frozenset({"id", "ms"}),
    frozenset({"hr", "bs", "sr"}),
    frozenset({"no", "da"}),
)


class LanguageIDWarning(UserWarning):
    """Some texts look like another language than the one they are filed under."""


def _clean(text: str) -> str:
    # CLD2 rejects some control characters and lone surrogates ("invalid UTF-8").
    text = text.encode("utf-8", "ignore").decode("utf-8", "ignore")
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")


def to_iso(code: str) -> str:
    """Map a CLD2 language code to ISO 639-1 (unknown stays as is).

    >>> to_iso("iw"), to_iso("zh-Hant"), to_iso("de")
    ('he', 'zh', 'de')
    """
    return CLD2_TO_ISO.get(code, code.split("-")[0])


def detect(text: str) -> tuple[str, float, bool]:
    """``(iso_code, share, reliable)`` of the top language CLD2 finds in ``text``.

    >>> detect("Habari ya asubuhi, rafiki yangu. Leo tunakwenda sokoni kununua matunda.")[0]
    'sw'
    """
    import pycld2

    cleaned = _clean(text or "")
    if not cleaned.strip():
        return ("und", 0.0, False)
    try:
        reliable, _, details = pycld2.detect(cleaned)
    except pycld2.error:  # pragma: no cover - _clean removes the usual causes
        return ("und", 0.0, False)
    name, code, percent, _score = details[0]
    iso = to_iso(code)
    if iso == "und":
        return ("und", 0.0, False)
    return (iso, percent / 100.0, bool(reliable))


def detect_language(text: str) -> tuple[str, float]:
    """Detected ISO 639-1 language of ``text`` and a confidence in [0, 1].

    >>> detect_language("Мы пошли на рынок, чтобы купить свежие овощи и фрукты.")[0]
    'ru'
    >>> detect_language("สวัสดีครับ วันนี้อากาศดีมาก เราจะไปเที่ยวทะเลกัน")[0]
    'th'
    """
    code, share, reliable = detect(text)
    return (code, share if reliable else share / 2)


def same_language(detected: str, expected: str) -> bool:
    """True when ``detected`` is ``expected`` or CLD2 cannot tell the two apart.

    >>> same_language("ms", "id"), same_language("de", "en")
    (True, False)
    """
    if detected == expected:
        return True
    return any(detected in g and expected in g for g in _CONFUSABLE)


def language_fidelity(texts: Sequence[str], expected_lang: str) -> float:
    """Fraction of ``texts`` detected as ``expected_lang`` (NaN for no texts).

    Empty or unidentifiable texts count as *not* in the expected language, so a model that
    outputs nothing gets fidelity 0. Very short outputs (a name, a number) are often
    unidentifiable: read fidelity on generations of a sentence or more.

    >>> language_fidelity(["Das ist ein schöner Tag im Park.", "This is a nice day in the park."], "de")
    0.5
    """
    texts = list(texts)
    if not texts:
        return float("nan")
    hits = sum(1 for t in texts if same_language(detect(t)[0], expected_lang))
    return hits / len(texts)


def flag_language_mismatches(
    texts: Mapping[str, str] | Iterable[tuple[str, str]],
    expected_lang: str,
    *,
    min_share: float = 0.7,
) -> list[tuple[str, str, float]]:
    """Items whose text is *clearly* another language: ``[(id, detected, share), ...]``.

    "Clearly" means CLD2 is reliable, the top language differs from ``expected_lang`` (and is
    not confusable with it) and covers at least ``min_share`` of the text. Undetermined and
    short texts are never flagged.

    >>> flags = flag_language_mismatches({"a": "Der Hund schläft den ganzen Tag im Garten hinter dem Haus.",
    ...                            "b": "The dog sleeps all day in the garden behind the house."}, "de")
    >>> [(i, code) for i, code, share in flags]
    [('b', 'en')]
    """
    pairs = texts.items() if isinstance(texts, Mapping) else texts
    out = []
    for item_id, text in pairs:
        code, share, reliable = detect(text)
        if code == "und" or not reliable or share < min_share:
            continue
        if not same_language(code, expected_lang):
            out.append((item_id, code, share))
    return out


def check_corpus_languages(
    corpus: Any,
    *,
    min_share: float = 0.7,
    warn: bool = True,
) -> dict[str, list[tuple[str, str, float]]]:
    """Language-ID check of a corpus: ``{lang: [(id, detected, share), ...]}`` flagged items.

    ``corpus`` is a :class:`~clas_lens.data.corpus.ParallelCorpus` (anything with ``.langs``,
    ``.ids`` and ``.texts(lang)``) or a mapping ``{lang: {id: text}}``. With ``warn=True`` a
    :class:`LanguageIDWarning` names the offending ids per language.

    >>> check_corpus_languages({"en": {"s1": "The bus to the market leaves every morning at seven."}})
    {}
    """
    if isinstance(corpus, Mapping):
        by_lang = {lang: dict(items) for lang, items in corpus.items()}
    else:
        by_lang = {lang: dict(zip(corpus.ids, corpus.texts(lang))) for lang in corpus.langs}
    flagged: dict[str, list[tuple[str, str, float]]] = {}
    for lang, items in by_lang.items():
        hits = flag_language_mismatches(items, lang, min_share=min_share)
        if hits:
            flagged[lang] = hits
    if warn and flagged:
        parts = []
        for lang, hits in flagged.items():
            shown = ", ".join(f"{i} (looks like {c!r})" for i, c, _ in hits[:10])
            more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
            parts.append(f"{lang!r}: {shown}{more}")
        warnings.warn(
            "Language-ID check (pycld2): some texts look like another language than the one "
            "they are filed under -- " + "; ".join(parts) + ". Check those items' translations.",
            LanguageIDWarning,
            stacklevel=2,
        )
    return flagged
