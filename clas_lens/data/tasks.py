"""Evaluation tasks: items per language, prediction with a model, tidy scores with CIs.

``load_task(name, langs=None, **options) -> Task``. Tasks:

=========  ==========  =====================================================================
name       mode        data and scoring
=========  ==========  =====================================================================
``nli``    choice      embedded ``data/embedded/nli/{lang}.jsonl`` (XNLI schema: id, premise,
                       hypothesis, label 0 entailment / 1 neutral / 2 contradiction); the label
                       words are scored by log-probability after a per-language prompt.
``qa``     generate    embedded ``data/embedded/qa/{lang}.jsonl`` (SQuAD schema); greedy
                       generation after "Context / Question / Answer:", stopped at a newline,
                       scored by SQuAD F1 and exact match (characters for zh / ja / th).
``cloze``  choice      built from CLDR (``babel``): three consecutive weekday (month) names
                       joined by the language's list separator; options: all 7 (12) names.
``xnli``   choice      ``facebook/xnli`` (one config per language) through ``datasets``, or
                       local files in that schema (``data_files=``); scored like ``nli``.
``xquad``  generate    ``google/xquad`` (``xquad.{lang}``) or local files; scored like ``qa``.
=========  ==========  =====================================================================

Prompts and label words are parameters (``template=``, ``label_words=``, ``option_prefix=``)
with stated defaults: the English NLI prompt is the one "Sharing Matters" used (see
:data:`NLI_TEMPLATES`). Prompts never end with a space; options carry their leading space
(none for zh / ja / th, see :data:`NO_SPACE_LANGS`), so that prompt + option tokenises as the
model would read it.

>>> task = load_task("cloze", langs=["en", "de"])
>>> task.mode, task.metrics, len(task.items("en"))
('choice', ['accuracy'], 19)
>>> item = task.items("en")[0]
>>> item.prompt, item.options[item.answer]
('Monday, Tuesday, Wednesday,', ' Thursday')
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Sequence

import pandas as pd

from clas_lens.data.corpus import EMBEDDED_DIR, LANGUAGES, _canonical_order, check_lang_code, embedded_languages
from clas_lens.errors import DataValidationError

TASKS: tuple[str, ...] = ("nli", "qa", "cloze", "xnli", "xquad")
#: Languages written without spaces between words: options get no leading space.
NO_SPACE_LANGS: frozenset[str] = frozenset({"zh", "ja", "th"})
XNLI_LANGS: tuple[str, ...] = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
XQUAD_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
NLI_LABELS: tuple[str, str, str] = ("entailment", "neutral", "contradiction")

#: NLI prompts ({premise}, {hypothesis}); English is the "Sharing Matters" prompt (METHODS.md),
#: the others are the project's own translations of it.
NLI_TEMPLATES: dict[str, str] = {
    "en": 'Take the following as truth: {premise}\nThen the following statement: "{hypothesis}" is "true", "false", or "inconclusive"?',
    "de": "Nimm Folgendes als wahr an: {premise}\nIst dann die folgende Aussage: „{hypothesis}“ „wahr“, „falsch“ oder „unklar“?",
    "es": 'Toma lo siguiente como verdad: {premise}\nEntonces, la siguiente afirmación: "{hypothesis}", ¿es "verdadera", "falsa" o "indeterminada"?',
    "el": "Θεώρησε το εξής ως αληθές: {premise}\nΤότε η ακόλουθη δήλωση: «{hypothesis}» είναι «αληθής», «ψευδής» ή «αβέβαιη»;",
    "ru": "Считай следующее истиной: {premise}\nТогда следующее утверждение: «{hypothesis}» — «верно», «неверно» или «неизвестно»?",
    "tr": 'Aşağıdakini doğru kabul et: {premise}\nO hâlde şu ifade: "{hypothesis}" "doğru", "yanlış" ya da "belirsiz" mi?',
    "ar": 'اعتبر ما يلي حقيقة: {premise}\nإذن، هل العبارة التالية: "{hypothesis}" "صحيحة" أم "خاطئة" أم "غير مؤكدة"؟',
    "vi": 'Hãy coi điều sau đây là sự thật: {premise}\nVậy thì câu sau đây: "{hypothesis}" là "đúng", "sai" hay "không chắc chắn"?',
    "th": 'ให้ถือว่าข้อความต่อไปนี้เป็นความจริง: {premise}\nแล้วข้อความต่อไปนี้: "{hypothesis}" เป็น "จริง" "เท็จ" หรือ "ไม่แน่ชัด"?',
    "zh": "将以下内容视为事实：{premise}\n那么下面这个说法：“{hypothesis}”是“正确”、“错误”还是“不确定”？",
    "hi": 'निम्नलिखित को सत्य मान लीजिए: {premise}\nतो क्या निम्नलिखित कथन: "{hypothesis}" "सही", "गलत" या "अनिश्चित" है?',
    "sw": 'Chukulia yafuatayo kuwa kweli: {premise}\nBasi je, kauli ifuatayo: "{hypothesis}" ni "kweli", "uongo" au "haijulikani"?',
    "fr": "Considère ce qui suit comme vrai : {premise}\nAlors, l'affirmation suivante : « {hypothesis} » est-elle « vraie », « fausse » ou « indéterminée » ?",
    "bg": "Приеми следното за истина: {premise}\nТогава „вярно“, „невярно“ или „неясно“ е следното твърдение: „{hypothesis}“?",
    "ur": 'درج ذیل کو سچ مان لیں: {premise}\nتو کیا درج ذیل بیان: "{hypothesis}" "درست"، "غلط" یا "غیر یقینی" ہے؟',
}
#: Label words (entailment, neutral, contradiction) per language, matching the templates.
NLI_LABEL_WORDS: dict[str, tuple[str, str, str]] = {
    "en": ("true", "inconclusive", "false"),
    "de": ("wahr", "unklar", "falsch"),
    "es": ("verdadera", "indeterminada", "falsa"),
    "el": ("αληθής", "αβέβαιη", "ψευδής"),
    "ru": ("верно", "неизвестно", "неверно"),
    "tr": ("doğru", "belirsiz", "yanlış"),
    "ar": ("صحيحة", "غير مؤكدة", "خاطئة"),
    "vi": ("đúng", "không chắc chắn", "sai"),
    "th": ("จริง", "ไม่แน่ชัด", "เท็จ"),
    "zh": ("正确", "不确定", "错误"),
    "hi": ("सही", "अनिश्चित", "गलत"),
    "sw": ("kweli", "haijulikani", "uongo"),
    "fr": ("vraie", "indéterminée", "fausse"),
    "bg": ("вярно", "неясно", "невярно"),
    "ur": ("درست", "غیر یقینی", "غلط"),
}
#: Extractive QA prompts ({context}, {question}); the answer is generated after the colon.
QA_TEMPLATES: dict[str, str] = {
    "en": "Context: {context}\nQuestion: {question}\nAnswer:",
    "de": "Kontext: {context}\nFrage: {question}\nAntwort:",
    "es": "Contexto: {context}\nPregunta: {question}\nRespuesta:",
    "el": "Κείμενο: {context}\nΕρώτηση: {question}\nΑπάντηση:",
    "ru": "Контекст: {context}\nВопрос: {question}\nОтвет:",
    "tr": "Bağlam: {context}\nSoru: {question}\nCevap:",
    "ar": "السياق: {context}\nالسؤال: {question}\nالإجابة:",
    "vi": "Ngữ cảnh: {context}\nCâu hỏi: {question}\nTrả lời:",
    "th": "บริบท: {context}\nคำถาม: {question}\nคำตอบ:",
    "zh": "上下文：{context}\n问题：{question}\n答案：",
    "hi": "संदर्भ: {context}\nप्रश्न: {question}\nउत्तर:",
    "sw": "Muktadha: {context}\nSwali: {question}\nJibu:",
    "ro": "Context: {context}\nÎntrebare: {question}\nRăspuns:",
    "fr": "Contexte : {context}\nQuestion : {question}\nRéponse :",
    "ja": "文脈：{context}\n質問：{question}\n答え：",
    "ko": "문맥: {context}\n질문: {question}\n답변:",
}
#: List separators where CLDR's "standard" list pattern is a conjunction (Arabic "و").
CLOZE_SEPARATORS: dict[str, str] = {"ar": "، "}
CLOZE_KINDS: tuple[str, ...] = ("weekday", "month")

_COMMON_OPTIONS = {"seed", "n_boot", "alpha"}
_TASK_OPTIONS: dict[str, set[str]] = {
    "nli": {"template", "label_words", "option_prefix", "data_files"},
    "qa": {"template", "max_new_tokens", "stop", "data_files"},
    "cloze": {"kinds", "separators", "option_prefix"},
    "xnli": {"template", "label_words", "option_prefix", "data_files", "split", "dataset"},
    "xquad": {"template", "max_new_tokens", "stop", "data_files", "split", "dataset"},
}


@dataclasses.dataclass(frozen=True)
class TaskItem:
    """One evaluation item.

    Choice items have ``options`` (with their leading space) and ``answer`` (index of the
    correct option); generation items have ``references`` (acceptable answers).
    """

    id: str
    lang: str
    prompt: str
    options: list[str] | None = None
    answer: int | None = None
    references: list[str] | None = None


@dataclasses.dataclass(kw_only=True)
class Task:
    """A task over languages: items, prediction and evaluation.

    ``mode`` is ``"choice"`` (options scored by summed log-probability, metric ``accuracy``)
    or ``"generate"`` (greedy generation, metrics ``f1`` and ``exact_match``). ``config``
    records every option the task was built with. Bootstrap CIs use ``seed``, ``n_boot`` and
    ``alpha``.
    """

    name: str
    mode: Literal["choice", "generate"]
    metrics: list[str]
    item_map: dict[str, list[TaskItem]]
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_new_tokens: int = 16
    stop: str | None = "\n"
    seed: int = 0
    n_boot: int = 1000
    alpha: float = 0.05

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
            "alpha": self.alpha,
        }

    def predict(self, model, lang: str, *, limit: int | None = None, batch_size: int = 32) -> pd.DataFrame:
        """One row per item: task, lang, item_id, prediction, reference, the metric columns
        and, for choice tasks, ``margin`` (log-prob of the correct option minus the best other)
        plus ``pred_index`` / ``answer_index``. ``limit`` takes the first n items.

        Hooks active on the model (steering) apply. ``batch_size`` counts sequences per
        forward pass (one per option for choice tasks).

        >>> from clas_lens.testing import tiny_model
        >>> df = load_task("cloze", langs=["en"]).predict(tiny_model("llama"), "en", limit=2)
        >>> list(df.columns[:6]), len(df)
        (['task', 'lang', 'item_id', 'prediction', 'reference', 'accuracy'], 2)
        """
        items = self.items(lang)
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be >= 1, got {limit}.")
            items = items[:limit]
        if self.mode == "choice":
            return self._predict_choice(model, lang, items, batch_size)
        return self._predict_generate(model, lang, items, batch_size)

    def _predict_choice(self, model, lang: str, items: list[TaskItem], batch_size: int) -> pd.DataFrame:
        from clas_lens.scoring import score_choices

        scores = score_choices(model, [(it.prompt, it.options) for it in items], batch_size=batch_size)
        rows = []
        for it, s in zip(items, scores):
            pred = int(s.argmax())
            others = [float(v) for k, v in enumerate(s.tolist()) if k != it.answer]
            margin = float(s[it.answer]) - max(others) if others else float("inf")
            rows.append(
                {
                    "task": self.name,
                    "lang": lang,
                    "item_id": it.id,
                    "prediction": it.options[pred].strip(),
                    "reference": it.options[it.answer].strip(),
                    "accuracy": float(pred == it.answer),
                    "margin": margin,
                    "pred_index": pred,
                    "answer_index": it.answer,
                }
            )
        return pd.DataFrame(rows, columns=_CHOICE_COLUMNS)

    def _predict_generate(self, model, lang: str, items: list[TaskItem], batch_size: int) -> pd.DataFrame:
        from clas_lens.generation import generate
        from clas_lens.metrics import exact_match, squad_f1

        # Generate in order of prompt length (less padding), then restore the item order.
        order = sorted(range(len(items)), key=lambda k: len(items[k].prompt))
        outs = generate(
            model,
            [items[k].prompt for k in order],
            self.max_new_tokens,
            stop=self.stop,
            batch_size=batch_size,
        )
        by_item = {k: o for k, o in zip(order, outs)}
        rows = []
        for k, it in enumerate(items):
            pred = by_item[k].strip()
            refs = list(it.references or [])
            rows.append(
                {
                    "task": self.name,
                    "lang": lang,
                    "item_id": it.id,
                    "prediction": pred,
                    "reference": refs[0],
                    "f1": squad_f1(pred, refs, lang),
                    "exact_match": exact_match(pred, refs, lang),
                    "references": refs,
                }
            )
        return pd.DataFrame(rows, columns=_GENERATE_COLUMNS)

    def evaluate(
        self,
        model,
        langs: Sequence[str] | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 32,
    ) -> pd.DataFrame:
        """Tidy scores: one row per (language, metric) with columns task, lang, metric, value,
        ci_low, ci_high, n (seeded percentile bootstrap CI of the mean). The per-item
        predictions are in ``df.attrs["predictions"]``.

        >>> from clas_lens.testing import tiny_model
        >>> df = load_task("cloze", langs=["en", "de"]).evaluate(tiny_model("llama"), limit=3)
        >>> list(df.columns), df["n"].tolist()
        (['task', 'lang', 'metric', 'value', 'ci_low', 'ci_high', 'n'], [3, 3])
        """
        from clas_lens.metrics import bootstrap_ci

        langs = list(langs) if langs is not None else self.langs
        for lang in langs:
            self.items(lang)  # clear error for an unknown language before any work
        preds = []
        rows = []
        for lang in langs:
            df = self.predict(model, lang, limit=limit, batch_size=batch_size)
            preds.append(df)
            for metric in self.metrics:
                vals = df[metric].astype(float).to_numpy()
                low, high = bootstrap_ci(vals, n_boot=self.n_boot, seed=self.seed, alpha=self.alpha)
                rows.append(
                    {
                        "task": self.name,
                        "lang": lang,
                        "metric": metric,
                        "value": float(vals.mean()) if len(vals) else float("nan"),
                        "ci_low": low,
                        "ci_high": high,
                        "n": int(len(vals)),
                    }
                )
        out = pd.DataFrame(rows, columns=["task", "lang", "metric", "value", "ci_low", "ci_high", "n"])
        out.attrs["predictions"] = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()
        return out


_CHOICE_COLUMNS = ["task", "lang", "item_id", "prediction", "reference", "accuracy", "margin", "pred_index", "answer_index"]
_GENERATE_COLUMNS = ["task", "lang", "item_id", "prediction", "reference", "f1", "exact_match", "references"]


# -- helpers ----------------------------------------------------------------------------
def _per_lang(value: Any, lang: str, defaults: Mapping[str, Any], what: str, task: str) -> Any:
    """Resolve a per-language parameter: a mapping (falls back to defaults) or one value for all."""
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


def _option_prefix(option_prefix: Any, lang: str) -> str:
    if isinstance(option_prefix, Mapping):
        option_prefix = option_prefix.get(lang)
    if option_prefix is None:
        return "" if lang in NO_SPACE_LANGS else " "
    return str(option_prefix)


def _fill(template: str, lang: str, task: str, **fields: str) -> str:
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


def _records(
    task: str, lang: str, data_files: Any, n_langs: int, hub: tuple[str, str | None, str] | None, hint: str
) -> list[tuple[str, dict[str, Any]]]:
    """[(where, record)] from data_files, the embedded folder, or the hub."""
    from clas_lens.data.hub import load_hub_records, read_records, resolve_data_files

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
    rows = load_hub_records(path, name, split, what=f"{task} ({lang})", local_hint=hint)
    return [(f"{path}[{name}] {split} row {k}", r) for k, r in enumerate(rows)]


def _item_id(rec: Mapping[str, Any], k: int, where: str, seen: set[str], prefix: str = "") -> str:
    rid = rec.get("id")
    rid = f"{prefix}{k:05d}" if rid is None or rid == "" else str(rid)
    if rid in seen:
        raise DataValidationError(f"{where}: duplicate id {rid!r}.")
    seen.add(rid)
    return rid


def _text_field(rec: Mapping[str, Any], key: str, where: str) -> str:
    val = rec.get(key)
    if not isinstance(val, str) or not val.strip():
        raise DataValidationError(f"{where}: field {key!r} is missing or empty (id {rec.get('id')!r}).")
    return val


_LABEL_NAMES = {name: k for k, name in enumerate(NLI_LABELS)}


def _nli_items(
    task: str, lang: str, recs: list[tuple[str, dict[str, Any]]], template: str, words: Sequence[str], prefix: str
) -> list[TaskItem]:
    if len(words) != 3 or any(not isinstance(w, str) or not w.strip() for w in words):
        raise DataValidationError(
            f"Task {task!r}, language {lang!r}: label_words must be 3 non-empty words (entailment, "
            f"neutral, contradiction); got {words!r}."
        )
    options = [prefix + w for w in words]
    items, seen = [], set()
    for k, (where, rec) in enumerate(recs):
        rid = _item_id(rec, k, where, seen, prefix="item-")
        premise = _text_field(rec, "premise", where)
        hypothesis = _text_field(rec, "hypothesis", where)
        label = rec.get("label")
        if isinstance(label, str):
            label = _LABEL_NAMES.get(label.strip().lower(), label)
            if isinstance(label, str) and label.strip().lstrip("-").isdigit():
                label = int(label)
        if isinstance(label, bool) or not isinstance(label, int) or label not in (0, 1, 2):
            raise DataValidationError(
                f"{where}: label must be 0 (entailment), 1 (neutral) or 2 (contradiction); got {label!r} "
                f"(id {rid!r})."
            )
        prompt = _fill(template, lang, task, premise=premise, hypothesis=hypothesis)
        items.append(TaskItem(rid, lang, prompt, options, int(label), None))
    return items


def _answers(rec: Mapping[str, Any], where: str, rid: str) -> list[tuple[str, int | None]]:
    ans = rec.get("answers")
    if isinstance(ans, Mapping):
        texts = list(ans.get("text") or [])
        starts = list(ans.get("answer_start") or [])
        if starts and len(starts) != len(texts):
            raise DataValidationError(
                f"{where}: answers has {len(texts)} texts but {len(starts)} answer_start values (id {rid!r})."
            )
        pairs = list(zip(texts, starts)) if starts else [(t, None) for t in texts]
    elif isinstance(ans, list):
        pairs = [(a.get("text"), a.get("answer_start")) for a in ans if isinstance(a, Mapping)]
    else:
        pairs = []
    if not pairs:
        raise DataValidationError(f"{where}: no answers (need answers.text and answers.answer_start; id {rid!r}).")
    return pairs


def _qa_items(task: str, lang: str, recs: list[tuple[str, dict[str, Any]]], template: str) -> list[TaskItem]:
    items, seen = [], set()
    for k, (where, rec) in enumerate(recs):
        rid = _item_id(rec, k, where, seen, prefix="item-")
        context = _text_field(rec, "context", where)
        question = _text_field(rec, "question", where)
        refs: list[str] = []
        for text, start in _answers(rec, where, rid):
            if not isinstance(text, str) or not text.strip():
                raise DataValidationError(f"{where}: empty answer text (id {rid!r}, lang {lang!r}).")
            if start is not None:
                start = int(start)
                found = context[start : start + len(text)]
                if found != text:
                    at = context.find(text)
                    hint = f"; the text occurs at offset {at}" if at >= 0 else "; the text is not in the context"
                    raise DataValidationError(
                        f"{where}: answer {text!r} is not at answer_start {start} of the context "
                        f"(found {found!r} there{hint}) -- id {rid!r}, lang {lang!r}."
                    )
            if text not in refs:
                refs.append(text)
        prompt = _fill(template, lang, task, context=context, question=question)
        items.append(TaskItem(rid, lang, prompt, None, None, refs))
    return items


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
    from babel import Locale

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
    from babel import Locale, UnknownLocaleError

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


def _cloze_items(lang: str, kinds: Sequence[str], separators: Any, option_prefix: Any) -> list[TaskItem]:
    sep = cloze_separator(lang, separators if isinstance(separators, Mapping) else None)
    if isinstance(separators, str):
        sep = separators
    body = sep.rstrip()
    trailing = sep[len(body) :]
    if isinstance(option_prefix, Mapping):
        option_prefix = option_prefix.get(lang)
    prefix = trailing if option_prefix is None else str(option_prefix)
    items = []
    for kind in kinds:
        names = cloze_names(lang, kind)
        n = len(names)
        if len(set(names)) != n:
            raise DataValidationError(f"CLDR {kind} names for {lang!r} are not distinct: {names}.")
        options = [prefix + name for name in names]
        for i in range(n):
            shown = [names[(i + j) % n] for j in range(3)]
            prompt = sep.join(shown) + body  # ends with the separator minus its trailing space
            items.append(TaskItem(f"{kind}-{i + 1:02d}", lang, prompt, options, (i + 3) % n, None))
    return items


def available_languages(name: str, **options: Any) -> list[str]:
    """Languages a task can be built for without extra data.

    nli / qa: languages with an embedded file (or keys of a ``data_files`` mapping); cloze:
    every language of :data:`~clas_lens.data.corpus.LANGUAGES` (any other language CLDR knows
    works too); xnli / xquad: the benchmark's languages.

    >>> "en" in available_languages("nli"), len(available_languages("xnli"))
    (True, 15)
    """
    _check_name(name)
    data_files = options.get("data_files")
    if name in ("nli", "qa"):
        if isinstance(data_files, Mapping):
            return _canonical_order(data_files)
        return embedded_languages(name)
    if name == "cloze":
        return list(LANGUAGES)
    return list(XNLI_LANGS if name == "xnli" else XQUAD_LANGS)


def _check_name(name: str) -> None:
    if name not in TASKS:
        raise DataValidationError(f"Unknown task {name!r}; available tasks: {', '.join(TASKS)}.")


def load_task(name: str, langs: Sequence[str] | None = None, **options: Any) -> Task:
    """Build task ``name`` for ``langs`` (default: every available language; for cloze the
    embedded corpus's languages).

    Options (all recorded in ``task.config``):

    * all tasks: ``seed=0``, ``n_boot=1000``, ``alpha=0.05`` (bootstrap CIs).
    * nli / xnli: ``template`` (str, or {lang: str} with ``{premise}`` and ``{hypothesis}``;
      default :data:`NLI_TEMPLATES`), ``label_words`` ((entailment, neutral, contradiction) or
      {lang: ...}; default :data:`NLI_LABEL_WORDS`), ``option_prefix`` (default " ", "" for
      zh / ja / th).
    * qa / xquad: ``template`` (``{context}``, ``{question}``; default :data:`QA_TEMPLATES`),
      ``max_new_tokens=16``, ``stop="\\n"``.
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
    _check_name(name)
    allowed = _TASK_OPTIONS[name] | _COMMON_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataValidationError(
            f"Unknown option(s) {unknown} for task {name!r}; accepted: {', '.join(sorted(allowed))}."
        )
    available = available_languages(name, **options)
    if langs is None:
        # cloze can be built for any CLDR language; by default it covers the embedded corpus's.
        langs = embedded_languages("corpus") if name == "cloze" else available
    else:
        if isinstance(langs, str):
            langs = [langs]
        langs = list(langs)
        for lang in langs:
            check_lang_code(lang)
        missing = [lang for lang in langs if lang not in available and name != "cloze"]
        if missing:
            hint = ""
            if name in ("nli", "qa"):
                hint = " Pass data_files={lang: path} for other languages."
            raise DataValidationError(
                f"Task {name!r} has no language(s) {', '.join(map(repr, missing))}; available: "
                f"{', '.join(available) if available else '(none)'}.{hint}"
            )
    if not langs:
        raise DataValidationError(f"Task {name!r}: no languages to load.")

    common = {k: options[k] for k in _COMMON_OPTIONS if k in options}
    data_files = options.get("data_files")
    item_map: dict[str, list[TaskItem]] = {}
    if name in ("nli", "xnli"):
        split = options.get("split", "test")
        dataset = options.get("dataset", "facebook/xnli")
        for lang in langs:
            template = _per_lang(options.get("template"), lang, NLI_TEMPLATES, "template", name)
            words = _per_lang(options.get("label_words"), lang, NLI_LABEL_WORDS, "label_words", name)
            prefix = _option_prefix(options.get("option_prefix"), lang)
            hub = (dataset, lang, split) if name == "xnli" else None
            hint = (
                "Pass local files in the XNLI schema (premise, hypothesis, label 0/1/2; optional id): "
                "load_task('xnli', langs=[...], data_files={'de': 'xnli/de.jsonl'}) or "
                "data_files='xnli/{lang}.jsonl' (.jsonl, .json, .csv, .tsv or .parquet); or use the "
                "embedded task 'nli'."
            )
            recs = _records("nli" if name == "nli" else name, lang, data_files, len(langs), hub, hint)
            item_map[lang] = _nli_items(name, lang, recs, template, words, prefix)
        mode, metrics = "choice", ["accuracy"]
        config = {k: options.get(k) for k in ("template", "label_words", "option_prefix")}
        if name == "xnli":
            config.update(split=split, dataset=dataset)
    elif name in ("qa", "xquad"):
        split = options.get("split", "validation")
        dataset = options.get("dataset", "google/xquad")
        for lang in langs:
            template = _per_lang(options.get("template"), lang, QA_TEMPLATES, "template", name)
            hub = (dataset, f"xquad.{lang}", split) if name == "xquad" else None
            hint = (
                "Pass local files in the SQuAD schema (id, context, question, answers {text, "
                "answer_start}): load_task('xquad', langs=[...], data_files={'de': 'xquad/de.jsonl'}) "
                "or data_files='xquad/{lang}.jsonl'; or use the embedded task 'qa'."
            )
            recs = _records("qa" if name == "qa" else name, lang, data_files, len(langs), hub, hint)
            item_map[lang] = _qa_items(name, lang, recs, template)
        mode, metrics = "generate", ["f1", "exact_match"]
        config = {"template": options.get("template")}
        if name == "xquad":
            config.update(split=split, dataset=dataset)
    else:  # cloze
        kinds = options.get("kinds", CLOZE_KINDS)
        if isinstance(kinds, str):
            kinds = (kinds,)
        for kind in kinds:
            if kind not in CLOZE_KINDS:
                raise DataValidationError(f"Unknown cloze kind {kind!r}; choose from {list(CLOZE_KINDS)}.")
        for lang in langs:
            item_map[lang] = _cloze_items(lang, kinds, options.get("separators"), options.get("option_prefix"))
        mode, metrics = "choice", ["accuracy"]
        config = {"kinds": list(kinds), "separators": options.get("separators"), "option_prefix": options.get("option_prefix")}
    for lang, items in item_map.items():
        if not items:
            raise DataValidationError(f"Task {name!r}: no items for language {lang!r}.")
    if data_files is not None:
        config["data_files"] = {k: str(v) for k, v in data_files.items()} if isinstance(data_files, Mapping) else str(data_files)
    gen = {}
    if mode == "generate":
        gen = {"max_new_tokens": int(options.get("max_new_tokens", 16)), "stop": options.get("stop", "\n")}
        config.update(gen)
    return Task(name=name, mode=mode, metrics=metrics, item_map=item_map, config=config, **gen, **common)
