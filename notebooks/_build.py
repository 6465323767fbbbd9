"""Write the notebooks from these scripts (narrative + calls; outputs are never committed).

Run: .venv/bin/python notebooks/_build.py

This file holds what every notebook shares (the parameters every notebook starts with, the
set-up cell that finds the repository root and loads the model); the notebooks themselves are
in ``_book_core.py`` (01-04: neurons, steering, clusters, paper figures) and
``_book_explore.py`` (05-08: explorer, one neuron, methods compared, paper table).
CI runs each with ``pytest --nbmake notebooks/*.ipynb`` on the embedded Gemma-3-270M, so the
default sizes keep each one to about two minutes on two CPU cores.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

#: The parameters every notebook starts with (papermill: the cell tagged "parameters").
COMMON_PARAMS = '''
MODEL = "default"    # the embedded Gemma-3-270M, a local Hugging Face model folder, or a hub id
DEVICE = "cpu"       # e.g. "cuda", "cuda:1", "mps"
DTYPE = "float32"    # e.g. "bfloat16" on a GPU
THREADS = None       # torch CPU threads; None: torch's default, or $CLAS_LENS_THREADS when set
'''

#: Finds the repository root and applies THREADS; no model.
ROOT_CELL = '''
import os
import warnings
from pathlib import Path

import torch
import clas_lens
from clas_lens import plotting


def find_repo_root(start="."):
    """The nearest folder upward from ``start`` (the notebook's working directory) that holds
    pyproject.toml and the clas_lens package; None outside a checkout (e.g. a pip install)."""
    here = Path(start).resolve()
    return next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file() and (p / "clas_lens").is_dir()), None)


# transformers 5.x warns at every generation step about a keyword it renames in 5.40 (pinned below)
warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
ROOT = find_repo_root()
threads = THREADS if THREADS is not None else os.environ.get("CLAS_LENS_THREADS")
if threads:
    torch.set_num_threads(int(threads))
plotting.set_defaults()  # one place sets the plotly template
print("repository:", ROOT, "| torch threads:", torch.get_num_threads())
'''

#: ROOT_CELL + the model and the corpus (LANGS, N_SENTENCES from the notebook's parameters).
SETUP = ROOT_CELL + '''
model = clas_lens.load_model(MODEL, device=DEVICE, dtype=getattr(torch, DTYPE))
corpus = clas_lens.load_corpus("default", langs=LANGS)
corpus = corpus.subset(ids=corpus.ids[:N_SENTENCES])
print(clas_lens.model_info(model).model_id, "on", DEVICE, DTYPE, "|", len(corpus), "parallel sentences x", corpus.langs)
'''


def params(extra: str) -> tuple[str, str]:
    """The parameters cell: the common parameters, then the notebook's own."""
    return ("params", COMMON_PARAMS.strip() + "\n" + extra.strip())


def nb(cells) -> nbf.NotebookNode:
    book = nbf.v4.new_notebook()
    out = []
    for kind, src in cells:
        if kind == "md":
            out.append(nbf.v4.new_markdown_cell(src.strip()))
        elif kind == "params":
            c = nbf.v4.new_code_cell(src.strip())
            c.metadata["tags"] = ["parameters"]
            out.append(c)
        else:
            out.append(nbf.v4.new_code_cell(src.strip()))
    for i, cell in enumerate(out):  # stable ids: rebuilding leaves unchanged notebooks unchanged
        cell["id"] = f"cell-{i:02d}"
    book.cells = out
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    return book


def books() -> dict[str, nbf.NotebookNode]:
    sys.path.insert(0, str(HERE))
    import _book_core
    import _book_explore

    return {**_book_core.books(), **_book_explore.books()}


if __name__ == "__main__":
    for name, book in books().items():
        nbf.write(book, HERE / name)
        print("wrote", name)
