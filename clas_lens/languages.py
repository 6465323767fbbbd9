"""Languages clas_lens knows, and their properties: one definition each.

ISO 639-1 codes are the project's language keys everywhere. A code outside :data:`LANGUAGES`
is accepted wherever CLDR (``babel``) knows it, so a user's own corpus or task can use any
language.

>>> flores_code("sw"), "zh" in NO_SPACE_LANGS, EMBEDDED_LANGS[:3]
('swh_Latn', True, ('en', 'de', 'es'))
"""
from __future__ import annotations

from typing import Any, Iterable

from clas_lens.errors import DataValidationError

#: ISO 639-1 -> FLORES-200 code, for the languages clas_lens knows by name. The first 12 are
#: the embedded corpus's languages.
LANGUAGES: dict[str, str] = {
    "en": "eng_Latn",
    "de": "deu_Latn",
    "es": "spa_Latn",
    "el": "ell_Grek",
    "ru": "rus_Cyrl",
    "tr": "tur_Latn",
    "ar": "arb_Arab",
    "vi": "vie_Latn",
    "th": "tha_Thai",
    "zh": "zho_Hans",
    "hi": "hin_Deva",
    "sw": "swh_Latn",
    "fr": "fra_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "id": "ind_Latn",
    "bn": "ben_Beng",
    "ur": "urd_Arab",
    "fa": "pes_Arab",
    "he": "heb_Hebr",
    "uk": "ukr_Cyrl",
    "bg": "bul_Cyrl",
    "ro": "ron_Latn",
    "cs": "ces_Latn",
    "sv": "swe_Latn",
    "fi": "fin_Latn",
    "hu": "hun_Latn",
    "da": "dan_Latn",
    "ca": "cat_Latn",
    "ta": "tam_Taml",
    "te": "tel_Telu",
    "mr": "mar_Deva",
    "ms": "zsm_Latn",
}
#: The embedded corpus's languages, in display order.
CORE_LANGS: tuple[str, ...] = ("en", "de", "es", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw")



def flores_code(lang: str) -> str:
    """FLORES-200 code of an ISO 639-1 language code.

    >>> flores_code("zh"), flores_code("sw")
    ('zho_Hans', 'swh_Latn')
    """
    if lang not in LANGUAGES:
        raise DataValidationError(
            f"No FLORES-200 code known for language {lang!r}. Known: {', '.join(LANGUAGES)}."
        )
    return LANGUAGES[lang]


def check_lang_code(lang: Any) -> str:
    """Return ``lang`` if it is a known ISO 639-1 code, else raise listing the known codes.

    Codes of :data:`LANGUAGES` are known, and so is any two- or three-letter code that CLDR
    (``babel``) knows as a language.

    >>> check_lang_code("de")
    'de'
    """
    if isinstance(lang, str) and lang in LANGUAGES:
        return lang
    if isinstance(lang, str) and lang.isascii() and lang.isalpha() and lang.islower() and 2 <= len(lang) <= 3:
        from babel import Locale

        try:
            Locale.parse(lang)
            return lang
        except Exception:
            pass
    raise DataValidationError(
        f"Unknown language code {lang!r}: use ISO 639-1 codes such as {', '.join(LANGUAGES)} "
        "(or another code CLDR knows)."
    )


def canonical_order(langs: Iterable[str]) -> list[str]:
    order = {lang: i for i, lang in enumerate(LANGUAGES)}
    return sorted(langs, key=lambda lang: (order.get(lang, len(order)), lang))


#: The embedded corpus's and tasks' languages, in display order (alias of :data:`CORE_LANGS`).
EMBEDDED_LANGS: tuple[str, ...] = CORE_LANGS
#: Languages written without spaces between words: options are joined without a space, and the
#: SQuAD metric compares characters instead of words.
NO_SPACE_LANGS: frozenset[str] = frozenset({"zh", "ja", "th"})
#: Languages of the public XNLI and XQuAD test sets.
XNLI_LANGS: tuple[str, ...] = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
XQUAD_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
