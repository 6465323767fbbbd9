"""Mean residual stream per language: :class:`ResidualMeans` and :func:`residual_means`.

The means of ``blocks.{l}.hook_resid_post`` over each language's real tokens (no BOS, no
padding), accumulated in float64, are the language vectors of DiffMean steering
(``clas_lens.steering.DiffMeanSteering``; docs/methods.md, "Peer methods"). The forward stops
after the deepest requested block (:func:`~clas_lens.stats.reader.read_forward`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.batching import batched, encode
from clas_lens.errors import DataValidationError
from clas_lens.models import model_info
from clas_lens.specs import resolve_layers
from clas_lens.stats.reader import read_forward

__all__ = ["ResidualMeans", "residual_means"]


def _check_lang(lang: str, known: Sequence[str], what: str) -> None:
    if lang not in known:
        raise DataValidationError(f"Unknown language {lang!r} for {what}: it knows {sorted(known)}.")


@dataclasses.dataclass(eq=False)
class ResidualMeans:
    """Mean residual stream (``hook_resid_post``) per language over real tokens, float64.

    ``means[lang]`` is ``Float64[layer, d_model]`` over ``layers`` (in that order).

    >>> import torch
    >>> rm = ResidualMeans(layers=[3], means={"en": torch.ones(1, 4, dtype=torch.float64)}, n_tokens={"en": 5})
    >>> rm.vector("en", 3).tolist(), ResidualMeans.from_dict(rm.to_dict()).n_tokens
    ([1.0, 1.0, 1.0, 1.0], {'en': 5})
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
    """One language's texts of a corpus object or a dict (languages need not be aligned here)."""
    if isinstance(corpus, Mapping):
        _check_lang(lang, list(corpus), "the corpus")
        return list(corpus[lang])
    _check_lang(lang, list(getattr(corpus, "langs", [])), "the corpus")
    return list(corpus.texts(lang))


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

    ``corpus`` is a ParallelCorpus (``.langs``, ``.texts(lang)``) or ``{lang: [texts]}`` (lists
    may differ in length). ``layers``: None (all), ints, ``"last:k"`` (clamped) or any layer spec
    of :func:`clas_lens.specs.resolve_layers`. Sums are accumulated in float64; the forward stops
    after the last requested block.

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> rm = residual_means(model, {"en": ["the cat", "a dog"], "de": ["der Hund"]}, layers=[1])
    >>> tuple(rm.means["de"].shape), rm.means["de"].dtype
    ((1, 32), torch.float64)
    """
    layer_list = resolve_layers(layers, int(model.cfg.n_layers))
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
            read_forward(model, enc, hooks, stop_after_layer=max(layer_list))
            for i in range(len(layer_list)):
                acc[i] += store[i]
            n += int(real.sum())
        if n == 0:
            raise DataValidationError(f"No real tokens for {lang!r} (every text was empty?).")
        means[lang] = acc / n
        counts[lang] = n
    return ResidualMeans(layers=layer_list, means=means, n_tokens=counts, model_info=model_info(model).to_dict())
