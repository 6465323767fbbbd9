"""Checks of a whole :class:`~clas_lens.config.RunConfig`: every number in its range and every
list without repeats (:func:`check_ranges`), the corpus's languages (:func:`check_corpus`), each
task's options and languages (:func:`check_task`, :func:`task_languages`), all before any data or
model is loaded.

>>> task_languages("cloze", {}) is None
True
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clas_lens import checks
from clas_lens.data.loaders import FLORES_NAMES, embedded_languages
from clas_lens.data.tasks import task_names, task_spec
from clas_lens.data.tasks.options import check_options
from clas_lens.errors import DataValidationError
from clas_lens.languages import flores_code

if TYPE_CHECKING:
    from clas_lens.config.sections import RunConfig


def _strings(node: Any, key: str) -> None:
    if isinstance(node, str):
        checks.text(node, f"config key {key!r}")
    elif isinstance(node, dict):
        for k, v in node.items():
            _strings(k, key)
            _strings(v, f"{key}.{k}")
    elif isinstance(node, (list, tuple)):
        for v in node:
            _strings(v, key)


def _once(key: str, values: list) -> None:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise DataValidationError(f"config key {key!r} = {values!r} is not allowed: use each value once ({seen[0]!r} is repeated)")


def check_ranges(cfg: RunConfig) -> None:
    """Every number of ``cfg`` of the right type and in its range, every list a list of distinct
    values, every string valid UTF-8 and the run name one plain folder name (validators of
    :mod:`clas_lens.checks`; the message names the key and the allowed range).

    >>> from clas_lens.config import RunConfig
    >>> RunConfig.from_dict({"corpus": {"stats_limit": -1}})
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: config key 'corpus.stats_limit' = -1 is not allowed: use a whole number >= 0 (0: all)
    """
    k = "config key {!r}".format
    for section, values in cfg.to_dict().items():
        _strings(values, section)
    checks.path_component(cfg.run.name, k("run.name"))
    checks.text(cfg.run.out_dir, k("run.out_dir"), nonempty=True)
    checks.non_negative_int(cfg.run.seed, k("run.seed"))
    checks.non_negative_int(cfg.model.threads, k("model.threads"), zero_means="torch's default")
    checks.unique_langs(cfg.corpus.langs, k("corpus.langs"))
    checks.non_negative_int(cfg.corpus.stats_limit, k("corpus.stats_limit"), zero_means="all")
    checks.non_negative_int(cfg.corpus.cluster_limit, k("corpus.cluster_limit"), zero_means="all")
    checks.positive_int(cfg.stats.batch_size, k("stats.batch_size"))
    checks.finite_float(cfg.stats.threshold, k("stats.threshold"))
    checks.positive_int(cfg.stats.max_length, k("stats.max_length"), none_ok=True)
    for name in ("alphas", "betas", "gammas", "strengths"):
        checks.float_list(getattr(cfg.steering, name), k(f"steering.{name}"))
    for v in cfg.steering.mu_values:
        if not isinstance(v, str):
            checks.finite_float(v, k("steering.mu_values"))
    _once("steering.methods", cfg.steering.methods)
    _once("eval.tasks", cfg.eval.tasks)
    for task, limit in cfg.eval.limits.items():
        if task not in task_names():
            raise DataValidationError(f"config key 'eval.limits.{task}': unknown task; allowed values: {list(task_names())}")
        checks.positive_int(limit, k(f"eval.limits.{task}"))
    checks.positive_int(cfg.eval.n_boot, k("eval.n_boot"))
    checks.probability(cfg.eval.confidence, k("eval.confidence"), open_low=True, open_high=True)


def check_corpus(cfg: RunConfig) -> None:
    """The corpus's languages as far as they can be known before loading it."""
    name, langs = cfg.corpus.name, cfg.corpus.langs
    if name == "default":
        have = embedded_languages("corpus")
        missing = [lang for lang in langs if lang not in have]
        if missing:
            raise DataValidationError(
                f"config key 'corpus.langs' has {missing[0]!r}, which the embedded corpus does not have; allowed "
                f"values: {have}. For other languages set corpus.name = 'flores' or the path of JSON-lines files."
            )
    elif name.lower() in FLORES_NAMES:
        for lang in langs:
            try:
                flores_code(lang)
            except DataValidationError as e:
                raise DataValidationError(f"config key 'corpus.langs' has {lang!r}: {e}") from None


def task_languages(task: str, options: dict[str, Any]) -> list[str] | None:
    """The languages task ``task`` has with ``options`` (None: any language, e.g. cloze)."""
    spec = task_spec(task)
    if spec.any_language:
        return None
    try:
        return list(spec.languages(**{k: v for k, v in options.items() if k not in ("split", "split_fractions")}))
    except DataValidationError as e:
        raise DataValidationError(f"config key 'eval.options.{task}': {e}") from None


def check_task(cfg: RunConfig, task: str) -> None:
    """A task's options and languages, checked as :func:`~clas_lens.data.tasks.load_task` will
    (without reading its data)."""
    spec = task_spec(task)
    options = cfg.task_options(task)
    try:
        check_options(task, options, spec.options)
    except DataValidationError as e:
        raise DataValidationError(f"config key 'eval.options.{task}': {e}") from None
    langs = cfg.task_langs(task)
    key = f"eval.langs.{task}" if task in cfg.eval.langs else "corpus.langs"
    outside = [lang for lang in langs if lang not in cfg.corpus.langs]
    if outside:
        raise DataValidationError(
            f"config key {key!r} has {outside[0]!r}, which is not in corpus.langs {cfg.corpus.langs}: steering a "
            "language needs its neurons, found on the corpus; add it to corpus.langs"
        )
    available = task_languages(task, options)
    if available is None:
        return
    missing = [lang for lang in [cfg.corpus.anchor, *langs] if lang not in available]
    if missing:
        what = "the anchor (corpus.anchor, evaluated with every task)" if missing[0] == cfg.corpus.anchor else key
        raise DataValidationError(
            f"config key {key!r}: task {task!r} has no language {missing[0]!r} ({what}); allowed values: {available}. "
            f"Set [eval.langs] {task} = [...] to the languages it has."
        )
