"""Which token positions a steering hook edits: real tokens only, all of them or the last,
with or without the BOS token.

The attention mask of the running forward is captured by :class:`PadTracker`, pre-forward hooks
on the bridge and on the wrapped Hugging Face model (``model.original_model``), which every
bridge path goes through (``forward``, ``run_with_cache``, the bridge's and clas_lens's
``generate``). A mask given to ``model(...)`` is used as is; a list of strings without a mask
gets the mask the bridge itself would build; a tensor without a mask counts every position as
real. :func:`masked_edit` turns a rule on the selected neurons into an edit function that
leaves padding and unselected positions untouched.

**BOS.** The tracker also marks each row's BOS position: the row's first real token (left or
right padding) when its id is the tokenizer's ``bos_token_id`` -- the rule by which
:func:`clas_lens.batching.encode` leaves BOS out of the statistics (``real_mask``). Without
token ids (``inputs_embeds``) the first real token counts as BOS when the tokenizer has a BOS
token and ``model.cfg.default_prepend_bos`` is true. In a KV-cached step the first real token
lies in the cached prefix, so no position of the step is BOS. Edits built with
``edit_bos=False`` (the default of every neuron edit) leave the BOS position untouched.

>>> check_positions("last")
'last'
"""
from __future__ import annotations

from typing import Callable

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from clas_lens.errors import ClasLensError, DataValidationError
from clas_lens.vocab import POSITIONS

#: Attribute of the model that holds its tracker (set with ``object.__setattr__``).
_ATTR = "_clas_lens_pad_tracker"


class PadTracker:
    """Holds the attention mask of the forward in progress, for the steering hooks.

    Installed once per model (:func:`pad_tracker`) as pre-/post-forward hooks on the bridge and
    on the wrapped Hugging Face model. Outside a forward ``mask`` is None.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> tr = pad_tracker(model)
    >>> tr.mask is None, tr.select(2, 3, "last", "cpu").tolist()
    (True, [[False, False, True], [False, False, True]])
    """

    def __init__(self, model) -> None:
        self.model = model
        self.module = model.original_model
        self.mask: Tensor | None = None  # bool [batch, total_len] or None (all real)
        self.bos: Tensor | None = None  # bool [batch, total_len]: each row's BOS position, or None (no BOS)
        self._strings: tuple[str, bool] | None = None
        self._memo: dict[tuple, Tensor | None] = {}
        self.handles = [
            model.register_forward_pre_hook(self._bridge_pre, with_kwargs=True),
            model.register_forward_hook(self._bridge_post, always_call=True),
            self.module.register_forward_pre_hook(self._hf_pre, with_kwargs=True),
            self.module.register_forward_hook(self._hf_post, always_call=True),
        ]

    def remove(self) -> None:
        """Remove the tracker's hooks from the model."""
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
        self.bos = self._find_bos(ids if isinstance(ids, Tensor) and ids.ndim == 2 else None, mask, kwargs)
        self._memo = {}

    def _hf_post(self, module, args, output) -> None:
        self.mask = None
        self.bos = None
        self._memo = {}

    def _find_bos(self, ids: Tensor | None, mask: Tensor | None, kwargs) -> Bool[Tensor, "batch pos"] | None:
        """Each row's BOS position over the full (cached + new) length, or None if there is none."""
        tok = getattr(self.model, "tokenizer", None)
        bos_id = getattr(tok, "bos_token_id", None)
        if bos_id is None:
            return None
        if mask is None:
            if ids is None or _past_length(kwargs) > 0:
                return None  # without a mask a cached step's first position is not the sequence start
            mask = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
        batch, total = mask.shape
        first = mask.int().argmax(dim=1)  # the first real position of each row
        found = mask.any(dim=1)
        if ids is None:
            found = found & bool(getattr(self.model.cfg, "default_prepend_bos", True))
        else:
            offset = first - (total - ids.shape[1])  # its index among the ids of this forward
            found = found & (offset >= 0)
            at = ids.gather(1, offset.clamp(min=0).unsqueeze(1).to(ids.device)).squeeze(1).to(mask.device)
            found = found & (at == bos_id)
        if not bool(found.any()):
            return None
        out = torch.zeros(batch, total, dtype=torch.bool, device=mask.device)
        out[torch.arange(batch, device=mask.device), first] = found
        return out

    def select(
        self, batch: int, pos: int, positions: str, device, edit_bos: bool = True
    ) -> Bool[Tensor, "batch pos"] | None:
        """Positions to steer in a ``[batch, pos, ...]`` activation; None means all of them.

        ``edit_bos=False`` leaves out each row's BOS position (see the module docstring).
        """
        key = (batch, pos, positions, edit_bos)
        if key in self._memo:
            return self._memo[key]
        sel = self._select(batch, pos, positions, device)
        bos = self.bos
        if not edit_bos and bos is not None and bos.shape[0] == batch and bos.shape[1] >= pos:
            win = bos[:, bos.shape[1] - pos :].to(device)
            if bool(win.any()):
                keep = ~win
                sel = keep if sel is None else sel & keep
        self._memo[key] = sel
        return sel

    def _select(self, batch: int, pos: int, positions: str, device) -> Bool[Tensor, "batch pos"] | None:
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
        return sel


