"""Steering interventions: small serialisable dataclasses that edit neurons or the residual stream.

Every intervention is a ``@dataclass`` with ``to_dict()`` / ``from_dict()`` (a registry makes a
list of dicts round-trip, :func:`interventions_from_dicts`) and ``hooks(model)``, which returns
TransformerLens ``(hook_name, fn)`` pairs built with
:meth:`clas_lens.sites.NeuronSites.edit_hooks` (MLP neurons) or on
``blocks.{l}.hook_resid_post`` (residual stream). :func:`steer` installs the hooks of any number
of interventions for the duration of a ``with`` block; everything that runs the model inside it
is steered -- ``model(...)``, ``run_with_cache``, :func:`clas_lens.generate` (cached or not), task
scoring.

=====================  ==========================================================================
``ClasSteering``       CLAS (METHODS.md): ``h1 = h*(1+beta*M_shared)``, ``h2 = h1*(1-gamma*M_spec)``,
                       ``h' = (1-alpha)*h + alpha*h2`` in the bridge layers
``SetNeurons``         set neurons to a value: ``"mean"`` (Int-mu), ``"median"``, ``"p75"`` ...,
                       ``"zero"``, a constant, per-language values; ``h' = (1-alpha)*h + alpha*v``
``Deactivate``         set neurons to zero (LAPE deactivation); ``h' = (1-alpha)*h``
``AddNeurons``         add an amount (LAPE-style activation): ``h' = h + scale*amount``
``DiffMeanSteering``   add ``scale * (v_tgt - v_src) / ||v_tgt - v_src||`` to ``hook_resid_post``
=====================  ==========================================================================

Conventions shared by all of them:

* **Zero strength is an exact no-op**: ``alpha=0`` (or ``beta=gamma=0`` for CLAS), ``scale=0``,
  ``amount=0``: the hooks hand back the very tensor they received, so logits are bit-identical.
* **Padding is never touched**: the attention mask of the running forward is captured by
  pre-forward hooks on the wrapped Hugging Face model (``model.original_model``), which every
  bridge path goes through (``forward``, ``run_with_cache``, the bridge's and clas_lens's
  ``generate``). A mask given to ``model(...)`` is used as is; a list of strings without a
  mask gets the mask the bridge itself would build; a tensor without a mask counts every
  position as real (the model attends to all of them too). Left and right padding both work,
  and so does a KV-cached step (the mask spans the cached prefix; the hook sees its tail).
* ``positions="all"`` (default) steers every real token, ``positions="last"`` only the last
  real token of each row (left or right padding). In a KV-cached generation step the only
  position is the new token, so cached generation steers every generated token under both
  settings (as a Hugging Face forward hook would); uncached generation recomputes the
  sequence and, for ``"last"``, steers only its current last token.
* Language-dependent interventions with ``target_lang=None`` are templates:
  ``for_lang(lang)`` returns a bound copy, and :func:`clas_lens.evaluation.evaluate` binds one
  for each evaluated language.
* Masks are ``Bool[layer, neuron]`` over all layers of the model, given as a tensor, a dict
  ``{lang: tensor}``, or a NeuronSet (``.mask(category, lang)``); neuron sets and statistics
  computed on another model raise :class:`~clas_lens.errors.MismatchError`.

Composition: interventions are applied in the order given. At the ``post`` site each one sees
the previous one's output; at the ``act`` site of a gated MLP each one sees the model's own
``act_fn(gate)`` values and the last writer wins on a neuron that two of them edit.

Axis names: ``batch``, ``pos``, ``layer``, ``neuron`` (= d_mlp), ``lang``, ``d_model``.

>>> import torch, clas_lens
>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> mask = torch.zeros(2, 64, dtype=torch.bool); mask[1, :8] = True
>>> tokens = model.to_tokens("the cat sat")
>>> with steer(model, Deactivate(mask)):
...     steered = model(tokens)
>>> bool((steered != model(tokens)).any())
True
>>> with steer(model, Deactivate(mask, alpha=0.0)):
...     torch.equal(model(tokens), model(tokens))
True
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from clas_lens.errors import ClasLensError, DataValidationError, MismatchError
from clas_lens.sites import HookPair, check_site, neuron_sites

#: Default CLAS bridge layers. The paper places the bridge layers "near the output" without
#: publishing them; the last four blocks are 22 % of Gemma-3-270M (18 blocks) and 12.5 % of
#: Llama-3.1-8B (32), the region where language-specific output features re-emerge. "last:k"
#: larger than the model (tiny test models have 2 blocks) means every block.
DEFAULT_CLAS_LAYERS = "last:4"
POSITIONS: tuple[str, ...] = ("all", "last")
SHARED_OPTIONS: tuple[str, ...] = ("partial", "all", "both")
SPECIFIC_OPTIONS: tuple[str, ...] = ("target", "all")
CATEGORIES: tuple[str, ...] = ("all_shared", "partial_shared", "specific", "non_activated")
#: Names accepted for ``SetNeurons(value=...)`` besides numbers, tensors and dicts.
VALUE_NAMES: tuple[str, ...] = ("mean", "median", "p75", "p90", "p95", "zero")

__all__ = [
    "Intervention",
    "ClasSteering",
    "SetNeurons",
    "Deactivate",
    "AddNeurons",
    "DiffMeanSteering",
    "MaskSet",
    "ResidualMeans",
    "residual_means",
    "steer",
    "register_intervention",
    "intervention_from_dict",
    "interventions_to_dicts",
    "interventions_from_dicts",
    "as_interventions",
    "bind_lang",
    "DEFAULT_CLAS_LAYERS",
]


# ---------------------------------------------------------------------------------------------
# The attention mask of the running forward
# ---------------------------------------------------------------------------------------------
class _PadTracker:
    """Holds the attention mask of the forward in progress, for the steering hooks.

    Installed once per model (:func:`_tracker`) as pre-/post-forward hooks on the bridge and on
    the wrapped Hugging Face model. Outside a forward ``mask`` is None.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.module = model.original_model
        self.mask: Tensor | None = None  # bool [batch, total_len] or None (all real)
        self._strings: tuple[str, bool] | None = None
        self._memo: dict[tuple, Tensor | None] = {}
        self.handles = [
            model.register_forward_pre_hook(self._bridge_pre, with_kwargs=True),
            model.register_forward_hook(self._bridge_post, always_call=True),
            self.module.register_forward_pre_hook(self._hf_pre, with_kwargs=True),
            self.module.register_forward_hook(self._hf_post, always_call=True),
        ]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # A list of strings without a mask: the bridge pads it but (right padding) builds no mask.
    def _bridge_pre(self, module, args, kwargs) -> None:
        self._strings = None
        inp = args[0] if args else kwargs.get("input")
        if (
            isinstance(inp, list)
            and len(inp) > 1
            and all(isinstance(s, str) for s in inp)
            and kwargs.get("attention_mask") is None
        ):
            tok = getattr(module, "tokenizer", None)
            side = kwargs.get("padding_side") or getattr(tok, "padding_side", None) or "right"
            bos = kwargs.get("prepend_bos")
            if bos is None:
                bos = bool(getattr(module.cfg, "default_prepend_bos", True))
            self._strings = (str(side), bool(bos))

    def _bridge_post(self, module, args, output) -> None:
        self._strings = None

    def _hf_pre(self, module, args, kwargs) -> None:
        ids = args[0] if args else kwargs.get("input_ids")
        am = kwargs.get("attention_mask")
        strings, self._strings = self._strings, None
        mask = None
        if isinstance(am, Tensor) and am.ndim == 2:
            mask = am != 0
        elif am is None and strings is not None and isinstance(ids, Tensor) and ids.ndim == 2:
            from transformer_lens.utilities import get_attention_mask

            mask = get_attention_mask(self.model.tokenizer, ids, strings[1], strings[0]).to(ids.device) != 0
        self.mask = mask
        self._memo = {}

    def _hf_post(self, module, args, output) -> None:
        self.mask = None
        self._memo = {}

    def select(self, batch: int, pos: int, positions: str, device) -> Bool[Tensor, "batch pos"] | None:
        """Positions to steer in a ``[batch, pos, ...]`` activation; None means all of them."""
        key = (batch, pos, positions)
        if key in self._memo:
            return self._memo[key]
        mask = self.mask
        if mask is None:
            if positions == "all":
                sel = None
            else:
                sel = torch.zeros(batch, pos, dtype=torch.bool, device=device)
                sel[:, -1] = True
        else:
            if mask.shape[0] != batch or mask.shape[1] < pos:
                raise ClasLensError(
                    f"Steering hook saw activations of shape [batch={batch}, pos={pos}] but the "
                    f"running forward's attention mask has shape {tuple(mask.shape)}. Run the "
                    "model through the bridge (model(...), run_with_cache, clas_lens.generate) "
                    "so the hooks can tell real tokens from padding."
                )
            win = mask[:, mask.shape[1] - pos :].to(device)
            if positions == "all":
                sel = None if bool(win.all()) else win
            else:
                ar = torch.arange(1, pos + 1, device=device)
                last = (win * ar).argmax(dim=1)
                sel = torch.zeros(batch, pos, dtype=torch.bool, device=device)
                sel[torch.arange(batch, device=device), last] = win.any(dim=1)
        self._memo[key] = sel
        return sel


