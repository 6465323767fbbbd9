"""The ``nli`` task: natural-language inference on the embedded XNLI-schema files.

Items come from ``data/embedded/nli/{lang}.jsonl`` (XNLI schema: ``id``, ``premise``,
``hypothesis``, ``label`` 0 entailment / 1 neutral / 2 contradiction; label names are read
too). The prompt asks whether the hypothesis follows from the premise; the options are the
three label words after it, scored by log-probability (mode ``choice``: metrics ``margin``,
``gold_logprob``, ``accuracy``); the content-free prompt fills premise and hypothesis with "N/A".
:func:`nli_task` also builds :mod:`~clas_lens.data.tasks.xnli` from the hub or local files.

>>> task = load_nli(["en"])
>>> task.items("en")[0].options
[' true', ' inconclusive', ' false']
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from clas_lens.data.tasks.base import (
    CONTENT_FREE,
    MODE_METRICS,
    Task,
    TaskItem,
    file_languages,
    fill_template,
    item_id,
    make_task,
    option_prefix,
    per_language,
    task_records,
    text_field,
)
from clas_lens.data.tasks.options import CHOICE_OPTIONS
from clas_lens.data.tasks.registry import register_task
from clas_lens.errors import DataValidationError

NLI_LABELS: tuple[str, str, str] = ("entailment", "neutral", "contradiction")

#: NLI prompts ({premise}, {hypothesis}); English is the "Sharing Matters" prompt (see
#: docs/methods.md, "Evaluation"), the others are the project's own translations of it.
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
#: Options of the nli task (xnli adds ``hub_split`` and ``dataset``).
NLI_OPTIONS: frozenset[str] = frozenset({"template", "label_words", "option_prefix", "data_files"}) | CHOICE_OPTIONS

_LABEL_NAMES = {name: k for k, name in enumerate(NLI_LABELS)}


def nli_items(
    task: str, lang: str, recs: list[tuple[str, dict[str, Any]]], template: str, words: Sequence[str], prefix: str
) -> list[TaskItem]:
    """Choice items from XNLI-schema records ``[(where, record)]``: the filled ``template`` and
    the three label ``words`` (after ``prefix``) as options.

    >>> rec = {"premise": "It rains.", "hypothesis": "It is dry.", "label": "contradiction"}
    >>> it = nli_items("nli", "en", [("f:1", rec)], "{premise} {hypothesis}", ("yes", "maybe", "no"), " ")[0]
    >>> it.id, it.options[it.answer]
    ('item-00000', ' no')
    """
    if len(words) != 3 or any(not isinstance(w, str) or not w.strip() for w in words):
        raise DataValidationError(
            f"Task {task!r}, language {lang!r}: label_words must be 3 non-empty words (entailment, "
            f"neutral, contradiction); got {words!r}."
        )
    options = [prefix + w for w in words]
    content_free = fill_template(template, lang, task, premise=CONTENT_FREE, hypothesis=CONTENT_FREE)
    items: list[TaskItem] = []
    seen: set[str] = set()
    for k, (where, rec) in enumerate(recs):
        rid = item_id(rec, k, where, seen, prefix="item-")
        premise = text_field(rec, "premise", where)
        hypothesis = text_field(rec, "hypothesis", where)
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
        prompt = fill_template(template, lang, task, premise=premise, hypothesis=hypothesis)
        items.append(TaskItem(rid, lang, prompt, options, int(label), None, content_free=content_free))
    return items


def nli_task(
    name: str, langs: Sequence[str], options: Mapping[str, Any], hub: tuple[str, str, str] | None = None, hint: str = ""
) -> Task:
    """An NLI-style task ``name`` over ``langs``: from ``options["data_files"]``, else the
    embedded files (``hub`` None), else the hub dataset ``hub = (path, config, split)``
    (``config`` is formatted with ``{lang}``; ``hint``: how to pass local files instead).
    With ``hub``, its split and dataset are recorded in ``task.config``.

    >>> nli_task("nli", ["en"], {}).metrics
    ['margin', 'gold_logprob', 'accuracy']
    """
    item_map: dict[str, list[TaskItem]] = {}
    for lang in langs:
        template = per_language(options.get("template"), lang, NLI_TEMPLATES, "template", name)
        words = per_language(options.get("label_words"), lang, NLI_LABEL_WORDS, "label_words", name)
        prefix = option_prefix(options.get("option_prefix"), lang)
        recs = task_records(name, lang, options.get("data_files"), len(langs), hub, hint)
        item_map[lang] = nli_items(name, lang, recs, template, words, prefix)
    config = {k: options.get(k) for k in ("template", "label_words", "option_prefix")}
    if hub is not None:
        config.update(hub_split=hub[2], dataset=hub[0])
    return make_task(name, "choice", list(MODE_METRICS["choice"]), item_map, config, options)


def nli_languages(**options: Any) -> list[str]:
    """Languages of the embedded NLI files (or the keys of a ``data_files`` mapping).

    >>> nli_languages(data_files={"zh": "zh.jsonl", "de": "de.jsonl"})
    ['de', 'zh']
    """
    return file_languages("nli", options.get("data_files"))


def load_nli(langs: Sequence[str], **options: Any) -> Task:
    """The ``nli`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    >>> load_nli(["en"]).langs
    ['en']
    """
    return nli_task("nli", langs, options)


register_task(
    "nli",
    load_nli,
    options=NLI_OPTIONS,
    languages=nli_languages,
    missing_hint=" Pass data_files={lang: path} for other languages.",
)
