"""Reference implementation shared by the steering tests: plain PyTorch hooks on the HF modules.

The reference edits the plain Hugging Face model (``clas_lens.testing.hf_reference``): a
forward pre-hook on the down projection for the ``post`` site, a forward hook on the MLP that
recomputes ``act_fn(gate_proj(x)) * up_proj(x)`` for the ``act`` site, a forward hook on the
decoder layer for the residual stream. Positions to steer are worked out here from the
attention mask with plain Python loops. ``FakeNeurons`` / ``FakeStats`` mimic NeuronSet /
NeuronStats.

BOS: an edit ``(kind, layer, fn, positions[, edit_bos])`` leaves each row's BOS position alone
unless ``edit_bos`` is True (default False, the default of the neuron edits since the option
exists; DiffMean's residual edits pass True). A forward pre-hook on the HF model records the
input ids and the attention mask of every forward (``generate`` included); the BOS position
of a row is its first attended position when the token there is ``config.bos_token_id`` and
it lies among this forward's ids (a KV-cached step's ids are only the new tokens).
"""
from __future__ import annotations

import torch

from clas_lens.batching import encode
from clas_lens.steering import steer
from clas_lens.testing import hf_reference

TEXTS = ["the cat sat on the mat", "Привет мир", "1 2 3 4 5 6 7", "Der Hund"]
PROMPTS = ["the cat", "Привет мир, как", "1 2 3 4 5", "Monday Tuesday"]
LANGS = ["en", "de", "ru"]
TOL = 1e-5

_REFS: dict[str, object] = {}


def ref_of(model):
    key = str(id(model))
    if key not in _REFS:
        _REFS[key] = hf_reference(model)
    return _REFS[key]


# ----------------------------------------------------------------------------- fakes
class FakeNeurons:
    """A duck-typed NeuronSet: random disjoint categories, seeded by the shape."""

    def __init__(self, shape, langs=LANGS, seed=0, p_spec=0.15, p_shared=0.3, model_info=None):
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(shape, generator=g)
        self.langs = list(langs)
        self.site = "post"
        self.method = "fake"
        self.params = {"seed": seed}
        self.model_info = model_info
        self._partial = u < p_shared
        self._all = (u >= p_shared) & (u < p_shared + 0.1)
        rest = u >= p_shared + 0.1
        self._spec = {}
        for i, lang in enumerate(self.langs):
            lo = p_shared + 0.1 + i * p_spec
            self._spec[lang] = rest & (u >= lo) & (u < lo + p_spec)

    def mask(self, category, lang=None):
        if category == "specific":
            if lang is None:
                out = torch.zeros_like(self._partial)
                for m in self._spec.values():
                    out |= m
                return out
            return self._spec[lang].clone()
        return {"partial_shared": self._partial, "all_shared": self._all}[category].clone()


class FakeStats:
    def __init__(self, shape, langs=LANGS, site="post", seed=1, model_info=None):
        g = torch.Generator().manual_seed(seed)
        self.langs = list(langs)
        self.site = site
        self.model_info = model_info
        self._mean = {l: torch.randn(shape, generator=g, dtype=torch.float64) for l in langs}

    def mean(self, lang):
        return self._mean[lang].clone()


# ----------------------------------------------------------------------------- reference
def ref_blocks(ref):
    return list(ref.transformer.h) if hasattr(ref, "transformer") else list(ref.model.layers)


def ref_select(mask, pos, positions, bos=None):
    """Bool [batch, pos]: which of the last ``pos`` positions to steer (python loops).

    ``bos``: None, or one full-length BOS index (or None) per row, left out of the selection."""
    batch = mask.shape[0]
    offset = mask.shape[1] - pos
    win = mask[:, offset:].tolist()
    sel = torch.zeros(batch, pos, dtype=torch.bool)
    for b in range(batch):
        real = [i for i, m in enumerate(win[b]) if m]
        chosen = real if positions == "all" else real[-1:]
        for i in chosen:
            if bos is not None and bos[b] is not None and bos[b] == i + offset:
                continue
            sel[b, i] = True
    return sel


def ref_bos(ids, mask, bos_id):
    """Per row: the full-length index of its BOS token, or None (python loops)."""
    ids, mask = ids.tolist(), mask.tolist()
    out = []
    for b in range(len(mask)):
        real = [i for i, m in enumerate(mask[b]) if m]
        offset = len(mask[b]) - len(ids[b])
        first = real[0] if real else None
        if first is not None and first >= offset and ids[b][first - offset] == bos_id:
            out.append(first)
        else:
            out.append(None)
    return out


