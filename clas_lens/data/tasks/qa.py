"""The ``qa`` task: extractive question answering on the embedded SQuAD-schema files.

Items come from ``data/embedded/qa/{lang}.jsonl`` (SQuAD schema: ``id``, ``context``,
``question``, ``answers {text, answer_start}``; every answer span is checked against the
context). The answer is generated greedily after "Context / Question / Answer:", stopped at a
newline, and scored by SQuAD F1 and exact match (characters for zh / ja / th) -- mode
``generate``; ``gold_logprob`` is the log-likelihood of the first reference answer after the
prompt (teacher-forced). :func:`qa_task` also builds :mod:`~clas_lens.data.tasks.xquad`.

>>> load_qa(["en"]).items("en")[0].prompt.startswith("Context: ")
True
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from clas_lens.data.tasks.base import (
    MODE_METRICS,
    Task,
    TaskItem,
    file_languages,
    fill_template,
    item_id,
    make_task,
    per_language,
    task_records,
    text_field,
)
from clas_lens.data.tasks.registry import register_task
from clas_lens.errors import DataValidationError

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
#: Options of the qa task (xquad adds ``hub_split`` and ``dataset``).
QA_OPTIONS: frozenset[str] = frozenset({"template", "max_new_tokens", "stop", "data_files"})


def answer_spans(rec: Mapping[str, Any], where: str, rid: str) -> list[tuple[str, int | None]]:
    """``[(text, answer_start or None)]`` of a SQuAD-schema record (``answers`` as
    ``{text: [...], answer_start: [...]}`` or a list of ``{text, answer_start}``).

    >>> answer_spans({"answers": {"text": ["1890"], "answer_start": [17]}}, "f:1", "x1")
    [('1890', 17)]
    """
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


def qa_items(task: str, lang: str, recs: list[tuple[str, dict[str, Any]]], template: str) -> list[TaskItem]:
    """Generation items from SQuAD-schema records ``[(where, record)]``; each answer must be at
    its ``answer_start`` in the context.

    >>> rec = {"id": "q", "context": "Built in 1890.", "question": "When?",
    ...        "answers": {"text": ["1890"], "answer_start": [9]}}
    >>> qa_items("qa", "en", [("f:1", rec)], "{context} {question}")[0].references
    ['1890']
    """
    items: list[TaskItem] = []
    seen: set[str] = set()
    for k, (where, rec) in enumerate(recs):
        rid = item_id(rec, k, where, seen, prefix="item-")
        context = text_field(rec, "context", where)
        question = text_field(rec, "question", where)
        refs: list[str] = []
        for text, start in answer_spans(rec, where, rid):
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
        prompt = fill_template(template, lang, task, context=context, question=question)
        items.append(TaskItem(rid, lang, prompt, None, None, refs))
    return items


def qa_task(
    name: str, langs: Sequence[str], options: Mapping[str, Any], hub: tuple[str, str, str] | None = None, hint: str = ""
) -> Task:
    """A QA-style task ``name`` over ``langs``: from ``options["data_files"]``, else the
    embedded files (``hub`` None), else the hub dataset ``hub = (path, config, split)``
    (``config`` is formatted with ``{lang}``; ``hint``: how to pass local files instead).
    With ``hub``, its split and dataset are recorded in ``task.config``.

    >>> qa_task("qa", ["en"], {"max_new_tokens": 8}).max_new_tokens
    8
    """
    item_map: dict[str, list[TaskItem]] = {}
    for lang in langs:
        template = per_language(options.get("template"), lang, QA_TEMPLATES, "template", name)
        recs = task_records(name, lang, options.get("data_files"), len(langs), hub, hint)
        item_map[lang] = qa_items(name, lang, recs, template)
    config: dict[str, Any] = {"template": options.get("template")}
    if hub is not None:
        config.update(hub_split=hub[2], dataset=hub[0])
    return make_task(name, "generate", list(MODE_METRICS["generate"]), item_map, config, options)


def qa_languages(**options: Any) -> list[str]:
    """Languages of the embedded QA files (or the keys of a ``data_files`` mapping).

    >>> "en" in qa_languages()
    True
    """
    return file_languages("qa", options.get("data_files"))


def load_qa(langs: Sequence[str], **options: Any) -> Task:
    """The ``qa`` task (loader of the registry; use :func:`~clas_lens.data.tasks.load_task`).

    >>> load_qa(["en"], max_new_tokens=8).config["max_new_tokens"]
    8
    """
    return qa_task("qa", langs, options)


register_task(
    "qa",
    load_qa,
    options=QA_OPTIONS,
    languages=qa_languages,
    missing_hint=" Pass data_files={lang: path} for other languages.",
)
