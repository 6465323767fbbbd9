"""The package versions recorded with every set of statistics (and other results):
:func:`package_versions`.

>>> sorted(package_versions())
['clas_lens', 'torch', 'transformer-lens', 'transformers']
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_versions() -> dict[str, str | None]:
    """Versions of torch, transformers, transformer-lens and clas_lens (recorded with results)."""
    import clas_lens

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "transformer-lens"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = None
    out["clas_lens"] = clas_lens.__version__
    return out
