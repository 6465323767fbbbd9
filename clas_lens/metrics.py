"""Task metrics and the statistics used to compare conditions.

* :func:`squad_f1` and :func:`exact_match` follow the SQuAD v1.1 evaluation script:
  lowercase, drop punctuation (ASCII and every Unicode punctuation character, as MLQA does),
  drop the English articles *a / an / the* (English only), collapse whitespace; then token
  overlap F1 or string equality, the maximum over the references. Languages written without
  spaces between words (zh, ja, th) are compared on characters, as MLQA does: every CJK, kana
  or Thai character is one token, runs of other characters (Latin words, numbers) stay whole.
* :func:`accuracy` is the mean of 0/1 correctness.
* :func:`bootstrap_ci` is a seeded percentile bootstrap CI of the mean.
* :func:`paired_bootstrap` compares two conditions scored on the same items (e.g. steered vs
  unsteered); :func:`mcnemar` is the exact McNemar test on paired 0/1 outcomes.

All functions are pure (numbers in, numbers out).

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
from typing import Iterable, Sequence

import numpy as np

#: Languages scored on characters (written without spaces between words), as in MLQA.
from clas_lens.languages import NO_SPACE_LANGS as CHARACTER_LEVEL_LANGS  # one definition

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


def _as_array(values: Iterable[float], name: str) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop or fill those items first.")
    return arr


def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 200) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``x`` (indices drawn in chunks to bound memory)."""
    out = np.empty(n_boot, dtype=np.float64)
    n = len(x)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def bootstrap_ci(
    values: Iterable[float], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` confidence interval of the mean, seeded.

    NaN for no values; a single value gives ``(v, v)``.

    >>> low, high = bootstrap_ci([0, 1, 1, 0, 1, 1, 1, 0], seed=0)
    >>> bool(low < 0.625 < high)
    True
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}.")
    x = _as_array(values, "values")
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = _boot_means(x, n_boot, rng)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def paired_bootstrap(
    a: Iterable[float],
    b: Iterable[float],
    n_boot: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Paired bootstrap of the mean difference ``b - a`` over the same items.

    ``a`` is the reference condition (e.g. unsteered) and ``b`` the one compared to it (e.g.
    steered); ``diff > 0`` means ``b`` scores higher. Items are resampled jointly.
    ``p_value`` is two-sided: the bootstrap distribution is shifted to a zero mean (the null
    hypothesis) and ``p = (1 + #{|d* - diff| >= |diff|}) / (1 + n_boot)``, so identical inputs
    give ``p = 1`` and the smallest attainable value is ``1 / (n_boot + 1)``.

    Returns ``dict(diff, ci_low, ci_high, p_value, n)``.

    >>> r = paired_bootstrap([0, 0, 1, 0, 1, 0], [1, 1, 1, 0, 1, 1], n_boot=2000, seed=0)
    >>> round(r["diff"], 3), bool(r["ci_low"] <= r["diff"] <= r["ci_high"])
    (0.5, True)
    """
    xa = _as_array(a, "a")
    xb = _as_array(b, "b")
    if len(xa) != len(xb):
        raise ValueError(f"paired_bootstrap needs paired values: len(a)={len(xa)} != len(b)={len(xb)}.")
    n = len(xa)
    if n == 0:
        nan = float("nan")
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": 0}
    d = xb - xa
    diff = float(d.mean())
    rng = np.random.default_rng(seed)
    boots = _boot_means(d, n_boot, rng)
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    # Tolerance guards against float noise when all differences are equal.
    tol = 1e-12 * max(1.0, abs(diff))
    extreme = int(np.sum(np.abs(boots - diff) >= abs(diff) - tol))
    p = (1 + extreme) / (1 + n_boot)
    return {"diff": diff, "ci_low": float(low), "ci_high": float(high), "p_value": float(min(p, 1.0)), "n": n}


def mcnemar(a_correct: Sequence, b_correct: Sequence) -> float:
    """Exact (binomial) two-sided McNemar p-value for paired 0/1 outcomes.

    Only discordant pairs count: ``n01`` (a wrong, b right) and ``n10`` (a right, b wrong);
    ``p = min(1, 2 * P[Binomial(n01 + n10, 1/2) <= min(n01, n10)])``, and 1.0 when there are no
    discordant pairs.

    >>> mcnemar([1, 1, 0, 0], [1, 1, 0, 0])
    1.0
    >>> round(mcnemar([0] * 12, [1] * 12), 6)
    0.000488
    """
    a = [bool(v) for v in a_correct]
    b = [bool(v) for v in b_correct]
    if len(a) != len(b):
        raise ValueError(f"mcnemar needs paired outcomes: {len(a)} != {len(b)}.")
    n01 = sum(1 for x, y in zip(a, b) if not x and y)
    n10 = sum(1 for x, y in zip(a, b) if x and not y)
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(k, n, 0.5)))
