"""Applying interventions: :func:`steer` installs their hooks for a ``with`` block.

Everything that runs the model inside the block is steered -- ``model(...)``,
``run_with_cache``, :func:`clas_lens.generate` (cached or not), task scoring -- and the hooks
are removed when the block ends, also when it raises. :func:`bind_lang` binds per-language
templates (``target_lang=None``) to one language, as :func:`clas_lens.evaluation.evaluate`
does for each evaluated language.

Composition: interventions are applied in the order given. At the ``post`` site each one sees
the previous one's output; at the ``act`` site of a gated MLP each one sees the model's own
``act_fn(gate)`` values and the last writer wins on a neuron that two of them edit.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from clas_lens.errors import DataValidationError
from clas_lens.sites import HookPair
from clas_lens.steering.registry import Intervention, as_interventions


def bind_lang(interventions, lang: str) -> list[Intervention]:
    """Bind every per-language template (``needs_lang``) to ``lang``; the others stay as they are.

    >>> import torch
    >>> from clas_lens.steering import Deactivate
    >>> iv = Deactivate({"de": torch.eye(2, 64, dtype=torch.bool)})
    >>> [x.target_lang for x in bind_lang([iv, None], "de")]
    ['de']
    """
    out = []
    for iv in as_interventions(interventions):
        if getattr(iv, "needs_lang", False):
            iv = iv.for_lang(lang)
        out.append(iv)
    return out


@contextlib.contextmanager
def steer(model, *interventions) -> Iterator[Any]:
    """Install the hooks of ``interventions`` (in order) for the duration of the block.

    Arguments may be interventions, their dicts, lists of them, or None (ignored). The hooks
    are removed on leaving the block, whether it ends normally or raises.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens import generate
    >>> from clas_lens.steering import AddNeurons
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
