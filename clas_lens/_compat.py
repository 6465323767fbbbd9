"""Fixes for known problems of the pinned TransformerLens / transformers pair.

TransformerLens 4.3.0 + transformers 5.24: transformers renamed the attention layers' cache
argument from ``past_key_values`` to ``cache`` (a ``deprecate_kwarg`` shim renames what callers
pass). The bridge's attention components look the cache up under the old names only, so no
key/value is ever stored and every cached decode step attends to itself alone, so cached
greedy generation diverges from HF greedy after a few tokens (docs/architecture.md, "Upstream
workarounds"). The fix below makes
``_update_kv_cache`` find the cache under either name. It is applied once, on import of
clas_lens.generation, and is tested token for token against HF greedy decoding.
"""
from __future__ import annotations

_PATCHED = False


def patch_bridge_kv_cache() -> bool:
    """Teach the bridge attention to find the HF cache under ``cache=``; return True if patched."""
    global _PATCHED
    if _PATCHED:
        return True
    from transformer_lens.model_bridge.generalized_components import attention as attn_mod

    cls = attn_mod.AttentionBridge
    original = cls._update_kv_cache

    def _update_kv_cache(self, k, v, **kwargs):
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs["past_key_values"] = kwargs["cache"]
        return original(self, k, v, **kwargs)

    cls._update_kv_cache = _update_kv_cache
    _PATCHED = True
    return True
