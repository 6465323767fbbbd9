"""Small duck-typed stand-ins shared by the evaluation and sweep tests (and the kill -9 child).

``ToyTask`` is a choice task scored by the model itself: the prompt's next-token log-probs of
four fixed option tokens; ``FakeNeurons`` / ``FakeStats`` mimic NeuronSet / NeuronStats.
"""
from __future__ import annotations

import time
import types

import pandas as pd
import torch

LANGS = ["en", "de", "ru"]
TEXTS = {
    "en": ["the cat sat on", "one two three", "Monday Tuesday", "the dog", "a cat", "the mat is", "1 2 3", "hello world"],
    "de": ["Der Hund schläft", "eins zwei drei", "im Garten", "die Katze", "der Hund", "ein Tag", "1 2 3 4", "Hallo Welt"],
    "ru": ["Привет, как дела", "один два", "мир", "кот", "собака", "дом", "1 2", "Привет мир"],
}


class ToyTask:
    name = "toy"
    mode = "choice"
    metrics = ["accuracy"]

    def __init__(self, langs=LANGS, n=8, delay=0.0, name="toy"):
        self.name = name
        self._langs = list(langs)
        self.n = n
        self.delay = delay
        self.calls: list[str] = []

    @property
    def langs(self):
        return list(self._langs)

    def items(self, lang):
        if lang not in self._langs:
            from clas_lens.errors import DataValidationError

            raise DataValidationError(f"ToyTask has no language {lang!r}.")
        return [
            types.SimpleNamespace(id=f"{lang}-{k}", lang=lang, prompt=TEXTS.get(lang, TEXTS["en"])[k % 8], options=["a", "b", "c", "d"], answer=k % 4)
            for k in range(self.n)
        ]

    @torch.no_grad()
    def predict(self, model, lang, *, limit=None, batch_size=32):
        from clas_lens.batching import encode

        self.calls.append(lang)
        if self.delay:
            time.sleep(self.delay)
        items = self.items(lang)[:limit]
        enc = encode(model, [it.prompt for it in items], padding_side="left")
        logp = model(enc.input_ids, attention_mask=enc.attention_mask)[:, -1].log_softmax(-1)
        opt = [model.tokenizer.convert_tokens_to_ids(o) for o in items[0].options]
        scores = logp[:, opt]
        rows = []
        for it, s in zip(items, scores):
            pred = int(s.argmax())
            others = [float(v) for j, v in enumerate(s.tolist()) if j != it.answer]
            rows.append(
                {
                    "task": self.name,
                    "lang": lang,
                    "item_id": it.id,
                    "prediction": it.options[pred],
                    "reference": it.options[it.answer],
                    "accuracy": float(pred == it.answer),
                    "margin": float(s[it.answer]) - max(others),
                }
            )
        return pd.DataFrame(rows)


class FakeNeurons:
    """A duck-typed NeuronSet with random disjoint categories (seeded)."""

    def __init__(self, shape, langs=LANGS, seed=0, p_spec=0.2, p_shared=0.3, model_info=None):
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(shape, generator=g)
        self.langs = list(langs)
        self.site = "post"
        self.model_info = model_info
        self._shared = {"partial_shared": u < p_shared, "all_shared": (u >= p_shared) & (u < p_shared + 0.05)}
        base = p_shared + 0.05
        self._spec = {l: (u >= base + i * p_spec) & (u < base + (i + 1) * p_spec) for i, l in enumerate(self.langs)}

    def mask(self, category, lang=None):
        if category == "specific":
            if lang is None:
                out = torch.zeros_like(self._shared["partial_shared"])
                for m in self._spec.values():
                    out |= m
                return out
            return self._spec[lang].clone()
        return self._shared[category].clone()


class FakeStats:
    def __init__(self, shape, langs=LANGS, site="post", seed=1):
        g = torch.Generator().manual_seed(seed)
        self.langs = list(langs)
        self.site = site
        self.model_info = None
        self._mean = {l: 3 * torch.randn(shape, generator=g, dtype=torch.float64) for l in self.langs}

    def mean(self, lang):
        return self._mean[lang].clone()


class DuckCorpus:
    """The minimal corpus interface (langs, ids, texts, hash) that analysis functions rely on."""

    def __init__(self, data, ids=None):
        self.data = data
        self.langs = list(data)
        self.ids = ids or [f"x{i}" for i in range(len(next(iter(data.values()))))]

    def texts(self, lang):
        return list(self.data[lang])

    def hash(self):
        return "hash-" + "-".join(self.ids)