def _past_length(kwargs) -> int:
    """How many cached positions precede this forward (0 without a cache)."""
    past = kwargs.get("past_key_values")
    if past is not None and callable(getattr(past, "get_seq_length", None)):
        return int(past.get_seq_length())
    cache_position = kwargs.get("cache_position")
    if isinstance(cache_position, Tensor) and cache_position.numel():
        return int(cache_position.min())
    return 0


def pad_tracker(model) -> PadTracker:
    """The model's padding tracker, installed on first use (cheap, permanent, idempotent).

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("gpt2")
    >>> pad_tracker(model) is pad_tracker(model)
    True
    """
    tr = getattr(model, _ATTR, None)
    if tr is not None and tr.module is model.original_model and tr.handles:
        return tr
    if tr is not None:
        tr.remove()
    tr = PadTracker(model)
    object.__setattr__(model, _ATTR, tr)
    return tr


def check_positions(positions: str) -> str:
    """``positions`` if it is one of :data:`clas_lens.vocab.POSITIONS`, else a DataValidationError."""
    if positions not in POSITIONS:
        raise DataValidationError(f"positions={positions!r}: choose one of {list(POSITIONS)}.")
    return positions


def masked_edit(
    tracker: PadTracker,
    positions: str,
    idx: Int[Tensor, " k"],
    rule: Callable[[Tensor], Tensor],
    edit_bos: bool = True,
) -> Callable[[Tensor], Tensor]:
    """An edit function that applies ``rule`` to the neurons ``idx`` at the steered positions.

    ``edit_bos=False`` leaves the BOS position of each row untouched; the interventions pass
    their own ``edit_bos`` (default False there).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> fn = masked_edit(pad_tracker(tiny_model("llama")), "last", torch.tensor([0]), lambda h: h + 1)
    >>> fn(torch.zeros(1, 2, 2)).tolist()
    [[[0.0, 0.0], [1.0, 0.0]]]
    """

    def fn(h: Float[Tensor, "batch pos neuron"]) -> Float[Tensor, "batch pos neuron"]:
        ix = idx.to(h.device)  # a no-op unless the layer lives on another device (device_map)
        sub = h.index_select(-1, ix)
        new = rule(sub)
        sel = tracker.select(h.shape[0], h.shape[1], positions, h.device, edit_bos)
        if sel is not None:
            new = torch.where(sel.unsqueeze(-1), new, sub)
        out = h.clone()
        out[..., ix] = new.to(h.dtype)
        return out

    return fn


def identity(h: Tensor) -> Tensor:
    """The edit of a no-op: hands back the very tensor it received (bit-identical logits)."""
    return h
