"""Task metrics on answers: SQuAD v1.1 F1 and exact match (with MLQA's character tokens for
languages written without spaces), and plain accuracy.

* :func:`squad_f1` and :func:`exact_match` follow the SQuAD v1.1 evaluation script:
  lowercase, drop punctuation (ASCII and every Unicode punctuation character, as MLQA does),
  drop the English articles *a / an / the* (English only), collapse whitespace; then token
  overlap F1 or string equality, the maximum over the references. Languages written without
  spaces between words (zh, ja, th) are compared on characters, as MLQA does: every CJK, kana
  or Thai character is one token, runs of other characters (Latin words, numbers) stay whole.
* :func:`accuracy` is the mean of 0/1 correctness.

See docs/methods.md, "Evaluation". All functions are pure (strings in, numbers out).

>>> squad_f1("the cat sat", ["a cat sat down"])
0.8
>>> exact_match("The Eiffel Tower!", ["eiffel tower"])
1.0
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

#: Languages scored on characters (written without spaces between words), as in MLQA.
from clas_lens.languages import NO_SPACE_LANGS as CHARACTER_LEVEL_LANGS  # one definition

__all__ = [
    "CHARACTER_LEVEL_LANGS",
    "normalize_answer",
    "answer_tokens",
    "squad_f1",
    "exact_match",
    "accuracy",
]

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b", flags=re.UNICODE)


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _is_scriptio_continua(ch: str) -> bool:
    """True for characters of scripts written without spaces: CJK ideographs, kana, Thai."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= cp <= 0x4DBF  # extension A
        or 0x20000 <= cp <= 0x2A6DF  # extension B
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0x31F0 <= cp <= 0x31FF  # katakana phonetic extensions
        or 0xFF66 <= cp <= 0xFF9F  # half-width katakana
        or 0x0E00 <= cp <= 0x0E7F  # Thai
    )


def normalize_answer(text: str, lang: str = "en") -> str:
    """SQuAD v1.1 normalisation: lowercase, no punctuation, no English articles, single spaces.

    Punctuation is every ASCII punctuation character and every Unicode character of category
    ``P*`` (so ``«»„“”、。！？`` all go). Articles are removed for ``lang="en"`` only.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    >>> normalize_answer("Die Katze.", lang="de")
    'die katze'
    """
    text = unicodedata.normalize("NFC", str(text)).lower()
    text = "".join(ch for ch in text if not _is_punct(ch))
    if lang == "en":
        text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str, lang: str = "en") -> list[str]:
    """Tokens of a normalised answer: whitespace words, or characters for zh / ja / th.

    >>> answer_tokens("北京 2008年", lang="zh")
    ['北', '京', '2008', '年']
    >>> answer_tokens("the big cat")
    ['big', 'cat']
    """
    norm = normalize_answer(text, lang)
    if lang not in CHARACTER_LEVEL_LANGS:
        return norm.split()
    tokens: list[str] = []
    buf: list[str] = []
    for ch in norm:
        if ch.isspace() or _is_scriptio_continua(ch):
            if buf:
                tokens.append("".join(buf))
                buf = []
            if not ch.isspace():
                tokens.append(ch)
        else:
            buf.append(ch)
    if buf:
        tokens.append("".join(buf))
    return tokens


def _as_references(references: str | Sequence[str]) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("No reference answers given: pass at least one reference string.")
    return refs


def _f1_one(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        # Both empty counts as a match (SQuAD v2 convention); one empty scores 0.
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, references: str | Sequence[str], lang: str = "en") -> float:
    """Token-overlap F1 between a prediction and the best-matching reference, in [0, 1].

    >>> squad_f1("Paris", ["paris", "Paris, France"])
    1.0
    >>> squad_f1("", ["Paris"])
    0.0
    >>> round(squad_f1("北京市", ["北京"], lang="zh"), 3)
    0.8
    """
    pred = answer_tokens(prediction, lang)
    return max(_f1_one(pred, answer_tokens(r, lang)) for r in _as_references(references))


def exact_match(prediction: str, references: str | Sequence[str], lang: str = "en") -> float:
    """1.0 when the normalised prediction equals some normalised reference, else 0.0.

    >>> exact_match("the Nile.", ["Nile", "River Nile"])
    1.0
    >>> exact_match("Nile river", "River Nile")
    0.0
    """
    pred = normalize_answer(prediction, lang)
    return float(any(pred == normalize_answer(r, lang) for r in _as_references(references)))


def accuracy(predictions: Sequence, references: Sequence | None = None) -> float:
    """Mean correctness: of 0/1 (or bool) values, or of ``predictions[i] == references[i]``.

    Returns NaN for no items.

    >>> accuracy([1, 0, 1, 1])
    0.75
    >>> accuracy([0, 2, 1], [0, 1, 1])
    0.6666666666666666
    """
    if references is None:
        vals = [float(v) for v in predictions]
    else:
        if len(predictions) != len(references):
            raise ValueError(
                f"accuracy() got {len(predictions)} predictions but {len(references)} references."
            )
        vals = [float(p == r) for p, r in zip(predictions, references)]
    return float(np.mean(vals)) if vals else float("nan")