class RefHooks:
    """Plain torch hooks on the HF model. ``state['mask']``: the current full attention mask
    (None: every position of each forward is real)."""

    def __init__(self, ref, edits):
        self.ref, self.edits, self.handles = ref, edits, []
        self.state = {"mask": None, "bos": None}

    def _sel(self, h, positions, edit_bos=False):
        mask = self.state["mask"]
        if mask is None:
            mask = torch.ones(h.shape[0], h.shape[1], dtype=torch.bool)
        bos = None if edit_bos else self.state["bos"]
        return ref_select(mask.bool(), h.shape[1], positions, bos).unsqueeze(-1)

    def _record(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        if mask is None:
            mask = torch.ones(ids.shape, dtype=torch.long)
        self.state["mask"] = mask.bool()
        self.state["bos"] = ref_bos(ids, mask, self.ref.config.bos_token_id)

    def __enter__(self):
        blocks = ref_blocks(self.ref)
        self.handles.append(self.ref.register_forward_pre_hook(self._record, with_kwargs=True))
        for edit in self.edits:
            kind, layer, fn, positions = edit[:4]
            edit_bos = edit[4] if len(edit) > 4 else False
            blk = blocks[layer]
            if kind == "post":
                mod = blk.mlp.c_proj if hasattr(blk.mlp, "c_proj") else blk.mlp.down_proj

                def pre(m, args, fn=fn, positions=positions, eb=edit_bos):
                    h = args[0]
                    return (torch.where(self._sel(h, positions, eb), fn(h), h),) + tuple(args[1:])

                self.handles.append(mod.register_forward_pre_hook(pre))
            elif kind == "act":
                mlp = blk.mlp
                if hasattr(mlp, "c_proj"):  # GPT-2: act == post
                    def pre(m, args, fn=fn, positions=positions, eb=edit_bos):
                        h = args[0]
                        return (torch.where(self._sel(h, positions, eb), fn(h), h),)

                    self.handles.append(mlp.c_proj.register_forward_pre_hook(pre))
                else:
                    def post(m, args, out, fn=fn, positions=positions, mlp=mlp, eb=edit_bos):
                        x = args[0]
                        act = mlp.act_fn(mlp.gate_proj(x))
                        act = torch.where(self._sel(act, positions, eb), fn(act), act)
                        return mlp.down_proj(act * mlp.up_proj(x))

                    self.handles.append(mlp.register_forward_hook(post))
            elif kind == "resid":
                def post(m, args, out, fn=fn, positions=positions, eb=edit_bos):
                    h = out[0] if isinstance(out, tuple) else out
                    new = torch.where(self._sel(h, positions, eb), fn(h), h)
                    return (new,) + tuple(out[1:]) if isinstance(out, tuple) else new

                self.handles.append(blk.register_forward_hook(post))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def clas_ref(shared, spec, alpha, beta, gamma):
    def fn(h):
        ms, mp = shared.float(), spec.float()
        return (1 - alpha) * h + alpha * (h * (1 + beta * ms) * (1 - gamma * mp))

    return fn


def set_ref(mask, values, strength):
    def fn(h):
        return torch.where(mask, (1 - strength) * h + strength * values.float(), h)

    return fn


def add_ref(mask, amount, strength):
    def fn(h):
        return h + strength * mask.float() * amount

    return fn


def position_ids(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def ref_logits(ref, enc, edits):
    with RefHooks(ref, edits), torch.no_grad():
        return ref(
            input_ids=enc.input_ids, attention_mask=enc.attention_mask, position_ids=position_ids(enc.attention_mask)
        ).logits


def engine_logits(model, enc, *ivs):
    with torch.no_grad(), steer(model, *ivs):
        return model(enc.input_ids, attention_mask=enc.attention_mask)


def assert_close_on_real(a, b, mask, what=""):
    m = mask.bool()
    diff = (a[m] - b[m]).abs().max().item()
    assert diff < TOL, (what, diff)


def check_against_reference(model, ivs, edits, texts=TEXTS, changes=True):
    """Engine vs reference logits (left, right, no padding); ``changes``: the edit must move them."""
    ref = ref_of(model)
    base = None
    for side in ("left", "right"):
        enc = encode(model, texts, padding_side=side)
        got = engine_logits(model, enc, *ivs)
        exp = ref_logits(ref, enc, edits)
        assert_close_on_real(got, exp, enc.attention_mask, side)
        with torch.no_grad():
            base = model(enc.input_ids, attention_mask=enc.attention_mask)
        if changes:
            assert (got - base)[enc.attention_mask.bool()].abs().max() > 1e-3, "the intervention must change logits"
    for t in texts[:2]:
        enc = encode(model, [t])
        assert_close_on_real(engine_logits(model, enc, *ivs), ref_logits(ref, enc, edits), enc.attention_mask, t)


def hf_greedy(ref, tok, prompt, n, use_cache):
    enc = tok([prompt], return_tensors="pt")
    out = ref.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id, use_cache=use_cache)
    new = out[0, enc.input_ids.shape[1]:].tolist()
    return new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
