"""Neuron statistics over the processes of a group: the one-process batch plan, dealt by batch.

The work is the single-process batch plan of :func:`clas_lens.collect_stats` -- per language,
sentences sorted by length (longest first) and cut into batches of ``batch_size`` -- and whole
batches are dealt round-robin to the ranks (batch ``k`` of the language-major list goes to rank
``k % world_size``). Every batch is therefore run with exactly the same sentences, padding and
row order as in one process, so the activations are bit-identical; sharding by sentence id
instead changes the padded batch shapes and with them the float32 activations. Each rank folds
its batches into float64 sums (int64 counts), the raw sums of
:meth:`~clas_lens.stats.NeuronStats.state_tensors` are all-reduced with SUM in two flat
buffers, and every rank rebuilds the same :class:`~clas_lens.stats.NeuronStats` with
:meth:`~clas_lens.stats.NeuronStats.from_state`. The only difference from one process is the
order of float64 additions (relative differences ~1e-16). Per-sentence stores are gathered and
put back in corpus id order; metadata equal the single-process ones.

>>> stats_plan({"en": ["aaaa", "b", "cc", "ddd"]}, batch_size=2, world_size=2)
[{'en': [0, 3]}, {'en': [2, 1]}]
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Mapping, Sequence

import torch
import torch.distributed as dist

from clas_lens.batching import context_length
from clas_lens.data.corpus import as_corpus
from clas_lens.distributed.group import (
    DistributedError,
    all_gather_objects,
    broadcast_object,
    comm_device as default_comm_device,
    group_size_rank,
    raise_if_any_failed,
)
from clas_lens.errors import MismatchError
from clas_lens.io import sha256_json
from clas_lens.models import model_info
from clas_lens.sites import neuron_sites
from clas_lens.stats import INT_KINDS, KINDS, NeuronStats, accum_device, collect_stats, corpus_hash, corpus_langs_texts

__all__ = ["batch_plan", "stats_plan", "ShardCorpus", "collect_defaults", "distributed_collect_stats"]


def batch_plan(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """The batches (sentence indices) that one-process ``collect_stats`` runs, in order.

    Mirrors :func:`clas_lens.stats.sentence_batches`: longest text first, ties by index, then
    consecutive chunks. Keeping the same batches keeps the activations bit-identical.

    >>> batch_plan(["a", "abc", "ab"], 2)
    [[1, 2], [0]]
    """
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def stats_plan(
    texts: Mapping[str, Sequence[str]], batch_size: int, world_size: int
) -> list[dict[str, list[int]]]:
    """Per rank, ``{lang: sentence indices}`` to collect: whole batches, dealt round-robin.

    The batches are those of one process (see the module docstring); batch ``k`` of the
    language-major list goes to rank ``k % world_size``. Within a rank, a language's indices
    keep the one-process order, so ``collect_stats`` on them re-forms the same batches.

    >>> plan = stats_plan({"en": ["aaaa", "b", "cc", "ddd"], "de": ["x", "yy", "z"]}, 2, 2)
    >>> plan[0], plan[1]
    ({'en': [0, 3], 'de': [1, 0]}, {'en': [2, 1], 'de': [2]})
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    plan: list[dict[str, list[int]]] = [{} for _ in range(world_size)]
    k = 0
    for lang, t in texts.items():
        for batch in batch_plan(list(t), batch_size):
            plan[k % world_size].setdefault(lang, []).extend(batch)
            k += 1
    return plan


class ShardCorpus:
    """One language, some sentences (keeping their corpus ids): what a rank collects.

    >>> ShardCorpus("de", ["3", "7"], ["a", "b"]).texts("de")
    ['a', 'b']
    """

    def __init__(self, lang: str, ids: list[str], texts: list[str]):
        self.langs = [lang]
        self.ids = ids
        self._texts = texts

    def texts(self, lang: str) -> list[str]:
        return list(self._texts)

    def hash(self) -> str:  # a shard's hash never reaches the result: the full corpus's does
        return sha256_json({"ids": self.ids, "texts": self._texts})


