"""Steering interventions: small serialisable dataclasses that edit neurons or the residual stream.

Every intervention is a ``@dataclass`` with ``to_dict()`` / ``from_dict()`` (a registry makes a
list of dicts round-trip, :func:`interventions_from_dicts`) and ``hooks(model)``, which returns
TransformerLens ``(hook_name, fn)`` pairs built with
:meth:`clas_lens.sites.NeuronSites.edit_hooks` (MLP neurons) or on
``blocks.{l}.hook_resid_post`` (residual stream). :func:`steer` installs the hooks of any number
of interventions for the duration of a ``with`` block; everything that runs the model inside it
is steered -- ``model(...)``, ``run_with_cache``, :func:`clas_lens.generate` (cached or not), task
scoring. The rules are described in docs/methods.md ("The CLAS rule", "Peer methods").

=====================  ==========================================================================
``ClasSteering``       CLAS: ``h1 = h*(1+beta*M_shared)``, ``h2 = h1*(1-gamma*M_spec)``,
                       ``h' = (1-alpha)*h + alpha*h2`` in the bridge layers
``SetNeurons``         set neurons to a value: ``"mean"`` (Int-mu), ``"median"``, ``"p75"`` ...,
                       ``"zero"``, a constant, per-language values;
                       ``h' = (1-strength)*h + strength*v``
``Deactivate``         set neurons to zero (LAPE deactivation); ``h' = (1-strength)*h``
``AddNeurons``         add an amount (LAPE-style activation): ``h' = h + strength*amount``
``DiffMeanSteering``   add ``strength * (v_tgt - v_src) / ||v_tgt - v_src||`` to ``hook_resid_post``
``UniformGain``        the control of CLAS: ``h' = gain * h`` on every neuron of the steered
                       layers; ``UniformGain.matching(clas)`` takes CLAS's mean per-neuron gain
=====================  ==========================================================================

Controls that make a CLAS result mean something: ``UniformGain.matching(clas)`` (a plain gain
of the same size), ``ClasSteering.boost_only`` / ``.suppress_only`` (one term of the rule), and
:func:`clas_lens.neurons.random_like` (random neurons in the same numbers per layer, category
and language).

``strength`` is the edit's strength (docs/glossary.md); it was called ``alpha`` (SetNeurons,
Deactivate) and ``scale`` (AddNeurons, DiffMeanSteering), names that still work for one release
with a DeprecationWarning. ``alpha`` is only CLAS's mix.

Modules (low to high): :mod:`~clas_lens.steering.serialize` (compact JSON of masks and values),
:mod:`~clas_lens.steering.checks` (argument checks, deprecated names),
:mod:`~clas_lens.steering.positions` (padding and the steered positions),
:mod:`~clas_lens.steering.masks` (:class:`MaskSet`, mask sources),
:mod:`~clas_lens.steering.registry` (:class:`Intervention`, the registry, dict round trips),
:mod:`~clas_lens.steering.values` (value tables), :mod:`~clas_lens.steering.engine`
(:func:`steer`, :func:`bind_lang`), :mod:`~clas_lens.steering.edit_base` (the base of the
neuron edits), then one module per rule: :mod:`~clas_lens.steering.clas`,
:mod:`~clas_lens.steering.neuron_edits`, :mod:`~clas_lens.steering.residual`,
:mod:`~clas_lens.steering.uniform_gain`.

Conventions shared by all of them:

* **Zero strength is an exact no-op**: ``strength=0`` (or ``alpha=0`` / ``beta=gamma=0`` for
  CLAS), ``amount=0``: the hooks hand back the very tensor they received, so logits are
  bit-identical.
* **Padding is never touched** (:mod:`~clas_lens.steering.positions`): left and right padding
  both work, and so does a KV-cached step (the mask spans the cached prefix; the hook sees its
  tail).
* ``positions="all"`` (default) steers every real token, ``positions="last"`` only the last
  real token of each row (left or right padding).
* **BOS is not edited** by the neuron edits (``edit_bos=False``, the default of ClasSteering,
  SetNeurons, Deactivate, AddNeurons, UniformGain): the statistics that define the neurons
  leave BOS out, so steering does too. ``edit_bos=True`` edits it like any real token (the
  behaviour before the option; saved dicts without the key load with it). DiffMeanSteering
  edits every real token, BOS included, as before. In a KV-cached generation step the only
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
>>> with steer(model, Deactivate(mask, strength=0.0)):
...     torch.equal(model(tokens), model(tokens))
True
"""
from __future__ import annotations

from clas_lens.specs import VALUE_NAMES
from clas_lens.stats.residual_means import ResidualMeans, residual_means
from clas_lens.steering.clas import SHARED_OPTIONS, SPECIFIC_OPTIONS, SUPPRESS_OPTIONS, ClasSteering
from clas_lens.steering.engine import bind_lang, steer
from clas_lens.steering.masks import MaskSet
from clas_lens.steering.edit_base import NeuronEdit
from clas_lens.steering.neuron_edits import AddNeurons, Deactivate, SetNeurons
from clas_lens.steering.registry import (
    Intervention,
    as_interventions,
    intervention_from_dict,
    interventions_from_dicts,
    interventions_to_dicts,
    register_intervention,
    registered_interventions,
)
from clas_lens.steering.residual import DiffMeanSteering
from clas_lens.steering.uniform_gain import UniformGain
from clas_lens.vocab import CATEGORIES, POSITIONS
from clas_lens.vocab import DEFAULT_STEER_LAYERS as DEFAULT_CLAS_LAYERS

__all__ = [
    "Intervention",
    "ClasSteering",
    "SetNeurons",
    "Deactivate",
    "AddNeurons",
    "DiffMeanSteering",
    "UniformGain",
    "NeuronEdit",
    "MaskSet",
    "ResidualMeans",
    "residual_means",
    "steer",
    "register_intervention",
    "registered_interventions",
    "intervention_from_dict",
    "interventions_to_dicts",
    "interventions_from_dicts",
    "as_interventions",
    "bind_lang",
    "DEFAULT_CLAS_LAYERS",
    "SHARED_OPTIONS",
    "SUPPRESS_OPTIONS",
    "SPECIFIC_OPTIONS",
    "CATEGORIES",
    "VALUE_NAMES",
    "POSITIONS",
]
