"""Reference implementation shared by the steering tests: plain PyTorch hooks on the HF modules.

The reference edits the plain Hugging Face model (``clas_lens.testing.hf_reference``): a
forward pre-hook on the down projection for the ``post`` site, a forward hook on the MLP that
recomputes ``act_fn(gate_proj(x)) * up_proj(x)`` for the ``act`` site, a forward hook on the
decoder layer for the residual stream. Positions to steer are worked out here from the
attention mask with plain Python loops. ``FakeNeurons`` / ``FakeStats`` mimic NeuronSet /
NeuronStats.
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


def ref_select(mask, pos, positions):
    """Bool [batch, pos]: which of the last ``pos`` positions to steer (python loops)."""
    batch = mask.shape[0]
    win = mask[:, mask.shape[1] - pos :].tolist()
    sel = torch.zeros(batch, pos, dtype=torch.bool)
    for b in range(batch):
        real = [i for i, m in enumerate(win[b]) if m]
        if positions == "all":
            for i in real:
                sel[b, i] = True
        elif real:
            sel[b, real[-1]] = True
    return sel


class RefHooks:
    """Plain torch hooks on the HF model. ``state['mask']``: the current full attention mask
    (None: every position of each forward is real)."""

    def __init__(self, ref, edits):
        self.ref, self.edits, self.handles = ref, edits, []
        self.state = {"mask": None}

    def _sel(self, h, positions):
        mask = self.state["mask"]
        if mask is None:
            mask = torch.ones(h.shape[0], h.shape[1], dtype=torch.bool)
        return ref_select(mask.bool(), h.shape[1], positions).unsqueeze(-1)

    def __enter__(self):
        blocks = ref_blocks(self.ref)
        for kind, layer, fn, positions in self.edits:
            blk = blocks[layer]
            if kind == "post":
                mod = blk.mlp.c_proj if hasattr(blk.mlp, "c_proj") else blk.mlp.down_proj

                def pre(m, args, fn=fn, positions=positions):
                    h = args[0]
                    return (torch.where(self._sel(h, positions), fn(h), h),) + tuple(args[1:])

                self.handles.append(mod.register_forward_pre_hook(pre))
            elif kind == "act":
                mlp = blk.mlp
                if hasattr(mlp, "c_proj"):  # GPT-2: act == post
                    def pre(m, args, fn=fn, positions=positions):
                        h = args[0]
                        return (torch.where(self._sel(h, positions), fn(h), h),)

                    self.handles.append(mlp.c_proj.register_forward_pre_hook(pre))
                else:
                    def post(m, args, out, fn=fn, positions=positions, mlp=mlp):
                        x = args[0]
                        act = mlp.act_fn(mlp.gate_proj(x))
                        act = torch.where(self._sel(act, positions), fn(act), act)
                        return mlp.down_proj(act * mlp.up_proj(x))

                    self.handles.append(mlp.register_forward_hook(post))
            elif kind == "resid":
                def post(m, args, out, fn=fn, positions=positions):
                    h = out[0] if isinstance(out, tuple) else out
                    new = torch.where(self._sel(h, positions), fn(h), h)
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
    with RefHooks(ref, edits) as rh, torch.no_grad():
        rh.state["mask"] = enc.attention_mask.bool()
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


def check_against_reference(model, ivs, edits, texts=TEXTS):
    ref = ref_of(model)
    base = None
    for side in ("left", "right"):
        enc = encode(model, texts, padding_side=side)
        got = engine_logits(model, enc, *ivs)
        exp = ref_logits(ref, enc, edits)
        assert_close_on_real(got, exp, enc.attention_mask, side)
        with torch.no_grad():
            base = model(enc.input_ids, attention_mask=enc.attention_mask)
        assert (got - base)[enc.attention_mask.bool()].abs().max() > 1e-3, "the intervention must change logits"
    for t in texts[:2]:
        enc = encode(model, [t])
        assert_close_on_real(engine_logits(model, enc, *ivs), ref_logits(ref, enc, edits), enc.attention_mask, t)


def hf_greedy(ref, tok, prompt, n, use_cache):
    enc = tok([prompt], return_tensors="pt")
    out = ref.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id, use_cache=use_cache)
    new = out[0, enc.input_ids.shape[1]:].tolist()
    return new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
