"""Neuron sites: the one place that knows where MLP neurons live in each architecture.

Axis names used across clas_lens (jaxtyping dims): ``batch``, ``pos``, ``layer``, ``neuron``
(= ``d_mlp``), ``lang``, ``sentence``, ``d_model``.

Two sites are offered (docs/methods.md, "Neuron sites"):

* ``post`` -- the down projection's input, ``act_fn(gate(x)) * up(x)`` for gated MLPs
  (Llama, Gemma, Qwen) and ``act_fn(W_in x)`` for GPT-2-style MLPs. TransformerLens hook
  ``blocks.{l}.mlp.hook_post``.
* ``act`` -- ``act_fn(gate(x))`` alone for gated MLPs (LAPE's and Int-mu's site). There is no
  bridge hook for it: it is read as ``act_fn(hook_pre)`` and written by recombining the new
  value with ``up(x)`` (``hook_pre_linear``) at ``hook_post``. For non-gated MLPs it equals
  ``post``.

Zeroing or scaling a neuron gives the same result at both sites; setting or adding a value
does not, so every saved result records its site.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.errors import UnsupportedModelError
from clas_lens.specs import resolve_layers

Site = Literal["post", "act"]
SITES: tuple[str, ...] = ("post", "act")
#: A function that edits neuron values ``[batch, pos, d_mlp]`` at one layer; return new values.
EditFn = Callable[[Float[Tensor, "batch pos neuron"]], Float[Tensor, "batch pos neuron"]]
ReadFn = Callable[[Float[Tensor, "batch pos neuron"]], None]
HookPair = tuple[str, Callable[..., Any]]


def check_site(site: str) -> str:
    if site not in SITES:
        raise ValueError(f"Unknown neuron site {site!r}; choose one of {list(SITES)}.")
    return site


@dataclasses.dataclass(frozen=True)
class NeuronSites:
    """How to read and edit MLP neurons of one model.

    >>> from clas_lens.testing import tiny_model
    >>> sites = neuron_sites(tiny_model("llama"))
    >>> sites.n_layers, sites.d_mlp, sites.gated
    (2, 64, True)
    >>> sites.post_hook(1)
    'blocks.1.mlp.hook_post'
    """

    n_layers: int
    d_mlp: int
    gated: bool
    act_fns: tuple[Callable[[Tensor], Tensor], ...]

    @property
    def n_neurons(self) -> int:
        return self.n_layers * self.d_mlp

    @property
    def shape(self) -> tuple[int, int]:
        """``(layer, neuron)``, the shape of every per-neuron tensor."""
        return (self.n_layers, self.d_mlp)

    def post_hook(self, layer: int) -> str:
        return f"blocks.{layer}.mlp.hook_post"

    def gate_hook(self, layer: int) -> str:
        return f"blocks.{layer}.mlp.hook_pre"

    def up_hook(self, layer: int) -> str:
        return f"blocks.{layer}.mlp.hook_pre_linear"

    def check_layers(self, layers) -> list[int]:
        """Sorted layer indices of a layer spec (:mod:`clas_lens.specs`: None/"all", "last:k",
        "first:k", "a-b", "0,3,-1", ints); the one parser, :func:`clas_lens.specs.resolve_layers`."""
        return resolve_layers(layers, self.n_layers)

    def read_hooks(self, site: str, layer: int, fn: ReadFn) -> list[HookPair]:
        """Hooks that call ``fn(values)`` with the site's neuron values of ``layer``."""
        check_site(site)
        if site == "act" and self.gated:
            act = self.act_fns[layer]

            def read_act(t, hook):
                fn(act(t))
                return t

            return [(self.gate_hook(layer), read_act)]

        def read_post(t, hook):
            fn(t)
            return t

        return [(self.post_hook(layer), read_post)]

    def edit_hooks(self, site: str, layer: int, fn: EditFn) -> list[HookPair]:
        """Hooks that replace the site's neuron values of ``layer`` by ``fn(values)``.

        Where ``fn`` leaves a value unchanged the model's own activation is kept bit for bit.
        """
        check_site(site)
        if site == "post" or not self.gated:

            def edit_post(t, hook):
                return fn(t)

            return [(self.post_hook(layer), edit_post)]

        act_fn = self.act_fns[layer]
        saved: dict[str, Tensor] = {}

        def save_gate(t, hook):
            saved["gate"] = t
            return t

        def save_up(t, hook):
            saved["up"] = t
            return t

        def edit_act(t, hook):
            act = act_fn(saved.pop("gate"))
            up = saved.pop("up")
            new = fn(act)
            return torch.where(new != act, new * up, t)

        return [
            (self.gate_hook(layer), save_gate),
            (self.up_hook(layer), save_up),
            (self.post_hook(layer), edit_act),
        ]


def _act_fn(model, layer: int) -> Callable[[Tensor], Tensor]:
    mlp = model.blocks[layer].mlp
    orig = getattr(mlp, "_original_component", None) or getattr(mlp, "original_component", None)
    for attr in ("act_fn", "act", "activation_fn"):
        fn = getattr(orig, attr, None) if orig is not None else None
        if callable(fn):
            return fn
    from transformers.activations import ACT2FN

    return ACT2FN[model.cfg.act_fn]


def neuron_sites(model) -> NeuronSites:
    """The :class:`NeuronSites` of a bridge; raises for architectures without MLP hooks.

    >>> from clas_lens.testing import tiny_model
    >>> neuron_sites(tiny_model("gpt2")).gated
    False
    """
    cached = getattr(model, "_clas_lens_sites", None)
    if cached is not None:
        return cached
    hook_dict = getattr(model, "hook_dict", {})
    n_layers = int(getattr(model.cfg, "n_layers", 0) or 0)
    missing = [f"blocks.{l}.mlp.hook_post" for l in range(n_layers) if f"blocks.{l}.mlp.hook_post" not in hook_dict]
    if n_layers == 0 or missing:
        arch = getattr(model.cfg, "architecture", None) or type(model).__name__
        raise UnsupportedModelError(
            f"{arch} exposes no MLP neuron hooks (missing {missing[:2] or 'blocks'}): clas_lens "
            "needs a decoder with dense MLPs (GPT-2-, Llama-, Gemma-, Qwen-style). MoE and "
            "state-space models are not supported."
        )
    gated = all(f"blocks.{l}.mlp.hook_pre_linear" in hook_dict for l in range(n_layers))
    d_mlp = int(model.cfg.d_mlp)
    sites = NeuronSites(
        n_layers=n_layers,
        d_mlp=d_mlp,
        gated=gated,
        act_fns=tuple(_act_fn(model, l) for l in range(n_layers)) if gated else (),
    )
    object.__setattr__(model, "_clas_lens_sites", sites)
    return sites
