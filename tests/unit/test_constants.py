"""Each constant is defined once: no two modules assign the same literal collection (or the
same long string) to a top-level name. Aliases (``X = other.Y``) are fine; copies are not."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import clas_lens

ROOT = Path(clas_lens.__file__).resolve().parent


def _literal(node):
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, (tuple, list, set, frozenset)) and len(value) >= 3:
        return repr(sorted(map(repr, value)))
    if isinstance(value, dict) and len(value) >= 3:
        return repr(sorted((repr(k), repr(v)) for k, v in value.items()))
    return None


def test_no_constant_is_defined_twice():
    seen = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets, value = [], None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") in ("frozenset", "set", "tuple"):
                value = value.args[0] if value.args else value
            key = _literal(value) if value is not None else None
            for t in targets:
                if key and isinstance(t, ast.Name) and t.id.isupper() and t.id != "__all__":
                    seen[key].append(f"{path.relative_to(ROOT)}:{node.lineno} {t.id}")
    dup = {k: v for k, v in seen.items() if len({s.split(':')[0] for s in v}) > 1}
    assert not dup, "constants defined in more than one module:\n" + "\n".join(" = ".join(v) for v in dup.values())
