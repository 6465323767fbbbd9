"""clas_lens/__init__.py: lazy exports, submodules as attributes, and ``from clas_lens import *``."""
from __future__ import annotations

import importlib
import subprocess
import sys

import clas_lens


def test_star_import_works():
    code = "from clas_lens import *; import clas_lens; assert callable(load_model) and sweep.run_sweep; print(len(clas_lens.__all__))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_every_exported_name_resolves():
    for name in clas_lens.__all__:
        assert getattr(clas_lens, name) is not None, name
    assert sorted(dir(clas_lens)) == sorted(clas_lens.__all__)