def _tracker(model) -> _PadTracker:
    """The model's padding tracker, installed on first use (cheap, permanent, idempotent)."""
    tr = getattr(model, "_clas_lens_pad_tracker", None)
    if tr is not None and tr.module is model.original_model and tr.handles:
        return tr
    if tr is not None:
        tr.remove()
    tr = _PadTracker(model)
    object.__setattr__(model, "_clas_lens_pad_tracker", tr)
    return tr


def _check_positions(positions: str) -> str:
    if positions not in POSITIONS:
        raise DataValidationError(f"positions={positions!r}: choose one of {list(POSITIONS)}.")
    return positions


def _masked_edit(
    tracker: _PadTracker, positions: str, idx: Int[Tensor, " k"], rule: Callable[[Tensor], Tensor]
) -> Callable[[Tensor], Tensor]:
    """An edit function that applies ``rule`` to the neurons ``idx`` at the steered positions."""

    def fn(h: Float[Tensor, "batch pos neuron"]) -> Float[Tensor, "batch pos neuron"]:
        ix = idx.to(h.device)  # a no-op unless the layer lives on another device (device_map)
        sub = h.index_select(-1, ix)
        new = rule(sub)
        sel = tracker.select(h.shape[0], h.shape[1], positions, h.device)
        if sel is not None:
            new = torch.where(sel.unsqueeze(-1), new, sub)
        out = h.clone()
        out[..., ix] = new.to(h.dtype)
        return out

    return fn


def _identity(h: Tensor) -> Tensor:
    return h


# ---------------------------------------------------------------------------------------------
# Compact encodings of masks and per-neuron values
# ---------------------------------------------------------------------------------------------
def _encode_bool(mask: Bool[Tensor, "layer neuron"]) -> dict:
    mask = torch.as_tensor(mask).bool().cpu()
    layers = {}
    for l in range(mask.shape[0]):
        idx = mask[l].nonzero().flatten().tolist()
        if idx:
            layers[str(l)] = idx
    return {"shape": list(mask.shape), "layers": layers}


def _decode_bool(d: Mapping) -> Bool[Tensor, "layer neuron"]:
    out = torch.zeros(*d["shape"], dtype=torch.bool)
    for l, idx in d["layers"].items():
        out[int(l), torch.as_tensor(idx, dtype=torch.long)] = True
    return out


def _encode_values(values: Tensor, where: Bool[Tensor, "layer neuron"]) -> dict:
    values = torch.as_tensor(values).detach().cpu().to(torch.float64)
    where = where.bool().cpu() & ~torch.isnan(values)
    layers = {}
    for l in range(values.shape[0]):
        idx = where[l].nonzero().flatten()
        if len(idx):
            layers[str(l)] = {"index": idx.tolist(), "value": values[l, idx].tolist()}
    return {"shape": list(values.shape), "layers": layers}


def _decode_values(d: Mapping) -> Float[Tensor, "layer neuron"]:
    out = torch.full(tuple(d["shape"]), math.nan, dtype=torch.float64)
    for l, e in d["layers"].items():
        out[int(l), torch.as_tensor(e["index"], dtype=torch.long)] = torch.tensor(e["value"], dtype=torch.float64)
    return out


