"""Steering equals an independent implementation: plain PyTorch hooks on the HF modules.

The reference edits the plain Hugging Face model (``clas_lens.testing.hf_reference``): a
forward pre-hook on the down projection for the ``post`` site, a forward hook on the MLP that
recomputes ``act_fn(gate_proj(x)) * up_proj(x)`` for the ``act`` site, a forward hook on the
decoder layer for the residual stream. Positions to steer are worked out here from the
attention mask with plain Python loops.
"""
from __future__ import annotations

import json

import pytest
import torch

from clas_lens.batching import encode
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.generation import generate_tokens
from clas_lens.sites import neuron_sites
from clas_lens.steering import (
    AddNeurons,
    ClasSteering,
    Deactivate,
    DiffMeanSteering,
    SetNeurons,
    bind_lang,
    interventions_from_dicts,
    interventions_to_dicts,
    residual_means,
    steer,
)
from clas_lens.testing import hf_reference

TEXTS = ["the cat sat on the mat", "Привет мир", "1 2 3 4 5 6 7", "Der Hund"]
PROMPTS = ["the cat", "Привет мир, как", "1 2 3 4 5", "Monday Tuesday"]
LANGS = ["en", "de", "ru"]
TOL = 1e-5

_REFS: dict[str, object] = {}


def _arch(model) -> str:
    return "gpt2" if not neuron_sites(model).gated else str(model.cfg.d_mlp)


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
def _ref_blocks(ref):
    return list(ref.transformer.h) if hasattr(ref, "transformer") else list(ref.model.layers)


def _ref_select(mask, pos, positions):
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
        return _ref_select(mask.bool(), h.shape[1], positions).unsqueeze(-1)

    def __enter__(self):
        blocks = _ref_blocks(self.ref)
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


def set_ref(mask, values, alpha):
    def fn(h):
        return torch.where(mask, (1 - alpha) * h + alpha * values.float(), h)

    return fn


def add_ref(mask, amount, scale):
    def fn(h):
        return h + scale * mask.float() * amount

    return fn


def _positions(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def ref_logits(ref, enc, edits):
    with RefHooks(ref, edits) as rh, torch.no_grad():
        rh.state["mask"] = enc.attention_mask.bool()
        return ref(
            input_ids=enc.input_ids, attention_mask=enc.attention_mask, position_ids=_positions(enc.attention_mask)
        ).logits


def engine_logits(model, enc, *ivs):
    with torch.no_grad(), steer(model, *ivs):
        return model(enc.input_ids, attention_mask=enc.attention_mask)


def assert_close_on_real(a, b, mask, what=""):
    m = mask.bool()
    diff = (a[m] - b[m]).abs().max().item()
    assert diff < TOL, (what, diff)


def _check_against_reference(model, ivs, edits, texts=TEXTS):
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


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("site", ["post", "act"])
@pytest.mark.parametrize("positions", ["all", "last"])
def test_clas_matches_reference(tiny, site, positions):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    iv = ClasSteering(ns, "de", layers="last:1", alpha=0.7, beta=1.5, gamma=0.9, positions=positions, site=site)
    L = shape[0] - 1
    edits = [(site, L, clas_ref(ns.mask("partial_shared")[L], ns.mask("specific", "de")[L], 0.7, 1.5, 0.9), positions)]
    _check_against_reference(tiny, [iv], edits)


@pytest.mark.parametrize("shared,specific", [("all", "target"), ("both", "all")])
def test_clas_mask_options_match_reference(tiny_llama, shared, specific):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    iv = ClasSteering(ns, "ru", layers=[0, 1], beta=2.0, gamma=0.8, shared=shared, specific=specific)
    sh = {"all": ns.mask("all_shared"), "both": ns.mask("all_shared") | ns.mask("partial_shared")}[shared]
    sp = ns.mask("specific", "ru" if specific == "target" else None)
    edits = [("post", l, clas_ref(sh[l], sp[l], 1.0, 2.0, 0.8), "all") for l in (0, 1)]
    _check_against_reference(tiny_llama, [iv], edits)


@pytest.mark.parametrize("kind", ["set", "deactivate", "add", "int_mu"])
@pytest.mark.parametrize("site", ["post", "act"])
def test_neuron_edits_match_reference(tiny, kind, site):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape, p_spec=0.25)
    mask = ns.mask("specific", "en")
    g = torch.Generator().manual_seed(3)
    values = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if kind == "set":
        iv = SetNeurons(mask, value=values, alpha=0.6, site=site)
        fns = [set_ref(mask[l], values[l], 0.6) for l in range(shape[0])]
    elif kind == "int_mu":
        stats = FakeStats(shape, site=site)
        iv = SetNeurons.int_mu(ns, stats, "en")
        assert iv.site == site
        fns = [set_ref(mask[l], stats.mean("en")[l], 1.0) for l in range(shape[0])]
    elif kind == "deactivate":
        iv = Deactivate(mask, site=site)
        fns = [set_ref(mask[l], torch.zeros(shape[1]), 1.0) for l in range(shape[0])]
    else:
        iv = AddNeurons(mask, values.float(), scale=0.5, site=site)
        fns = [add_ref(mask[l], values[l].float(), 0.5) for l in range(shape[0])]
    edits = [(site, l, fns[l], "all") for l in range(shape[0])]
    _check_against_reference(tiny, [iv], edits)


