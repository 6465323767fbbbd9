"""notebooks/: written by notebooks/_build.py, committed without outputs, each starting with the
common parameters cell, using only public clas_lens names. (Running them is CI's
``pytest --nbmake notebooks/*.ipynb`` on the embedded model, not a unit test.)

Not a code module's test: it covers the notebooks folder.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COMMON = {"MODEL": "default", "DEVICE": "cpu", "DTYPE": "float32", "THREADS": None}


def _read(path):
    return nbformat.read(path, as_version=4)


def test_the_expected_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_neurons", "02_steering", "03_clusters", "04_paper_figures", "05_explorer",
                     "06_one_neuron", "07_compare_methods", "08_paper_table"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_comes_first_with_the_common_parameters(path):
    code = [c for c in _read(path).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell is the papermill parameters cell"
    values = {}
    for node in ast.parse(code[0].source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = ast.literal_eval(node.value)
    for name, default in COMMON.items():
        assert name in values and values[name] == default, f"{path.name}: {name} = {default!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_public_clas_lens_names(path):
    source = "\n".join(c.source for c in _read(path).cells if c.cell_type == "code")
    assert not re.search(r"from clas_lens[\w.]* import [^\n]*\b_\w", source)
    assert not re.search(r"clas_lens(\.\w+)*\._\w", source)


def test_paths_come_from_the_repository_root():
    setup = "\n".join(c.source for c in _read(ROOT / "notebooks" / "04_paper_figures.ipynb").cells)
    assert 'RUN_DIR = "runs/demo"' in setup
    assert "(ROOT or Path.cwd()) / run_dir" in setup and "tempfile.mkdtemp" in setup
    assert "notebook_small" not in setup, "never build runs under notebooks/"


def test_build_script_reproduces_the_committed_notebooks():
    spec = importlib.util.spec_from_file_location("_nb_build", ROOT / "notebooks" / "_build.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        spec.loader.exec_module(module)
        books = module.books()
    finally:
        sys.path.remove(str(ROOT / "notebooks"))
    assert sorted(books) == [p.name for p in NOTEBOOKS]
    for name, book in books.items():
        assert nbformat.writes(book) + "\n" == (ROOT / "notebooks" / name).read_text(), (
            f"{name} differs from notebooks/_build.py: run `.venv/bin/python notebooks/_build.py`"
        )