# ---------------------------------------------------------------------------------------------
# Mask sources: a tensor, {lang: tensor}, or a NeuronSet-like object
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class MaskSet:
    """A compact, serialisable stand-in for a NeuronSet: only the masks steering needs.

    ``mask(category, lang=None)`` behaves like ``NeuronSet.mask``: ``"specific"`` takes a
    language (None is the union over languages); the shared categories take none.

    >>> import torch
    >>> spec = {"en": torch.eye(2, 4, dtype=torch.bool), "de": torch.zeros(2, 4, dtype=torch.bool)}
    >>> ms = MaskSet(langs=["en", "de"], specific=spec,
    ...              categories={"partial_shared": torch.ones(2, 4, dtype=torch.bool)})
    >>> int(ms.mask("specific").sum()), int(ms.mask("partial_shared").sum())
    (2, 8)
    >>> MaskSet.from_dict(ms.to_dict()).mask("specific", "en").tolist() == spec["en"].tolist()
    True
    """

    langs: list[str]
    specific: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    categories: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    site: str | None = None
    model_info: dict | None = None
    method: str | None = None
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        for t in [*self.specific.values(), *self.categories.values()]:
            return tuple(t.shape)  # type: ignore[return-value]
        raise DataValidationError("MaskSet holds no masks.")

    def mask(self, category: str, lang: str | None = None) -> Bool[Tensor, "layer neuron"]:
        if category == "specific":
            if lang is None:
                if not self.specific:
                    raise DataValidationError("MaskSet holds no language-specific masks.")
                out = torch.zeros(self.shape, dtype=torch.bool)
                for m in self.specific.values():
                    out |= m.bool()
                return out
            if lang not in self.specific:
                raise DataValidationError(
                    f"Unknown language {lang!r}: these neurons have specific masks for {sorted(self.specific)}."
                )
            return self.specific[lang].bool()
        if category not in self.categories:
            raise DataValidationError(
                f"MaskSet has no {category!r} mask (it holds {sorted(self.categories)}); build it "
                "from the NeuronSet with that category."
            )
        return self.categories[category].bool()

    @classmethod
    def from_neurons(cls, neurons, categories: Iterable[str] = (), langs: Iterable[str] | None = None) -> "MaskSet":
        """Copy the masks of ``categories`` (and "specific" per language) out of a NeuronSet."""
        langs = list(langs if langs is not None else getattr(neurons, "langs", []))
        cats = {c: torch.as_tensor(neurons.mask(c)).bool().cpu() for c in categories if c != "specific"}
        spec = {l: torch.as_tensor(neurons.mask("specific", l)).bool().cpu() for l in langs}
        params = getattr(neurons, "params", None)
        return cls(
            langs=langs,
            specific=spec,
            categories=cats,
            site=getattr(neurons, "site", None),
            model_info=_info_dict(getattr(neurons, "model_info", None)),
            method=getattr(neurons, "method", None),
            params=dict(params) if isinstance(params, Mapping) else {},
        )

    def to_dict(self) -> dict:
        return {
            "langs": list(self.langs),
            "site": self.site,
            "method": self.method,
            "params": _jsonable(self.params),
            "model_info": self.model_info,
            "specific": {l: _encode_bool(m) for l, m in self.specific.items()},
            "categories": {c: _encode_bool(m) for c, m in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "MaskSet":
        return cls(
            langs=list(d["langs"]),
            specific={l: _decode_bool(m) for l, m in d.get("specific", {}).items()},
            categories={c: _decode_bool(m) for c, m in d.get("categories", {}).items()},
            site=d.get("site"),
            model_info=d.get("model_info"),
            method=d.get("method"),
            params=dict(d.get("params") or {}),
        )


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Tensor):
        return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _info_dict(info: Any) -> dict | None:
    if info is None:
        return None
    if isinstance(info, Mapping):
        return dict(info)
    if hasattr(info, "to_dict"):
        return dict(info.to_dict())
    return None


def _is_neuron_set(x: Any) -> bool:
    return callable(getattr(x, "mask", None)) and not isinstance(x, Tensor)


def _source_langs(source: Any) -> list[str] | None:
    """Languages a mask source knows, or None for a language-independent mask."""
    if isinstance(source, Tensor):
        return None
    if isinstance(source, Mapping):
        return list(source)
    return list(getattr(source, "langs", []))


def _check_lang(lang: str, known: Sequence[str] | None, what: str) -> None:
    if known is not None and lang not in known:
        raise DataValidationError(f"Unknown language {lang!r} for {what}: it knows {sorted(known)}.")


def _get_mask(source: Any, category: str, lang: str | None, what: str) -> Bool[Tensor, "layer neuron"]:
    if isinstance(source, Tensor):
        return source.bool()
    if isinstance(source, Mapping):
        if lang is None:
            raise DataValidationError(f"{what} has one mask per language: set target_lang (or call .for_lang).")
        _check_lang(lang, list(source), what)
        return torch.as_tensor(source[lang]).bool()
    if _is_neuron_set(source):
        if category == "specific":
            if lang is None:
                raise DataValidationError(f"{what} uses language-specific neurons: set target_lang (or call .for_lang).")
            _check_lang(lang, _source_langs(source), what)
        return torch.as_tensor(source.mask(category, lang) if category == "specific" else source.mask(category)).bool()
    raise DataValidationError(
        f"{what}: a mask must be a Bool[layer, neuron] tensor, a dict {{lang: tensor}} or a NeuronSet, "
        f"got {type(source).__name__}."
    )


def _source_is_per_lang(source: Any, category: str) -> bool:
    if isinstance(source, Tensor):
        return False
    if isinstance(source, Mapping):
        return True
    return category == "specific"


def _source_to_dict(source: Any, categories: Sequence[str], langs: Sequence[str] | None = None) -> dict:
    if isinstance(source, Tensor):
        return {"kind": "tensor", "mask": _encode_bool(source)}
    if isinstance(source, Mapping):
        return {"kind": "per_lang", "masks": {l: _encode_bool(torch.as_tensor(m)) for l, m in source.items()}}
    if isinstance(source, MaskSet):
        return {"kind": "neuron_set", "neurons": source.to_dict()}
    if langs is None:
        langs = _source_langs(source) if "specific" in categories else []
    ms = MaskSet.from_neurons(source, categories, langs)
    return {"kind": "neuron_set", "neurons": ms.to_dict()}


def _source_from_dict(d: Mapping) -> Any:
    kind = d["kind"]
    if kind == "tensor":
        return _decode_bool(d["mask"])
    if kind == "per_lang":
        return {l: _decode_bool(m) for l, m in d["masks"].items()}
    if kind == "neuron_set":
        return MaskSet.from_dict(d["neurons"])
    raise DataValidationError(f"Unknown mask encoding {kind!r}.")


def _source_union(source: Any, category: str) -> Bool[Tensor, "layer neuron"]:
    if isinstance(source, Tensor):
        return source.bool().cpu()
    if isinstance(source, Mapping):
        out = None
        for m in source.values():
            m = torch.as_tensor(m).bool().cpu()
            out = m.clone() if out is None else out | m
        return out
    return torch.as_tensor(source.mask(category, None) if category == "specific" else source.mask(category)).bool().cpu()


# ---------------------------------------------------------------------------------------------
# Checks against the model
# ---------------------------------------------------------------------------------------------
def _check_shape(model, mask: Tensor, what: str) -> None:
    sites = neuron_sites(model)
    if tuple(mask.shape) != sites.shape:
        from clas_lens.models import model_info

        raise MismatchError(
            f"{what} has masks of shape {tuple(mask.shape)} (layer, neuron) but the model "
            f"{model_info(model).model_id!r} has {sites.shape}: the neurons come from another model."
        )


def _check_info(model, info: Mapping | None, what: str) -> None:
    if not info or not info.get("weights_sha256"):
        return
    from clas_lens.models import model_info

    mine = model_info(model)
    if info["weights_sha256"] != mine.weights_sha256:
        raise MismatchError(
            f"{what} was computed on model {info.get('model_id')!r} (weights "
            f"{str(info['weights_sha256'])[:12]}) but is applied to {mine.model_id!r} (weights "
            f"{mine.weights_sha256[:12]}). Recompute it on this model."
        )


def _resolve_layers(model, layers) -> list[int]:
    """None -> every layer; ``"last:k"`` with k above the layer count -> every layer."""
    sites = neuron_sites(model)
    if isinstance(layers, str) and layers.startswith("last:"):
        try:
            k = int(layers.split(":", 1)[1])
        except ValueError:
            raise DataValidationError(f"layers={layers!r}: use 'last:k' with an integer k.") from None
        if k < 1:
            raise DataValidationError(f"layers={layers!r}: k must be at least 1.")
        layers = f"last:{min(k, sites.n_layers)}"
    try:
        return sites.check_layers(layers)
    except ValueError as e:
        raise DataValidationError(str(e)) from None


def _layers_to_json(layers) -> Any:
    if layers is None or isinstance(layers, str):
        return layers
    if isinstance(layers, int):
        return [int(layers)]
    return [int(l) for l in layers]


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------------------------------------
# Base class and registry
# ---------------------------------------------------------------------------------------------
_REGISTRY: dict[str, type] = {}


def register_intervention(cls: type) -> type:
    """Class decorator: make ``intervention_from_dict`` know ``cls`` by its class name."""
    _REGISTRY[cls.__name__] = cls
    return cls


class Intervention:
    """Base class. Subclasses are dataclasses that implement ``hooks`` and the dict round trip."""

    kind: ClassVar[str] = "intervention"

    def hooks(self, model) -> list[HookPair]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def needs_lang(self) -> bool:
        """True when this is a per-language template that ``for_lang`` must bind first."""
        return False

    @property
    def is_noop(self) -> bool:
        """True when the strength is zero (its hooks return their input unchanged)."""
        return False

    def for_lang(self, lang: str) -> "Intervention":
        """A copy bound to ``lang`` (interventions that do not depend on it return themselves)."""
        return self

    def to_dict(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Mapping) -> "Intervention":  # pragma: no cover - abstract
        raise NotImplementedError


def intervention_from_dict(d: Mapping) -> Intervention:
    """Rebuild any registered intervention from its ``to_dict()`` output.

    >>> import torch
    >>> iv = Deactivate(torch.eye(2, 64, dtype=torch.bool))
    >>> type(intervention_from_dict(iv.to_dict())).__name__
    'Deactivate'
    """
    name = d.get("type")
    if name not in _REGISTRY:
        raise DataValidationError(
            f"Unknown intervention type {name!r}; known: {sorted(_REGISTRY)}. Was it saved by a "
            "newer clas_lens or a plugin that is not imported?"
        )
    return _REGISTRY[name].from_dict(d)


def interventions_to_dicts(interventions) -> list[dict]:
    """``to_dict()`` of each intervention in a (possibly nested) list."""
    return [iv.to_dict() for iv in as_interventions(interventions)]


def interventions_from_dicts(dicts: Iterable[Mapping]) -> list[Intervention]:
    """Inverse of :func:`interventions_to_dicts`."""
    return [intervention_from_dict(d) for d in dicts]


def as_interventions(x) -> list[Intervention]:
    """Flatten None / one intervention / dicts / nested lists into a list of interventions."""
    if x is None:
        return []
    if isinstance(x, Mapping):
        return [intervention_from_dict(x)]
    if isinstance(x, (list, tuple)):
        return [iv for item in x for iv in as_interventions(item)]
    if not callable(getattr(x, "hooks", None)):
        raise DataValidationError(
            f"Not an intervention: {type(x).__name__}. Pass ClasSteering, SetNeurons, Deactivate, "
            "AddNeurons, DiffMeanSteering objects (or their to_dict() dicts), lists of them or None."
        )
    return [x]


def bind_lang(interventions, lang: str) -> list[Intervention]:
    """Bind every per-language template (``needs_lang``) to ``lang``; the others stay as they are."""
    out = []
    for iv in as_interventions(interventions):
        if getattr(iv, "needs_lang", False):
            iv = iv.for_lang(lang)
        out.append(iv)
    return out


@contextlib.contextmanager
def steer(model, *interventions) -> Iterator[Any]:
    """Install the hooks of ``interventions`` (in order) for the duration of the block.

    Arguments may be interventions, their dicts, lists of them, or None (ignored).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens import generate
    >>> model = tiny_model("gpt2")
    >>> mask = torch.zeros(2, 128, dtype=torch.bool); mask[:, :32] = True
    >>> with steer(model, AddNeurons(mask, 3.0, positions="last")):
    ...     out = generate(model, ["the cat"], max_new_tokens=3)
    >>> len(out)
    1
    """
    ivs = as_interventions(list(interventions))
    hooks: list[HookPair] = []
    for iv in ivs:
        if getattr(iv, "needs_lang", False):
            raise DataValidationError(
                f"{type(iv).__name__} has target_lang=None (a per-language template): bind it "
                "with .for_lang(lang) first, or let clas_lens.evaluate() do it per language."
            )
        hooks.extend(iv.hooks(model))
    with model.hooks(fwd_hooks=hooks):
        yield model


# ---------------------------------------------------------------------------------------------
# CLAS
# ---------------------------------------------------------------------------------------------
def _check_strength(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise DataValidationError(f"{name}={value} must be a finite number.")
    return value


@register_intervention
@dataclasses.dataclass(eq=False)
class ClasSteering(Intervention):
    """Cross-Lingual Activation Steering on MLP neurons (METHODS.md), in the bridge layers.

    ``h1 = h * (1 + beta * M_shared)``, ``h2 = h1 * (1 - gamma * M_specific)``,
    ``h' = (1 - alpha) * h + alpha * h2``.

    Args:
        neurons: a NeuronSet (anything with ``mask(category, lang)``, ``langs``, e.g. a
            :class:`MaskSet`).
        target_lang: whose specific neurons are suppressed; None makes a per-language
            template (``for_lang``; ``evaluate`` binds each evaluated language).
        layers: bridge layers, a list of block indices or ``"last:k"``. Default ``"last:4"``
            (:data:`DEFAULT_CLAS_LAYERS`): the paper only says "near the output".
        alpha, beta, gamma: mix, boost of shared neurons, suppression of specific neurons.
            Defaults 1, 0.2, 0.2 (those of the public reimplementation, not the paper's).
        shared: ``"partial"`` (partial-shared neurons, default), ``"all"`` (all-shared) or
            ``"both"``.
        specific: ``"target"`` (the target language's specific neurons, default) or ``"all"``
            (every language's).
        positions: ``"all"`` or ``"last"`` real token.
        site: ``"post"`` (default) or ``"act"``; a scaling rule gives the same result at both.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gemma3")
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"],
    ...              specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> clas = ClasSteering(ns, beta=0.5, gamma=0.5)      # a template: target_lang=None
    >>> tokens = model.to_tokens("Der Hund")
    >>> with steer(model, clas.for_lang("de")):
    ...     steered = model(tokens)
    >>> bool((steered - model(tokens)).abs().max() > 0)
    True
    >>> ClasSteering.from_dict(clas.for_lang("de").to_dict()).target_lang
    'de'
    """

    neurons: Any
    target_lang: str | None = None
    layers: Any = DEFAULT_CLAS_LAYERS
    alpha: float = 1.0
    beta: float = 0.2
    gamma: float = 0.2
    shared: str = "partial"
    specific: str = "target"
    positions: str = "all"
    site: str = "post"

    def __post_init__(self) -> None:
        if not _is_neuron_set(self.neurons):
            raise DataValidationError(
                "ClasSteering needs a NeuronSet (an object with .mask(category, lang)), e.g. "
                f"clas_lens.identify_neurons(stats) or a steering.MaskSet; got {type(self.neurons).__name__}."
            )
        if self.shared not in SHARED_OPTIONS:
            raise DataValidationError(f"shared={self.shared!r}: choose one of {list(SHARED_OPTIONS)}.")
        if self.specific not in SPECIFIC_OPTIONS:
            raise DataValidationError(f"specific={self.specific!r}: choose one of {list(SPECIFIC_OPTIONS)}.")
        _check_positions(self.positions)
        check_site(self.site)
        self.alpha = _check_strength("alpha", self.alpha)
        self.beta = _check_strength("beta", self.beta)
        self.gamma = _check_strength("gamma", self.gamma)
        if self.target_lang is not None and self.specific == "target":
            _check_lang(self.target_lang, _source_langs(self.neurons), "ClasSteering's neurons")

    @property
    def needs_lang(self) -> bool:
        return self.specific == "target" and self.target_lang is None

    @property
    def is_noop(self) -> bool:
        return self.alpha == 0.0 or (self.beta == 0.0 and self.gamma == 0.0)

    def for_lang(self, lang: str) -> "ClasSteering":
        if self.specific == "target":
            _check_lang(lang, _source_langs(self.neurons), "ClasSteering's neurons")
        return dataclasses.replace(self, target_lang=lang)

    def _shared_categories(self) -> list[str]:
        return {"partial": ["partial_shared"], "all": ["all_shared"], "both": ["partial_shared", "all_shared"]}[self.shared]

    def masks(self) -> tuple[Bool[Tensor, "layer neuron"], Bool[Tensor, "layer neuron"]]:
        """``(M_shared, M_specific)`` as boolean ``[layer, neuron]`` tensors (CPU)."""
        if self.needs_lang:
            raise DataValidationError(
                "ClasSteering(specific='target') has target_lang=None: pass target_lang or call "
                ".for_lang(lang) (clas_lens.evaluate does this for each language)."
            )
        shared = None
        for c in self._shared_categories():
            m = torch.as_tensor(self.neurons.mask(c)).bool().cpu()
            shared = m if shared is None else shared | m
        lang = self.target_lang if self.specific == "target" else None
        spec = torch.as_tensor(self.neurons.mask("specific", lang)).bool().cpu()
        return shared, spec

    def hooks(self, model) -> list[HookPair]:
        what = "ClasSteering's NeuronSet"
        shared, spec = self.masks()
        _check_shape(model, shared, what)
        _check_shape(model, spec, what)
        _check_info(model, _info_dict(getattr(self.neurons, "model_info", None)), what)
        sites = neuron_sites(model)
        tracker = _tracker(model)
        dev = _model_device(model)
        out: list[HookPair] = []
        alpha, beta, gamma, noop = self.alpha, self.beta, self.gamma, self.is_noop
        for layer in _resolve_layers(model, self.layers):
            touched = shared[layer] | spec[layer]
            idx = touched.nonzero().flatten()
            if noop or len(idx) == 0:
                fn = _identity
            else:
                ms = shared[layer][idx].to(torch.float64)
                mp = spec[layer][idx].to(torch.float64)
                boost = (1.0 + beta * ms).to(dev, torch.float32)
                damp = (1.0 - gamma * mp).to(dev, torch.float32)

                def rule(h, boost=boost, damp=damp):
                    h2 = h * boost.to(h.device, h.dtype) * damp.to(h.device, h.dtype)
                    return h2 if alpha == 1.0 else (1.0 - alpha) * h + alpha * h2

                fn = _masked_edit(tracker, self.positions, idx.to(dev), rule)
            out.extend(sites.edit_hooks(self.site, layer, fn))
        return out

    def to_dict(self) -> dict:
        if isinstance(self.neurons, MaskSet):
            neurons = self.neurons.to_dict()
        else:
            neurons = MaskSet.from_neurons(self.neurons, self._shared_categories()).to_dict()
        return {
            "type": type(self).__name__,
            "neurons": neurons,
            "target_lang": self.target_lang,
            "layers": _layers_to_json(self.layers),
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "shared": self.shared,
            "specific": self.specific,
            "positions": self.positions,
            "site": self.site,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "ClasSteering":
        d = dict(d)
        d.pop("type", None)
        d["neurons"] = MaskSet.from_dict(d["neurons"])
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Neuron edits that take values: SetNeurons, Deactivate, AddNeurons
# ---------------------------------------------------------------------------------------------
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def _quantile_level(name: str) -> float | None:
    if name == "median":
        return 0.5
    m = _PCT.match(name)
    return float(m.group(1)) / 100.0 if m else None


def _level_of(x: Any) -> float:
    if isinstance(x, str):
        level = _quantile_level(x.strip().lower())
        if level is None:
            raise DataValidationError(f"Unknown quantile level {x!r}: use a float, 'median' or 'pNN'.")
        return level
    return float(x)


def _table_langs(table: Any) -> list[str] | None:
    return list(table) if isinstance(table, Mapping) else None


def _pick_quantile(q: Any, level: float, levels: Sequence[float] | None, lang: str) -> Tensor:
    q = torch.as_tensor(q, dtype=torch.float64)
    if q.ndim == 2:
        return q
    if q.ndim != 3:
        raise DataValidationError(f"quantiles[{lang!r}] must be [q, layer, neuron] or [layer, neuron], got {tuple(q.shape)}.")
    if levels is None and q.shape[0] != 1:
        raise DataValidationError(
            "quantiles hold several levels ([q, layer, neuron]): pass quantile_levels=[...] (the "
            "levels given to collect_quantiles) so the right one can be picked."
        )
    if levels is None and q.shape[0] == 1:
        return q[0]
    levels = [_level_of(x) for x in levels]
    hits = [i for i, x in enumerate(levels) if abs(x - level) < 1e-9]
    if not hits:
        raise DataValidationError(f"Quantile level {level} was not collected (levels: {levels}).")
    return q[hits[0]]


def _usable_langs(wanted: Sequence[str] | None, available: list[str], what: str) -> list[str]:
    """One language: it must be available. A template (several): those available (>= 1)."""
    if wanted is None:
        return available
    wanted = list(wanted)
    if len(wanted) == 1:
        _check_lang(wanted[0], available, what)
        return wanted
    use = [l for l in wanted if l in available]
    if not use:
        raise DataValidationError(f"None of the languages {wanted} are in {what} (it has {sorted(available)}).")
    return use


def _resolve_table(
    value: Any,
    *,
    what: str,
    langs: Sequence[str] | None,
    stats: Any,
    quantiles: Any,
    quantile_levels: Sequence[float] | None,
) -> Any:
    """float | Tensor[layer, neuron] (float64) | {lang: float | Tensor}; from stats if asked."""
    if isinstance(value, bool):
        raise DataValidationError(f"{what}: value must be a number, a tensor, a dict or one of {list(VALUE_NAMES)}.")
    if isinstance(value, (int, float)):
        return _check_strength("value", value)
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float64)
    if isinstance(value, Mapping):
        return {
            str(l): (_check_strength("value", v) if isinstance(v, (int, float)) else torch.as_tensor(v).detach().to("cpu", torch.float64))
            for l, v in value.items()
        }
    if not isinstance(value, str):
        raise DataValidationError(f"{what}: unsupported value {value!r}.")
    if value == "zero":
        return 0.0
    if value == "mean":
        if stats is None:
            raise DataValidationError(f"{what}: value='mean' needs stats= (a NeuronStats from clas_lens.collect_stats).")
        stat_langs = list(getattr(stats, "langs", []))
        use = _usable_langs(langs, stat_langs, "the NeuronStats")
        return {l: torch.as_tensor(stats.mean(l)).detach().to("cpu", torch.float64) for l in use}
    level = _quantile_level(value)
    if level is not None:
        if quantiles is None:
            raise DataValidationError(
                f"{what}: value={value!r} needs quantiles= (the result of clas_lens.collect_quantiles "
                "with that level, plus quantile_levels=[...])."
            )
        levels = quantile_levels if quantile_levels is not None else getattr(quantiles, "levels", None)
        use = _usable_langs(langs, list(quantiles), "the quantiles")
        return {l: _pick_quantile(quantiles[l], level, levels, l) for l in use}
    raise DataValidationError(f"{what}: unknown value {value!r}; use a number, a tensor, a dict or one of {list(VALUE_NAMES)}.")


def _table_for(table: Any, lang: str | None, what: str) -> float | Tensor:
    if isinstance(table, Mapping):
        if lang is None:
            raise DataValidationError(f"{what} has per-language values: set target_lang (or call .for_lang).")
        _check_lang(lang, list(table), f"{what}'s values")
        return table[lang]
    return table


def _table_to_dict(table: Any, where: Callable[[str | None], Tensor | None]) -> Any:
    """Encode values compactly: only at the neurons the (language's) mask selects."""

    def one(v, lang):
        if isinstance(v, Tensor):
            w = where(lang)
            if w is None:
                w = torch.ones(v.shape, dtype=torch.bool)
            return {"tensor": _encode_values(v, w)}
        return v

    if isinstance(table, Mapping):
        return {"per_lang": {l: one(v, l) for l, v in table.items()}}
    return one(table, None)


def _table_from_dict(d: Any) -> Any:
    def one(v):
        if isinstance(v, Mapping) and "tensor" in v:
            return _decode_values(v["tensor"])
        return v

    if isinstance(d, Mapping) and "per_lang" in d:
        return {l: one(v) for l, v in d["per_lang"].items()}
    return one(d)


class _NeuronEdit(Intervention):
    """Shared plumbing of SetNeurons / Deactivate / AddNeurons (mask source + value table)."""

    # provided by subclasses: mask, target_lang, layers, positions, site, category
    def _mask_langs(self) -> list[str] | None:
        if _source_is_per_lang(self.mask, self.category):
            return _source_langs(self.mask)
        return None

    @classmethod
    def from_dict(cls, d: Mapping):
        """Rebuild from :meth:`to_dict` (masks as index lists, value tables where present)."""
        d = dict(d)
        d.pop("type", None)
        d["mask"] = _source_from_dict(d["mask"])
        if "values" in d:
            d["values"] = _table_from_dict(d["values"])
        return cls(**d)

    def _init_table(self, what: str, spec: Any, noun: str, *, stats=None, quantiles=None, quantile_levels=None) -> None:
        """Site, model identity and the value table of SetNeurons / AddNeurons from ``spec``."""
        if self.site is None:
            self.site = getattr(stats, "site", None) or "post"
        check_site(self.site)
        if stats is not None and getattr(stats, "site", None) not in (None, self.site):
            raise MismatchError(
                f"The NeuronStats were collected at site {stats.site!r} but {what}(site={self.site!r}): "
                "setting or adding a value is site dependent; pass site=stats.site."
            )
        if self.model_info is None:
            self.model_info = _info_dict(getattr(stats, "model_info", None))
        self._validate_common()
        if self.values is None:
            langs = [self.target_lang] if self.target_lang is not None else self._mask_langs()
            self.values = _resolve_table(
                spec, what=what, langs=langs, stats=stats, quantiles=quantiles,
                quantile_levels=quantile_levels,
            )
        if self.target_lang is not None and self._table_langs() is not None:
            _check_lang(self.target_lang, self._table_langs(), f"{what}' {noun}")

    def _table(self) -> Any:
        return 0.0

    def _table_langs(self) -> list[str] | None:
        return _table_langs(self._table())

    @property
    def needs_lang(self) -> bool:
        per_lang = self._mask_langs() is not None or self._table_langs() is not None
        return per_lang and self.target_lang is None

    def for_lang(self, lang: str):
        if self._mask_langs() is not None:
            _check_lang(lang, self._mask_langs(), f"{type(self).__name__}'s mask")
        if self._table_langs() is not None:
            _check_lang(lang, self._table_langs(), f"{type(self).__name__}'s values")
        return dataclasses.replace(self, target_lang=lang)

    def _validate_common(self) -> None:
        _check_positions(self.positions)
        if self.category not in CATEGORIES:
            raise DataValidationError(f"category={self.category!r}: choose one of {list(CATEGORIES)}.")
        if self.target_lang is not None and self._mask_langs() is not None:
            _check_lang(self.target_lang, self._mask_langs(), f"{type(self).__name__}'s mask")
        if not (isinstance(self.mask, (Tensor, Mapping)) or _is_neuron_set(self.mask)):
            raise DataValidationError(
                f"{type(self).__name__}: a mask must be a Bool[layer, neuron] tensor, a dict "
                f"{{lang: tensor}} or a NeuronSet, got {type(self.mask).__name__}."
            )

    def _rule(self, layer: int, idx: Tensor, values: Any, dev) -> Callable[[Tensor], Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _layer_values(self, values: Any, layer: int, idx: Tensor, dev) -> Tensor | float:
        if isinstance(values, Tensor):
            v = values[layer, idx.cpu()]
            if torch.isnan(v).any():
                raise DataValidationError(
                    f"{type(self).__name__}: {int(torch.isnan(v).sum())} masked neurons of layer {layer} "
                    "have no value (NaN): collect the statistic for them or narrow the mask."
                )
            return v.to(dev, torch.float32)
        return float(values)

    def hooks(self, model) -> list[HookPair]:
        what = type(self).__name__
        if self.needs_lang:
            raise DataValidationError(f"{what} has per-language masks or values: set target_lang or call .for_lang(lang).")
        mask = _get_mask(self.mask, self.category, self.target_lang, what).cpu()
        _check_shape(model, mask, what)
        _check_info(model, _info_dict(getattr(self.mask, "model_info", None)), what)
        _check_info(model, self.model_info, what)
        values = _table_for(self._table(), self.target_lang, what)
        if isinstance(values, Tensor) and tuple(values.shape) != tuple(mask.shape):
            raise MismatchError(f"{what}: values of shape {tuple(values.shape)} do not match the mask {tuple(mask.shape)}.")
        sites = neuron_sites(model)
        tracker = _tracker(model)
        dev = _model_device(model)
        layers = _resolve_layers(model, self.layers)
        out: list[HookPair] = []
        noop = self.is_noop
        for layer in layers:
            idx = mask[layer].nonzero().flatten()
            if noop or len(idx) == 0:
                fn = _identity
            else:
                rule = self._rule(layer, idx, values, dev)
                fn = _masked_edit(tracker, self.positions, idx.to(dev), rule)
            out.extend(sites.edit_hooks(self.site, layer, fn))
        return out

    def _base_dict(self) -> dict:
        return {
            "type": type(self).__name__,
            "mask": _source_to_dict(self.mask, [self.category]),
            "target_lang": self.target_lang,
            "layers": _layers_to_json(self.layers),
            "positions": self.positions,
            "site": self.site,
            "category": self.category,
        }

    def _where(self, lang: str | None) -> Tensor | None:
        """The neurons whose values matter (for compact serialisation)."""
        try:
            if lang is not None and _source_is_per_lang(self.mask, self.category):
                return _get_mask(self.mask, self.category, lang, type(self).__name__).cpu()
            return _source_union(self.mask, self.category)
        except ClasLensError:
            return None


def _value_label(value: Any) -> Any:
    if isinstance(value, str) or isinstance(value, (int, float)):
        return value
    return "custom"


@register_intervention
@dataclasses.dataclass(eq=False)
class SetNeurons(_NeuronEdit):
    """Set masked neurons to a value: ``h' = (1 - alpha) * h + alpha * v`` (alpha=1: ``h' = v``).

    Args:
        mask: ``Bool[layer, neuron]`` tensor, ``{lang: tensor}``, or a NeuronSet (its
            ``category`` mask, by default the target language's "specific" neurons).
        value: ``"mean"`` (needs ``stats``: Int-mu), ``"median"`` / ``"p75"`` / ``"p90"`` /
            ``"p95"`` (needs ``quantiles`` from :func:`clas_lens.collect_quantiles`, and
            ``quantile_levels`` when it holds several levels), ``"zero"``, a number, a
            ``[layer, neuron]`` tensor, or ``{lang: number | tensor}``. Values from statistics
            are per language: the target language's.
        target_lang: the language whose mask/values are used; None makes a per-language
            template when either depends on the language.
        alpha: strength; 0 is an exact no-op.
        layers: None (every layer), a list, or ``"last:k"``.
        site: where the values live; defaults to the statistics' site (values set at ``act``
            and at ``post`` differ), else ``"post"``.
        stats, quantiles, quantile_levels: sources of the values (not stored: the resolved
            numbers are, compactly, in ``values``).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> mask = torch.zeros(2, 64, dtype=torch.bool); mask[0, :4] = True
    >>> iv = SetNeurons(mask, value=2.5)
    >>> SetNeurons.from_dict(iv.to_dict()).to_dict() == iv.to_dict()
    True
    """

    mask: Any
    value: Any = "mean"
    target_lang: str | None = None
    alpha: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str | None = None
    category: str = "specific"
    values: Any = None
    model_info: dict | None = None
    stats: dataclasses.InitVar[Any] = None
    quantiles: dataclasses.InitVar[Any] = None
    quantile_levels: dataclasses.InitVar[Any] = None

    def __post_init__(self, stats=None, quantiles=None, quantile_levels=None) -> None:
        self.alpha = _check_strength("alpha", self.alpha)
        self._init_table(
            "SetNeurons", self.value, "values", stats=stats, quantiles=quantiles,
            quantile_levels=quantile_levels,
        )

    def _table(self) -> Any:
        return self.values

    @property
    def is_noop(self) -> bool:
        return self.alpha == 0.0

    def _rule(self, layer, idx, values, dev):
        v = self._layer_values(values, layer, idx, dev)
        alpha = self.alpha

        def rule(h):
            vv = v.to(h.device, h.dtype) if isinstance(v, Tensor) else v
            if alpha == 1.0:
                return torch.zeros_like(h) + vv
            return (1.0 - alpha) * h + alpha * vv

        return rule

    @classmethod
    def int_mu(cls, neurons, stats, lang: str | None = None, *, layers=None, positions: str = "all", alpha: float = 1.0) -> "SetNeurons":
        """Int-mu (Mondal et al. 2025): the language's specific neurons set to their mean on it.

        ``lang=None`` gives a template that ``evaluate`` binds per language; the site is the
        statistics' site.
        """
        return cls(neurons, value="mean", stats=stats, target_lang=lang, layers=layers, positions=positions, alpha=alpha)

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(value=_value_label(self.value), alpha=self.alpha, values=_table_to_dict(self.values, self._where), model_info=self.model_info)
        return d



@register_intervention
@dataclasses.dataclass(eq=False)
class Deactivate(_NeuronEdit):
    """Zero masked neurons (LAPE deactivation): ``h' = (1 - alpha) * h`` (alpha=1: ``h' = 0``).

    ``mask`` as in :class:`SetNeurons`; zeroing gives the same result at ``post`` and ``act``.

    >>> import torch
    >>> iv = Deactivate({"de": torch.eye(2, 64, dtype=torch.bool)})   # per-language mask
    >>> iv.needs_lang, iv.for_lang("de").needs_lang
    (True, False)
    """

    mask: Any
    target_lang: str | None = None
    alpha: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str = "post"
    category: str = "specific"
    model_info: dict | None = None

    def __post_init__(self) -> None:
        self.alpha = _check_strength("alpha", self.alpha)
        check_site(self.site)
        self._validate_common()

    @property
    def is_noop(self) -> bool:
        return self.alpha == 0.0

    def _rule(self, layer, idx, values, dev):
        alpha = self.alpha
        if alpha == 1.0:
            return torch.zeros_like
        return lambda h: (1.0 - alpha) * h

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(alpha=self.alpha, model_info=self.model_info)
        return d



@register_intervention
@dataclasses.dataclass(eq=False)
class AddNeurons(_NeuronEdit):
    """Add to masked neurons (LAPE-style activation): ``h' = h + scale * amount``.

    Args:
        mask: as in :class:`SetNeurons`.
        amount: a number, a ``[layer, neuron]`` tensor, ``{lang: number | tensor}``, or
            ``"mean"`` with ``stats`` (the target language's mean activation, as in
            d-gurgurov/Language-Neurons-Manipulation).
        scale: multiplies the amount; 0 (or amount 0) is an exact no-op.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> iv = AddNeurons(torch.ones(2, 64, dtype=torch.bool), 0.0)
    >>> tokens = model.to_tokens("hola")
    >>> with steer(model, iv):
    ...     same = torch.equal(model(tokens), model(tokens))
    >>> same, iv.is_noop
    (True, True)
    """

    mask: Any
    amount: Any = 1.0
    target_lang: str | None = None
    scale: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str | None = None
    category: str = "specific"
    values: Any = None
    model_info: dict | None = None
    stats: dataclasses.InitVar[Any] = None

    def __post_init__(self, stats=None) -> None:
        self.scale = _check_strength("scale", self.scale)
        self._init_table("AddNeurons", self.amount, "amounts", stats=stats)

    def _table(self) -> Any:
        return self.values

    @property
    def is_noop(self) -> bool:
        if self.scale == 0.0:
            return True
        v = self.values
        if isinstance(v, (int, float)):
            return float(v) == 0.0
        if isinstance(v, Mapping) and self.target_lang is not None and isinstance(v.get(self.target_lang), (int, float)):
            return float(v[self.target_lang]) == 0.0
        return False

    def _rule(self, layer, idx, values, dev):
        a = self._layer_values(values, layer, idx, dev)
        scale = self.scale

        def rule(h):
            aa = a.to(h.device, h.dtype) if isinstance(a, Tensor) else a
            return h + scale * aa

        return rule

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(amount=_value_label(self.amount), scale=self.scale, values=_table_to_dict(self.values, self._where), model_info=self.model_info)
        return d



# ---------------------------------------------------------------------------------------------
# Residual-stream means and DiffMean
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class ResidualMeans:
    """Mean residual stream (``hook_resid_post``) per language over real tokens, float64.

    ``means[lang]`` is ``Float64[layer, d_model]`` over ``layers`` (in that order).
    """

    layers: list[int]
    means: dict[str, Tensor]
    n_tokens: dict[str, int]
    model_info: dict | None = None

    @property
    def langs(self) -> list[str]:
        return list(self.means)

    def vector(self, lang: str, layer: int) -> Float[Tensor, " d_model"]:
        _check_lang(lang, self.langs, "the residual means")
        if layer not in self.layers:
            raise DataValidationError(f"Layer {layer} has no residual means (computed for {self.layers}).")
        return self.means[lang][self.layers.index(layer)]

    def to_dict(self) -> dict:
        return {
            "layers": list(self.layers),
            "means": {l: m.tolist() for l, m in self.means.items()},
            "n_tokens": dict(self.n_tokens),
            "model_info": self.model_info,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "ResidualMeans":
        return cls(
            layers=[int(l) for l in d["layers"]],
            means={l: torch.tensor(m, dtype=torch.float64) for l, m in d["means"].items()},
            n_tokens={l: int(n) for l, n in d["n_tokens"].items()},
            model_info=d.get("model_info"),
        )


def _corpus_texts(corpus: Any, lang: str) -> list[str]:
    if isinstance(corpus, Mapping):
        _check_lang(lang, list(corpus), "the corpus")
        return list(corpus[lang])
    known = list(getattr(corpus, "langs", []))
    _check_lang(lang, known, "the corpus")
    return list(corpus.texts(lang))


@torch.no_grad()
def residual_means(
    model,
    corpus: Any,
    layers=None,
    langs: Sequence[str] | None = None,
    *,
    batch_size: int = 16,
    max_length: int | None = None,
) -> ResidualMeans:
    """Mean ``blocks.{l}.hook_resid_post`` of each language over its real tokens (no BOS, no pad).

    ``corpus`` is a ParallelCorpus (``.langs``, ``.texts(lang)``) or ``{lang: [texts]}``. Sums are
    accumulated in float64; the forward stops after the last requested block.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> rm = residual_means(model, {"en": ["the cat", "a dog"], "de": ["der Hund"]}, layers=[1])
    >>> tuple(rm.means["de"].shape), rm.means["de"].dtype
    ((1, 32), torch.float64)
    """
    from clas_lens.batching import batched, encode
    from clas_lens.models import model_info

    layer_list = _resolve_layers(model, layers)
    if langs is None:
        langs = list(corpus) if isinstance(corpus, Mapping) else list(corpus.langs)
    d_model = int(model.cfg.d_model)
    means: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    for lang in langs:
        texts = _corpus_texts(corpus, lang)
        if not texts:
            raise DataValidationError(f"The corpus has no texts for {lang!r}.")
        acc = torch.zeros(len(layer_list), d_model, dtype=torch.float64)
        n = 0
        for chunk in batched(texts, batch_size):
            enc = encode(model, list(chunk), padding_side="right", max_length=max_length)
            real = enc.real_mask
            store: dict[int, Tensor] = {}

            def make(i):
                def read(t, hook):
                    store[i] = t[real].to(torch.float64).sum(dim=0).cpu()
                    return t

                return read

            hooks = [(f"blocks.{l}.hook_resid_post", make(i)) for i, l in enumerate(layer_list)]
            with model.hooks(fwd_hooks=hooks):
                model(enc.input_ids, attention_mask=enc.attention_mask, stop_at_layer=max(layer_list) + 1)
            for i in range(len(layer_list)):
                acc[i] += store[i]
            n += int(real.sum())
        if n == 0:
            raise DataValidationError(f"No real tokens for {lang!r} (every text was empty?).")
        means[lang] = acc / n
        counts[lang] = n
    return ResidualMeans(layers=layer_list, means=means, n_tokens=counts, model_info=model_info(model).to_dict())


@register_intervention
@dataclasses.dataclass(eq=False)
class DiffMeanSteering(Intervention):
    """DiffMean (CLaS-Bench): add ``scale * (v_tgt - v_src) / ||v_tgt - v_src||`` to the residual.

    Applied at ``blocks.{l}.hook_resid_post`` for each layer. ``means`` is a
    :class:`ResidualMeans` (:func:`residual_means`). A None language is filled in by
    ``for_lang`` (``evaluate``): ``DiffMeanSteering(None, "en", ...)`` steers each evaluated
    language towards English; steering a language towards itself is a no-op. ``scale`` is in
    residual-stream units (compare with the norms of ``means``); 0 is an exact no-op.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> rm = residual_means(model, {"en": ["the cat sat"], "de": ["der Hund schläft"]})
    >>> iv = DiffMeanSteering("en", "de", layers=[0, 1], scale=4.0, means=rm)
    >>> DiffMeanSteering.from_dict(iv.to_dict()).scale
    4.0
    """

    source_lang: str | None
    target_lang: str | None
    layers: Any = None
    scale: float = 1.0
    means: Any = None
    positions: str = "all"

    def __post_init__(self) -> None:
        self.scale = _check_strength("scale", self.scale)
        _check_positions(self.positions)
        if isinstance(self.means, Mapping):
            self.means = ResidualMeans.from_dict(self.means)
        if not isinstance(self.means, ResidualMeans):
            raise DataValidationError("DiffMeanSteering needs means=residual_means(model, corpus, layers, langs).")
        if self.source_lang is None and self.target_lang is None:
            raise DataValidationError("DiffMeanSteering needs source_lang or target_lang (one may be None as a template).")
        for l in (self.source_lang, self.target_lang):
            if l is not None:
                _check_lang(l, self.means.langs, "DiffMeanSteering's residual means")

    @property
    def needs_lang(self) -> bool:
        return self.source_lang is None or self.target_lang is None

    @property
    def is_noop(self) -> bool:
        return self.scale == 0.0 or (self.source_lang is not None and self.source_lang == self.target_lang)

    def for_lang(self, lang: str) -> "DiffMeanSteering":
        _check_lang(lang, self.means.langs, "DiffMeanSteering's residual means")
        if self.source_lang is None:
            return dataclasses.replace(self, source_lang=lang)
        if self.target_lang is None:
            return dataclasses.replace(self, target_lang=lang)
        return self

    def direction(self, layer: int) -> Float[Tensor, " d_model"]:
        """``(v_tgt - v_src) / ||v_tgt - v_src||`` in float64 (zeros when the means coincide)."""
        d = self.means.vector(self.target_lang, layer) - self.means.vector(self.source_lang, layer)
        norm = torch.linalg.vector_norm(d)
        return d / norm if float(norm) > 0 else torch.zeros_like(d)

    def hooks(self, model) -> list[HookPair]:
        if self.needs_lang:
            raise DataValidationError("DiffMeanSteering has a None language: call .for_lang(lang) first.")
        _check_info(model, self.means.model_info, "DiffMeanSteering's residual means")
        if self.means.means[self.means.langs[0]].shape[-1] != int(model.cfg.d_model):
            raise MismatchError(
                f"DiffMeanSteering's residual means have d_model={self.means.means[self.means.langs[0]].shape[-1]} "
                f"but the model has {model.cfg.d_model}."
            )
        layers = list(self.means.layers) if self.layers is None else _resolve_layers(model, self.layers)
        tracker = _tracker(model)
        dev = _model_device(model)
        out: list[HookPair] = []
        for layer in layers:
            delta = (self.scale * self.direction(layer)).to(dev, torch.float32)
            if self.is_noop or not bool(delta.abs().max() > 0):
                fn = lambda t, hook: t  # noqa: E731
            else:

                def fn(t, hook, delta=delta):
                    new = t + delta.to(t.device, t.dtype)
                    sel = tracker.select(t.shape[0], t.shape[1], self.positions, t.device)
                    return new if sel is None else torch.where(sel.unsqueeze(-1), new, t)

            out.append((f"blocks.{layer}.hook_resid_post", fn))
        return out

    def to_dict(self) -> dict:
        layers = list(self.means.layers)
        if self.layers is not None:
            n = max(layers) + 1
            wanted = self.layers
            if isinstance(wanted, str) and wanted.startswith("last:"):
                layers = layers  # resolved against the model at hook time: keep every layer
            else:
                wanted = [wanted] if isinstance(wanted, int) else list(wanted)
                keep = {l % n if l < 0 else l for l in wanted}
                layers = [l for l in layers if l in keep]
        means = ResidualMeans(
            layers=layers,
            means={l: m[[self.means.layers.index(x) for x in layers]] for l, m in self.means.means.items()},
            n_tokens=dict(self.means.n_tokens),
            model_info=self.means.model_info,
        )
        return {
            "type": type(self).__name__,
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
            "layers": _layers_to_json(self.layers),
            "scale": self.scale,
            "positions": self.positions,
            "means": means.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "DiffMeanSteering":
        d = dict(d)
        d.pop("type", None)
        d["means"] = ResidualMeans.from_dict(d["means"])
        return cls(**d)
