"""Sweep speed: prefix reuse (clas_lens.prefix) and the cached option scoring, on the embedded model.

Prints ``name: value`` lines measured in one run (``--threads 1`` by default); ratios are the
numbers to compare across machines. On a CPU device times are the process's CPU time (other
processes' load on a shared machine does not count), on an accelerator wall time. Steering: CLAS on the last 4 layers (``--layers``) with
random neuron masks (seeded; the masks do not change the amount of work).

* ``sweep_cell_over_full_forward_cell``: one steered sweep cell's forward work with prefix reuse
  and logits only where scored (the cell's ``predict`` inside ``reuse_prefix``, after the
  unsteered cell of the same (task, language) stored the prefix), divided by the same cell as a
  full forward: every block runs and every position the model reads is unembedded (the path
  before issue 16; for choice tasks ``old_score_items`` below, for ``lm`` ``old_sentence_nll``;
  for generation the steered ``predict`` without a reuse scope). Median
  of paired ratios, runs interleaved (ABBA). One line per task (``..._<task>``); the unsuffixed
  line is the first task of ``--tasks``.
* ``sweep_cell_over_no_reuse_cell``: the same cell over the same code without a reuse scope
  (every block runs, logits still only where scored): what prefix reuse alone saves.
* ``batch_doubling_time_ratio``: a steered forward (logits at the last position) of the first
  task's prompts stacked twice, over twice the time of the prompts once: below 1 when a bigger
  batch uses the device better, which is what batching several conditions into one pass would
  buy; about 1 on a CPU thread, where the work grows with the batch.
* ``reuse_lower_bound``: the ratio prefix reuse could reach if only the blocks from the first
  edited layer on and the scored unembeddings cost anything (parameter counts x tokens): the
  unembedding of a 262k vocabulary at every scored position is a floor that no reuse removes.
  A model, not a hard limit: the chunked unembedding (clas_lens.unembed) does more multiply-adds
  per second than the blocks, so a cell dominated by it (lm) can measure below it.
* ``unsteered_cell_store_over_plain``: the unsteered cell that stores the prefix, over the
  same cell without a scope (the price of storing).
* ``scoring_tokens_per_s_ratio``: scored option tokens per second of a steered choice cell
  with reuse and logits only at predicting positions, over the scoring code before issue 16
  (prompt pass + option pass on the KV cache for every option, every option position
  unembedded, batches of ``--batch-size`` options; reproduced below as ``old_score_items``),
  over all choice tasks of ``--tasks``; ``scoring_no_reuse_tokens_per_s_ratio``: the same
  without reuse.
* ``--sweep``: a real ``run_sweep`` (first task, en + ``--lang``; unsteered, CLAS and
  deactivation) with and without reuse: ``sweep_time_ratio`` (with / without),
  ``sweep_max_abs_diff`` of every per-item value, ``sweep_predictions_equal``.
(``demo_cold_minutes``, the cold demo run, is printed by ``bench_demo.py``.)

Usage: ``python benchmarks/bench_sweep.py [--model default] [--device cpu] [--dtype float32]
[--tasks nli,cloze,lm] [--limit 8] [--sweep]``
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

#: The clock of every timing but the demo's: the process's CPU time on a CPU device (robust
#: on a shared machine: other processes' load does not count), wall time on an accelerator.
CLOCK = time.perf_counter


class _Item:
    """A prompt's tokens and its options' continuations (the boundary as in clas_lens.scoring)."""

    def __init__(self, tok, prompt, options):
        p = tok(prompt)["input_ids"]
        joints = [tok(prompt + o)["input_ids"] for o in options]
        shared = min(next((k for k, (a, b) in enumerate(zip(j, p)) if a != b), len(p)) for j in joints)
        shared = max(shared, 1)
        self.prefix = p[:shared]
        self.conts = [j[shared:] for j in joints]
        self.n_scored = [len(j) - len(p) for j in joints]


def old_sentence_nll(model, texts, batch_size):
    """The lm cell before issue 16: per-text mean NLL from the logits of every position of the
    padded batch (every block runs, every position is unembedded, padding included)."""
    from clas_lens.batching import encode
    from clas_lens.lm_nll import target_mask

    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
    out = torch.zeros(len(texts), dtype=torch.float64)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = encode(model, [texts[i] for i in idx], padding_side="right")
        pos = (enc.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            logits = model(enc.input_ids, attention_mask=enc.attention_mask, position_ids=pos).float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, enc.input_ids[:, 1:, None]).squeeze(-1)
        tgt = target_mask(enc)[:, 1:]
        nll = -(lp * tgt).sum(-1) / tgt.sum(-1).clamp(min=1)
        out[idx] = nll.double().cpu()
    return out


def old_score_items(model, items):
    """The option scoring before issue 16 (kept here as the reference of the speed ratio)."""
    dev = next(model.parameters()).device
    pad = model.tokenizer.pad_token_id or 0
    p_width = max(len(it.prefix) for it in items)
    p_ids = torch.full((len(items), p_width), pad, dtype=torch.long, device=dev)
    p_mask = torch.zeros_like(p_ids)
    for i, it in enumerate(items):
        p_ids[i, p_width - len(it.prefix):] = torch.tensor(it.prefix, device=dev)
        p_mask[i, p_width - len(it.prefix):] = 1
    p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
    first_logits, cache = model(p_ids, attention_mask=p_mask, position_ids=p_pos, use_cache=True,
                                return_type="logits_and_cache", logits_to_keep=1)
    first_lp = torch.log_softmax(first_logits[:, -1, :].float(), dim=-1)
    owner = torch.tensor([i for i, it in enumerate(items) for _ in it.conts], device=dev)
    conts = [c for it in items for c in it.conts]
    c_width = max(len(c) for c in conts)
    c_ids = torch.full((len(conts), c_width), pad, dtype=torch.long, device=dev)
    c_mask = torch.zeros_like(c_ids)
    for r, c in enumerate(conts):
        c_ids[r, : len(c)] = torch.tensor(c, device=dev)
        c_mask[r, : len(c)] = 1
    cache.batch_select_indices(owner)
    mask = torch.cat([p_mask[owner], c_mask], dim=1)
    c_pos = p_mask.sum(-1)[owner].unsqueeze(1) + torch.arange(c_width, device=dev).unsqueeze(0)
    logits = model(c_ids, attention_mask=mask, position_ids=c_pos, past_key_values=cache, use_cache=True)
    lp = torch.log_softmax(logits.float(), dim=-1)
    tok = torch.empty((len(conts), c_width), dtype=lp.dtype, device=dev)
    tok[:, 0] = first_lp[owner].gather(-1, c_ids[:, :1]).squeeze(-1)
    if c_width > 1:
        tok[:, 1:] = lp[:, :-1, :].gather(-1, c_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return tok.sum(-1)


@torch.no_grad()
def old_score_choices(model, per_item, batch_size):
    batches, current, n = [], [], 0
    for k, it in enumerate(per_item):
        if current and n + len(it.conts) > batch_size:
            batches.append(current)
            current, n = [], 0
        current.append(k)
        n += len(it.conts)
    batches.append(current)
    for b in batches:
        old_score_items(model, [per_item[k] for k in b]).cpu()


def _cell_tokens(model, task, lang, limit) -> tuple[int, int]:
    """(tokens a cell runs through the blocks, positions it unembeds) with logits only where
    scored: a choice item's prompt and its options' tokens, scored at the predicting positions
    (one-token options: the prompt's last position only); an lm item's every token."""
    tok = model.tokenizer
    toks = scored = 0
    for it in task.items(lang)[:limit]:
        if task.mode == "choice":
            p = _Item(tok, it.prompt, it.options)
            toks += len(p.prefix) + sum(len(c) for c in p.conts)
            scored += 1 + sum(max(0, len(c) - 1) for c in p.conts)
        elif task.mode == "lm":
            n = len(tok(it.prompt)["input_ids"])
            toks += n
            scored += n - 1
        else:  # generation: decode steps run every block whatever the reuse; no bound printed
            return 0, 0
    return toks, scored


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _paired(fns: dict, repeats: int, device) -> tuple[dict[str, float], float]:
    """Median seconds of each of two functions and the median of per-repeat ratios (first /
    second), run interleaved (ABBA) so that load drift hits both alike. A function may return
    its own measured seconds as a float (it then times only part of its work). ``CLOCK``."""
    names = list(fns)
    times = {k: [] for k in names}
    for i in range(repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            _sync(device)
            t0 = CLOCK()
            own = fns[name]()
            _sync(device)
            times[name].append(own if isinstance(own, float) else CLOCK() - t0)
    ratio = statistics.median(a / b for a, b in zip(times[names[0]], times[names[1]]))
    return {k: statistics.median(v) for k, v in times.items()}, ratio


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="model name or folder (default: the embedded Gemma-3-270M)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default="nli,cloze,lm", help="comma-separated task names; the first is the headline")
    ap.add_argument("--lang", default="de")
    ap.add_argument("--limit", type=int, default=8, help="items per cell")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--layers", default="last:4", help="the steered layers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prefix", default="", help="name prefix of the printed lines")
    ap.add_argument("--sweep", action="store_true", help="also time a real run_sweep with and without reuse")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    P = args.prefix
    global CLOCK
    CLOCK = time.process_time if device.type == "cpu" else time.perf_counter

    import clas_lens
    from clas_lens.data.tasks import load_task
    from clas_lens.evaluation import predict
    from clas_lens.prefix import best_start, first_layer_of, reuse_prefix
    from clas_lens.scoring import score_choices
    from clas_lens.sites import neuron_sites
    from clas_lens.steering import ClasSteering, Deactivate, MaskSet, steer

    model = clas_lens.load_model(args.model, device=device, dtype=dtype)
    n = model.cfg.n_layers
    langs = ["en", args.lang] if args.lang != "en" else ["en"]
    shape = neuron_sites(model).shape
    g = torch.Generator().manual_seed(0)
    ns = MaskSet(langs=langs, specific={l: torch.rand(*shape, generator=g) < 0.02 for l in langs},
                 categories={"partial_shared": torch.rand(*shape, generator=g) < 0.05})
    clas = ClasSteering(ns, args.lang, layers=args.layers, beta=0.5, gamma=0.2)
    start = best_start([n, first_layer_of([h for h, _ in clas.hooks(model)], n)], n)
    print(f"{P}sweep_clock: {'process CPU time' if CLOCK is time.process_time else 'wall time'}")
    print(f"{P}sweep_model_layers: {n}")
    print(f"{P}sweep_reuse_start: {start}")

    tasks = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.tasks.split(","):
            tasks[name] = load_task(name, langs=langs)
    kw = dict(limit=args.limit, batch_size=args.batch_size)

    def steered_cell(task):
        with steer(model, clas):
            predict(model, task, args.lang, **kw)

    def reuse_cell(task):
        with reuse_prefix(model, start):
            predict(model, task, args.lang, **kw)  # the unsteered cell stores the prefix
            _sync(device)
            t0 = CLOCK()
            steered_cell(task)
            _sync(device)
            return CLOCK() - t0

    def store_cell(task):
        with reuse_prefix(model, start):
            predict(model, task, args.lang, **kw)

    def full_forward_cell(task):
        """The cell before issue 16: every block, every read position unembedded."""
        if task.mode == "lm":
            with steer(model, clas):
                old_sentence_nll(model, [it.prompt for it in task.items(args.lang)[: args.limit]], args.batch_size)
            return
        if task.mode != "choice":
            return steered_cell(task)
        items = [_Item(model.tokenizer, it.prompt, it.options) for it in task.items(args.lang)[: args.limit]]
        with steer(model, clas):
            old_score_choices(model, items, args.batch_size)

    d_model, vocab = model.cfg.d_model, model.cfg.d_vocab
    block_params = sum(p.numel() for b in model.blocks for p in b.parameters()) / n
    for i, (name, task) in enumerate(tasks.items()):
        steered_cell(task)  # warm-up
        full_forward_cell(task)
        secs, ratio = _paired({"reuse": lambda: reuse_cell(task), "full": lambda: full_forward_cell(task)},
                              args.repeats, device)
        secs_nr, ratio_nr = _paired({"reuse": lambda: reuse_cell(task), "no_reuse": lambda: steered_cell(task)},
                                    args.repeats, device)
        _, store = _paired({"store": lambda: store_cell(task), "plain": lambda: predict(model, task, args.lang, **kw)},
                           max(1, args.repeats - 1), device)
        toks, scored = _cell_tokens(model, task, args.lang, args.limit)
        bound = (((n - start) * block_params * toks + d_model * vocab * scored)
                 / (n * block_params * toks + d_model * vocab * scored) if toks else float("nan"))
        if i == 0:
            print(f"{P}sweep_cell_over_full_forward_cell: {ratio:.3f}")
        print(f"{P}sweep_cell_over_full_forward_cell_{name}: {ratio:.3f}")
        print(f"{P}sweep_cell_over_no_reuse_cell_{name}: {ratio_nr:.3f}")
        print(f"{P}reuse_lower_bound_{name}: {bound:.3f} ({toks} tokens, {scored} scored positions)")
        print(f"{P}sweep_cell_s_{name}: reuse {secs['reuse']:.2f} no_reuse {secs_nr['no_reuse']:.2f} full {secs['full']:.2f}")
        print(f"{P}unsteered_cell_store_over_plain_{name}: {store:.3f}")
        if task.mode == "lm":  # the comparator computes the same numbers
            from clas_lens.lm_nll import sentence_nll
            texts = [it.prompt for it in task.items(args.lang)[: args.limit]]
            with steer(model, clas):
                diff = (old_sentence_nll(model, texts, args.batch_size) - sentence_nll(model, texts)).abs().max()
            print(f"{P}full_forward_cell_max_abs_diff_{name}: {float(diff):.2e}")

    # what batching conditions could buy on this device: a batch twice as big, stacked
    from clas_lens.batching import encode

    first_task = next(iter(tasks.values()))
    prompts = [it.prompt for it in first_task.items(args.lang)[: args.limit]]
    enc1 = encode(model, prompts, padding_side="left")
    enc2 = encode(model, prompts + prompts, padding_side="left")

    def forward(enc):
        with torch.no_grad(), steer(model, clas):
            model(enc.input_ids, attention_mask=enc.attention_mask, logits_to_keep=1)

    forward(enc2)
    secs, _ = _paired({"double": lambda: forward(enc2), "single": lambda: forward(enc1)}, args.repeats, device)
    print(f"{P}batch_doubling_time_ratio: {secs['double'] / (2 * secs['single']):.3f}")

    # scored option tokens per second: new path (reuse + logits at predicting positions) vs old path
    choice = [t for t in tasks.values() if t.mode == "choice"]
    if choice:
        per = [[_Item(model.tokenizer, it.prompt, it.options) for it in t.items(args.lang)[: args.limit]] for t in choice]
        pairs = [[(it.prompt, it.options) for it in t.items(args.lang)[: args.limit]] for t in choice]
        n_tok = sum(sum(it.n_scored) for p in per for it in p)

        def new_scoring(reuse: bool):
            total = 0.0
            for items in pairs:
                with reuse_prefix(model, start) if reuse else contextlib.nullcontext():
                    if reuse:
                        score_choices(model, items, batch_size=args.batch_size)
                    with steer(model, clas):
                        _sync(device)
                        t0 = CLOCK()
                        score_choices(model, items, batch_size=args.batch_size)
                        _sync(device)
                        total += CLOCK() - t0
            return total

        def old_scoring():  # from the same (prompt, options) pairs: tokenizing is timed in both
            with steer(model, clas):
                for items in pairs:
                    old_score_choices(model, [_Item(model.tokenizer, p, o) for p, o in items], args.batch_size)

        old_scoring()
        secs, ratio = _paired({"old": old_scoring, "new": lambda: new_scoring(True)}, args.repeats, device)
        _, ratio_plain = _paired({"old": old_scoring, "new": lambda: new_scoring(False)}, max(1, args.repeats - 1), device)
        print(f"{P}scoring_tokens_per_s_ratio: {ratio:.2f}")
        print(f"{P}scoring_no_reuse_tokens_per_s_ratio: {ratio_plain:.2f}")
        print(f"{P}scoring_tokens_per_s: new {n_tok / secs['new']:.1f} old {n_tok / secs['old']:.1f}")

    if args.sweep:
        from clas_lens.io import read_jsonl
        from clas_lens.sweep import SweepGrid, run_sweep

        first = next(iter(tasks))
        grid = SweepGrid(langs=[args.lang], tasks=[first], methods=["clas", "deactivate"], betas=[0.2, 0.5],
                         gammas=[0.2], layers=[args.layers], limit=args.limit, n_boot=50, batch_size=args.batch_size)
        times_, items = [], []
        with tempfile.TemporaryDirectory(prefix="clas_lens_bench_sweep_") as tmp:
            for reuse in (True, False):
                run = Path(tmp) / str(reuse)
                t0 = CLOCK()
                run_sweep(model, run, grid, neurons=ns, tasks={first: tasks[first]}, progress=False, reuse=reuse)
                times_.append(CLOCK() - t0)
                items.append({r["key"]: r["items"] for p in (run / "sweep").glob("cells*.jsonl") for r in read_jsonl(p)})
        diff, same = 0.0, True
        for key, a in items[0].items():
            b = items[1][key]
            for m in set(a) - {"item_id"}:
                diff = max(diff, max(abs(x - y) for x, y in zip(a[m], b[m])))
                if m in ("accuracy", "exact_match"):
                    same &= a[m] == b[m]
        print(f"{P}sweep_cells: {len(grid.cells())}")
        print(f"{P}sweep_time_ratio: {times_[0] / times_[1]:.3f}")
        print(f"{P}sweep_s: reuse {times_[0]:.1f} full {times_[1]:.1f}")
        print(f"{P}sweep_max_abs_diff: {diff:.2e}")
        print(f"{P}sweep_predictions_equal: {same}")


if __name__ == "__main__":
    main()