def collect_defaults() -> dict[str, Any]:
    """The keyword arguments of :func:`clas_lens.collect_stats` and their defaults.

    >>> collect_defaults()["per_sentence"]
    False
    """
    return {
        name: p.default
        for name, p in inspect.signature(collect_stats).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _check_kwargs(kw: Mapping[str, Any]) -> dict[str, Any]:
    defaults = collect_defaults()
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        raise TypeError(
            f"distributed_collect_stats() got unexpected keyword argument(s) {unknown}; it takes "
            f"collect_stats's: {sorted(defaults)} (plus group, comm_device)."
        )
    return {**defaults, **kw}


def distributed_collect_stats(
    model,
    corpus,
    *,
    group=None,
    comm_device: str | torch.device | None = None,
    **kw: Any,
):
    """:func:`clas_lens.collect_stats` over the processes of a ``torch.distributed`` group.

    Takes the same keyword arguments as ``collect_stats`` (``site``, ``layers``,
    ``batch_size``, ``threshold``, ``per_sentence``, ``langs`` ...). Every rank must call it
    with the same corpus and arguments and an identical model; every rank returns the same
    :class:`~clas_lens.stats.NeuronStats`, equal to the one-process result up to the order
    of float64 additions (counts exactly). Without an initialised process group it simply
    calls ``collect_stats``.

    Args:
        group: process group (default: the default group).
        comm_device: device of the all-reduced buffers (default: the current CUDA device for
            nccl, the CPU for gloo).

    Raises:
        MismatchError: ranks hold different models, corpora or arguments.
        DistributedError: collecting failed on another rank (the failing rank raises its own
            error); every rank raises, none hangs.

    >>> from clas_lens.testing import tiny_model
    >>> s = distributed_collect_stats(tiny_model("llama"), {"en": ["a cat", "a dog"]})  # one process
    >>> s.langs, s.n_tokens("en") > 0
    (['en'], True)
    """
    world, rank = group_size_rank(group)
    if world == 1:
        _check_kwargs(kw)
        return collect_stats(model, corpus, **kw)

    # Anything that can fail before the collectives is reported to every rank first.
    error: BaseException | None = None
    fingerprint = None
    try:
        opts = _check_kwargs(kw)
        corpus = as_corpus(corpus)
        langs, ids, texts = corpus_langs_texts(corpus, opts["langs"])
        full_hash = corpus_hash(corpus)
        fingerprint = {
            "weights_sha256": model_info(model).weights_sha256,
            "corpus": sha256_json({"ids": ids, "texts": texts}),
            "options": sha256_json({k: repr(v) for k, v in sorted(opts.items()) if k != "progress"}),
        }
    except Exception as e:
        error = e
    raise_if_any_failed(error, group, "preparing the statistics")
    # Every rank must hold the same model, corpus and arguments.
    prints = all_gather_objects(fingerprint, group)
    for key in fingerprint:
        values = [p[key] for p in prints]
        if len(set(values)) > 1:
            bad = [r for r, v in enumerate(values) if v != values[0]]
            raise MismatchError(
                f"Ranks disagree on the {key.replace('_', ' ')} (rank 0 vs ranks {bad}): every rank "
                "must call distributed_collect_stats with the same model, corpus and arguments."
            )

    sites = neuron_sites(model)
    layers = sites.check_layers(opts["layers"])
    n_m, d = len(layers), sites.d_mlp
    mine = stats_plan(texts, int(opts["batch_size"]), world)[rank]
    call = {k: v for k, v in opts.items() if k != "langs"}
    if opts["progress"] is None and rank != 0:
        call["progress"] = False

    local: dict[str, Any] = {}
    error = None
    n_trunc = 0
    try:
        for lang in langs:
            idx = mine.get(lang)
            if not idx:
                continue
            shard = ShardCorpus(lang, [ids[i] for i in idx], [texts[lang][i] for i in idx])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Truncated")  # one warning, below
                s = collect_stats(model, shard, **call)
            n_trunc += s.n_truncated
            local[lang] = s
    except Exception as e:  # reported to every rank first, so that none waits forever
        error = e
    raise_if_any_failed(error, group, "collect_stats")

    # Raw sums of every language in a fixed order: zeros for languages this rank did not see.
    dev = default_comm_device(group, comm_device)
    parts: dict[str, torch.Tensor] = {}
    for lang in langs:
        st = local[lang].state_tensors() if lang in local else {}
        for kind in KINDS:
            shape = () if kind == "count" else (n_m, d)
            dtype = torch.int64 if kind in INT_KINDS else torch.float64
            t = st.get(f"{kind}/{lang}")
            parts[f"{kind}/{lang}"] = torch.zeros(shape, dtype=dtype) if t is None else t
    int_keys = [k for k in parts if k.split("/", 1)[0] in INT_KINDS]
    flt_keys = [k for k in parts if k not in int_keys]
    ints = torch.cat([parts[k].reshape(-1).to(dev, torch.int64) for k in int_keys] + [torch.tensor([n_trunc], device=dev)])
    flts = torch.cat([parts[k].reshape(-1).to(dev, torch.float64) for k in flt_keys])
    dist.all_reduce(ints, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(flts, op=dist.ReduceOp.SUM, group=group)
    state: dict[str, torch.Tensor] = {}
    for keys, buf in ((int_keys, ints), (flt_keys, flts)):
        offset = 0
        for k in keys:
            n = parts[k].numel()
            state[k] = buf[offset : offset + n].reshape(parts[k].shape)
            offset += n
    total_trunc = int(ints[-1])

    # Metadata from rank 0 (it always holds the first batch), made whole-corpus.
    first = next(iter(local.values()), None)
    meta = dict(broadcast_object(first.meta() if first is not None else None, group))
    meta.update(
        langs=list(langs),
        corpus_hashes=[full_hash] if full_hash else [],
        corpus_hash=full_hash,
        n_truncated=total_trunc,
        n_tokens={lang: int(state[f"count/{lang}"]) for lang in langs},
    )
    sentences = None
    if opts["per_sentence"]:
        sentences = _gather_sentences(local, langs, ids, layers, n_m, d, group)
        meta["per_sentence"] = True
        meta["sentence_ids"] = {lang: list(ids) for lang in langs}
    if total_trunc and rank == 0:
        limit = min(opts["max_length"] or context_length(model), context_length(model))
        warnings.warn(
            f"Truncated {total_trunc} of {len(ids) * len(langs)} text(s) to {limit} tokens; statistics "
            "use the truncated text (pass truncation='error' to refuse instead, or raise max_length).",
            stacklevel=2,
        )
    target = accum_device(model)  # where one process would have accumulated
    state = {k: v.to(target) for k, v in state.items()}
    return NeuronStats.from_state(state, meta, sentences=sentences)


def _gather_sentences(local, langs, ids, layers, n_m, d, group) -> dict[str, torch.Tensor]:
    """Every rank's per-sentence means, put back in corpus id order (float16)."""
    payload = {lang: (s.sentence_ids(lang), s.sentence_means(lang)[:, layers].contiguous()) for lang, s in local.items()}
    gathered = all_gather_objects(payload, group)
    sentences = {}
    pos = {sid: i for i, sid in enumerate(ids)}
    for lang in langs:
        out = torch.empty((len(ids), n_m, d), dtype=torch.float16)
        seen = 0
        for part in gathered:
            if lang in part:
                sids, vals = part[lang]
                out[torch.tensor([pos[s] for s in sids], dtype=torch.long)] = vals
                seen += len(sids)
        if seen != len(ids):  # pragma: no cover - guards the plan
            raise DistributedError(f"Gathered {seen} per-sentence rows for {lang!r}, expected {len(ids)}.")
        sentences[lang] = out
    return sentences