def test_quantile_values(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    g = torch.Generator().manual_seed(5)
    q = {l: torch.randn((3,) + shape, generator=g, dtype=torch.float64) for l in LANGS}
    iv = SetNeurons(ns, value="p90", quantiles=q, quantile_levels=["median", 0.75, "p90"], target_lang="de")
    mask = ns.mask("specific", "de")
    edits = [("post", l, set_ref(mask[l], q["de"][2][l], 1.0), "all") for l in range(2)]
    _check_against_reference(tiny_llama, [iv], edits)
    med = SetNeurons(ns, value="median", quantiles=q, quantile_levels=[0.5, 0.75, 0.9])
    assert torch.equal(med.for_lang("ru").values["ru"], q["ru"][0])
    with pytest.raises(DataValidationError, match="quantile_levels"):
        SetNeurons(ns, value="median", quantiles=q)
    with pytest.raises(DataValidationError, match="not collected"):
        SetNeurons(ns, value="p95", quantiles=q, quantile_levels=[0.5, 0.75, 0.9])


def test_diffmean_matches_reference(tiny):
    corpus = {"en": ["the cat sat on the mat", "one two three"], "de": ["Der Hund schläft im Garten", "eins zwei"]}
    rm = residual_means(tiny, corpus, layers=None)
    iv = DiffMeanSteering("en", "de", layers=[0], scale=6.0, means=rm)
    d = rm.vector("de", 0) - rm.vector("en", 0)
    delta = (6.0 * d / d.norm()).float()
    _check_against_reference(tiny, [iv], [("resid", 0, lambda h: h + delta, "all")])
    iv_last = DiffMeanSteering("en", "de", layers=[0], scale=6.0, means=rm, positions="last")
    _check_against_reference(tiny, [iv_last], [("resid", 0, lambda h: h + delta, "last")])


def test_residual_means_equal_hf_hidden_states(tiny_llama):
    corpus = {"en": ["the cat sat", "a b"], "ru": ["Привет мир как дела"]}
    rm = residual_means(tiny_llama, corpus, layers=[0], batch_size=1)
    ref = ref_of(tiny_llama)
    for lang, texts in corpus.items():
        acc, n = torch.zeros(32, dtype=torch.float64), 0
        for t in texts:
            ids = tiny_llama.tokenizer(t, return_tensors="pt").input_ids
            with torch.no_grad():
                hs = ref(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
            acc += hs[1:].double().sum(0)  # drop BOS
            n += hs.shape[0] - 1
        assert rm.n_tokens[lang] == n
        assert (rm.means[lang][0] - acc / n).abs().max() < 1e-5


def test_composition_matches_reference(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    clas = ClasSteering(ns, "en", layers=[1], beta=1.0, gamma=0.5)
    add = AddNeurons(ns.mask("partial_shared"), 0.75, layers=[1])
    mu = SetNeurons.int_mu(ns, stats, "ru", layers=[0])
    edits = [
        ("post", 1, clas_ref(ns.mask("partial_shared")[1], ns.mask("specific", "en")[1], 1.0, 1.0, 0.5), "all"),
        ("post", 1, add_ref(ns.mask("partial_shared")[1], 0.75, 1.0), "all"),
        ("post", 0, set_ref(ns.mask("specific", "ru")[0], stats.mean("ru")[0], 1.0), "all"),
    ]
    _check_against_reference(tiny_llama, [clas, [add, None], mu], edits)


def test_zero_strength_is_bit_identical(tiny):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    rm = residual_means(tiny, {"en": ["the cat"], "de": ["der Hund"]})
    zero = [
        ClasSteering(ns, "de", alpha=0.0),
        ClasSteering(ns, "de", beta=0.0, gamma=0.0, site="act"),
        SetNeurons.int_mu(ns, stats, "de", alpha=0.0),
        SetNeurons(ns.mask("specific", "de"), value=5.0, alpha=0.0, site="act"),
        Deactivate(ns.mask("specific", "de"), alpha=0.0),
        AddNeurons(ns.mask("partial_shared"), 0.0),
        AddNeurons(ns.mask("partial_shared"), stats.mean("en"), scale=0.0),
        DiffMeanSteering("en", "de", scale=0.0, means=rm),
        DiffMeanSteering("de", "de", scale=3.0, means=rm),
    ]
    for side in ("left", "right"):
        enc = encode(tiny, TEXTS, padding_side=side)
        with torch.no_grad():
            base = tiny(enc.input_ids, attention_mask=enc.attention_mask)
        for iv in zero:
            assert iv.is_noop, iv
            assert torch.equal(engine_logits(tiny, enc, iv), base), (side, type(iv).__name__)
        assert torch.equal(engine_logits(tiny, enc, *zero), base)
    base_gen = generate_tokens(tiny, PROMPTS, 5)
    with steer(tiny, *zero):
        assert generate_tokens(tiny, PROMPTS, 5) == base_gen


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_positions_are_never_touched(tiny_llama, side):
    shape = neuron_sites(tiny_llama).shape
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[0] = True  # layer 0 only, so layer-0 values at padding see no upstream change
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"]})
    enc = encode(tiny_llama, TEXTS, padding_side=side)
    pad = ~enc.attention_mask.bool()
    assert pad.any()
    for iv, hook in [
        (SetNeurons(mask, value=7.0), "blocks.0.mlp.hook_post"),
        (AddNeurons(mask, 2.0, site="act"), "blocks.0.mlp.hook_post"),
        (DiffMeanSteering("en", "de", layers=[0], scale=5.0, means=rm), "blocks.0.hook_resid_post"),
    ]:
        seen = {}
        read = [(hook, lambda t, hook: seen.__setitem__("v", t.detach().clone()))]
        with torch.no_grad():
            with tiny_llama.hooks(fwd_hooks=read):
                tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
            base = seen["v"]
            with steer(tiny_llama, iv), tiny_llama.hooks(fwd_hooks=read):
                tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        assert torch.equal(seen["v"][pad], base[pad]), type(iv).__name__
        assert not torch.equal(seen["v"][~pad], base[~pad])


def test_string_input_without_mask_uses_bridge_padding(tiny_llama):
    """model(list_of_strings) pads right without a mask; 'last' must still find real tokens."""
    shape = neuron_sites(tiny_llama).shape
    iv = ClasSteering(FakeNeurons(shape), "en", beta=3.0, gamma=0.9, positions="last")
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    with torch.no_grad(), steer(tiny_llama, iv):
        a = tiny_llama(TEXTS)
    b = engine_logits(tiny_llama, enc, iv)
    assert_close_on_real(a, b, enc.attention_mask)


def _hf_greedy(ref, tok, prompt, n, use_cache):
    enc = tok([prompt], return_tensors="pt")
    out = ref.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id, use_cache=use_cache)
    new = out[0, enc.input_ids.shape[1]:].tolist()
    return new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new


@pytest.mark.parametrize("use_cache,positions", [(True, "all"), (True, "last"), (False, "all"), (False, "last")])
def test_generation_matches_hf_greedy_with_reference_hooks(tiny, use_cache, positions):
    shape = neuron_sites(tiny).shape
    ns = FakeNeurons(shape)
    L = shape[0] - 1
    iv = ClasSteering(ns, "de", layers=[L], beta=3.0, gamma=1.0, positions=positions)
    add = AddNeurons(ns.mask("specific", "en"), 2.0, layers=[0], positions=positions)
    edits = [
        ("post", L, clas_ref(ns.mask("partial_shared")[L], ns.mask("specific", "de")[L], 1.0, 3.0, 1.0), positions),
        ("post", 0, add_ref(ns.mask("specific", "en")[0], 2.0, 1.0), positions),
    ]
    ref = ref_of(tiny)
    base = generate_tokens(tiny, PROMPTS, 8, use_cache=use_cache)
    with steer(tiny, iv, add):
        got = generate_tokens(tiny, PROMPTS, 8, use_cache=use_cache)
    with RefHooks(ref, edits):
        exp = [_hf_greedy(ref, tiny.tokenizer, p, 8, use_cache) for p in PROMPTS]
    assert got == exp
    assert got != base, "the steering must change some generation"


def test_round_trip_through_json(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    stats = FakeStats(shape)
    rm = residual_means(tiny_llama, {"en": ["the cat"], "de": ["der Hund"], "ru": ["Привет"]}, layers=[0, 1])
    ivs = [
        ClasSteering(ns, layers=[1], beta=0.5, gamma=0.5),
        SetNeurons.int_mu(ns, stats),
        Deactivate(ns, layers="last:1"),
        AddNeurons({l: ns.mask("specific", l) for l in LANGS}, "mean", stats=stats, scale=0.3),
        SetNeurons(ns.mask("partial_shared"), value="zero", positions="last"),
        DiffMeanSteering(None, "en", layers=[1], scale=2.0, means=rm),
    ]
    dicts = json.loads(json.dumps(interventions_to_dicts(ivs)))
    back = interventions_from_dicts(dicts)
    assert [type(b) for b in back] == [type(i) for i in ivs]
    assert json.loads(json.dumps(interventions_to_dicts(back))) == dicts
    # compact: a SetNeurons mask is stored as indices, values only where the mask is set
    mu = dicts[1]
    assert len(mu["values"]["per_lang"]["de"]["tensor"]["layers"]["0"]["index"]) == int(ns.mask("specific", "de")[0].sum())
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    for lang in ("de", "ru"):
        a = engine_logits(tiny_llama, enc, bind_lang(ivs, lang))
        b = engine_logits(tiny_llama, enc, bind_lang(back, lang))
        assert torch.equal(a, b), lang


def test_templates_and_errors(tiny_llama, tiny_gpt2):
    shape = neuron_sites(tiny_llama).shape
    ns = FakeNeurons(shape)
    clas = ClasSteering(ns)
    assert clas.needs_lang and not clas.for_lang("de").needs_lang
    assert clas.target_lang is None and clas.for_lang("de").target_lang == "de"
    assert not ClasSteering(ns, specific="all").needs_lang
    with pytest.raises(DataValidationError, match="for_lang"):
        with steer(tiny_llama, clas):
            pass
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        clas.for_lang("xx")
    with pytest.raises(DataValidationError, match="Unknown language 'xx'"):
        ClasSteering(ns, "xx")
    with pytest.raises(DataValidationError, match="shared"):
        ClasSteering(ns, shared="some")
    with pytest.raises(DataValidationError, match="positions"):
        Deactivate(ns.mask("partial_shared"), positions="first")
    with pytest.raises(DataValidationError, match="stats"):
        SetNeurons(ns, value="mean", target_lang="de")
    with pytest.raises(DataValidationError, match="unknown value"):
        SetNeurons(ns.mask("partial_shared"), value="mode")
    # a NeuronSet from another model: shape, then weights
    with pytest.raises(MismatchError, match=r"\(2, 64\).*\(2, 128\)"):
        with steer(tiny_gpt2, ClasSteering(ns, "de")):
            pass
    from clas_lens.models import model_info

    other = FakeNeurons(shape, model_info={"model_id": "other-model", "weights_sha256": "0" * 64})
    with pytest.raises(MismatchError, match="other-model") as e:
        ClasSteering(other, "de").hooks(tiny_llama)
    assert model_info(tiny_llama).model_id in str(e.value)
    with pytest.raises(MismatchError, match="site"):
        SetNeurons(ns, value="mean", stats=FakeStats(shape, site="act"), site="post")
    # NaN values for masked neurons (layers the statistics did not measure)
    nan_stats = FakeStats(shape)
    nan_stats._mean["de"][0] = float("nan")
    with pytest.raises(DataValidationError, match="NaN"):
        SetNeurons.int_mu(ns, nan_stats, "de").hooks(tiny_llama)


def test_hooks_are_removed_after_steer(tiny_llama):
    shape = neuron_sites(tiny_llama).shape
    enc = encode(tiny_llama, TEXTS)
    with torch.no_grad():
        base = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        with steer(tiny_llama, Deactivate(torch.ones(shape, dtype=torch.bool))):
            pass
        assert torch.equal(tiny_llama(enc.input_ids, attention_mask=enc.attention_mask), base)


# ----------------------------------------------------------------------------- the real classes
@pytest.fixture(scope="module")
def real(tiny_llama):
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import collect_stats

    corpus = {
        "en": ["the cat sat on the mat", "one two three four", "Monday Tuesday Wednesday", "hello world"],
        "de": ["Der Hund schläft im Garten", "eins zwei drei vier", "Montag Dienstag", "Hallo Welt"],
        "ru": ["Привет, как дела?", "один два три", "понедельник вторник", "Привет мир"],
    }
    stats = collect_stats(tiny_llama, corpus, site="act", progress=False)
    ns = identify_neurons(stats, "clas", criterion="quantile", top_quantile=0.3)
    return stats, ns


def test_real_neuron_set_and_stats(tiny_llama, real):
    stats, ns = real
    assert ns.mask("specific", "de").any() and ns.mask("partial_shared").any()
    clas = ClasSteering(ns, layers=[0, 1], beta=2.0, gamma=1.0)
    edits = [("post", l, clas_ref(ns.mask("partial_shared")[l], ns.mask("specific", "de")[l], 1.0, 2.0, 1.0), "all") for l in (0, 1)]
    _check_against_reference(tiny_llama, [clas.for_lang("de")], edits)
    mu = SetNeurons.int_mu(ns, stats, "ru")
    assert mu.site == "act"
    m = ns.mask("specific", "ru")
    edits = [("act", l, set_ref(m[l], stats.mean("ru")[l], 1.0), "all") for l in (0, 1)]
    _check_against_reference(tiny_llama, [mu], edits)
    # round trip: the NeuronSet becomes a compact MaskSet with the same masks
    back = interventions_from_dicts(json.loads(json.dumps(interventions_to_dicts([clas, mu]))))
    for lang in ns.langs:
        assert torch.equal(back[0].neurons.mask("specific", lang), ns.mask("specific", lang))
    assert torch.equal(back[0].neurons.mask("partial_shared"), ns.mask("partial_shared"))
    assert back[0].neurons.model_info == ns.model_info and back[0].neurons.site == "act"
    enc = encode(tiny_llama, TEXTS, padding_side="left")
    assert torch.equal(engine_logits(tiny_llama, enc, back[0].for_lang("de"), back[1]), engine_logits(tiny_llama, enc, clas.for_lang("de"), mu))


def test_real_neuron_set_from_another_model(tiny_llama, tiny_gpt2, real):
    from clas_lens.testing import tiny_model

    stats, ns = real
    with pytest.raises(MismatchError, match="shape"):
        ClasSteering(ns, "de").hooks(tiny_gpt2)
    other = tiny_model("llama", seed=1)
    from clas_lens.models import model_info

    with pytest.raises(MismatchError) as e:
        with steer(other, ClasSteering(ns, "de")):
            pass
    assert model_info(tiny_llama).model_id in str(e.value) and model_info(other).model_id in str(e.value)
    with pytest.raises(MismatchError):
        SetNeurons.int_mu(ns, stats, "de").hooks(other)


def test_hooks_work_without_steer(tiny_llama):
    """``model.hooks(fwd_hooks=iv.hooks(model))`` / ``run_with_hooks`` give what ``steer`` gives."""
    ns = FakeNeurons(neuron_sites(tiny_llama).shape)
    iv = ClasSteering(ns, "de", beta=2.0, positions="last")
    enc = encode(tiny_llama, TEXTS, padding_side="right")
    expected = engine_logits(tiny_llama, enc, iv)
    with torch.no_grad():
        with tiny_llama.hooks(fwd_hooks=iv.hooks(tiny_llama)):
            a = tiny_llama(enc.input_ids, attention_mask=enc.attention_mask)
        b = tiny_llama.run_with_hooks(enc.input_ids, attention_mask=enc.attention_mask, fwd_hooks=iv.hooks(tiny_llama))
    assert torch.equal(a, expected) and torch.equal(b, expected)
