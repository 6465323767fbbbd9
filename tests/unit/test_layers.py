"""The import graph points one way: no module imports a higher layer (lazy imports included),
and no module imports another module's private names. See docs/architecture.md, "Layers"."""
from __future__ import annotations

import ast
from pathlib import Path

import clas_lens

ROOT = Path(clas_lens.__file__).resolve().parent

#: Lowest first; modules of one layer may import each other.
LAYERS: list[set[str]] = [
    {"errors", "checks", "io", "vocab", "specs", "languages", "_compat"},
    {"sites"},
    {"models"},
    {"batching", "prefix", "unembed", "generation", "testing"},
    {"data"},
    {"scoring", "lm_nll", "metrics"},
    {"stats"},
    {"neurons"},
    {"attribution"},
    {"steering"},
    {"evaluation"},
    {"sweep"},
    {"clusters", "positive_control"},
    {"distributed"},
    {"report"},
    {"plotting"},
    {"config"},
    {"pipeline"},
    {"cli", "__main__", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
#: Deliberate, documented exceptions (importer file, imported top-level module).
ALLOWED_UP = {
    # deprecated Task.predict / Task.evaluate forward to evaluation for one release
    ("data/tasks/base.py", "evaluation"),
}
#: What plotting (pure figures from tables) may import.
PLOTTING_MAY_IMPORT = {"errors", "io", "vocab", "specs", "languages", "plotting", "metrics"}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        yield rel, rel.split("/")[0].removesuffix(".py"), ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree, rel):
    pkg = ["clas_lens"] + rel.split("/")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("clas_lens."):
                    yield a.name.split(".")[1], [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([mod] if mod else []))
            if mod == "clas_lens":
                for a in node.names:
                    yield a.name, [], node.lineno
            elif mod.startswith("clas_lens."):
                yield mod.split(".")[1], [a.name for a in node.names], node.lineno


def test_every_module_has_a_layer():
    tops = {top for _, top, _ in _modules()}
    assert tops <= set(RANK), f"add these to LAYERS (and to docs/architecture.md): {sorted(tops - set(RANK))}"


def test_no_edge_from_a_lower_layer_to_a_higher_one():
    bad = []
    for rel, top, tree in _modules():
        for target, _, line in _imports(tree, rel):
            if target in RANK and RANK[target] > RANK[top] and (rel, target) not in ALLOWED_UP:
                bad.append(f"{rel}:{line} imports clas_lens.{target}")
    assert not bad, "imports that point up the layer order:\n" + "\n".join(bad)


def test_plotting_imports_no_model_code():
    bad = [f"{rel}:{line} -> {t}" for rel, top, tree in _modules() if top == "plotting"
           for t, _, line in _imports(tree, rel) if t not in PLOTTING_MAY_IMPORT]
    assert not bad, bad


def test_no_private_names_across_modules():
    bad = []
    for rel, top, tree in _modules():
        pkg = ["clas_lens"] + rel.split("/")[:-1]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            mod = node.module or ""
            if node.level:
                mod = ".".join(pkg[: len(pkg) - node.level + 1] + ([mod] if mod else []))
            if mod.startswith("clas_lens"):
                bad += [f"{rel}:{node.lineno} imports {a.name} from {mod}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad
