"""environment.yml mirrors pyproject.toml (the single source of dependencies)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pip_section() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    out = []
    for l in lines[start + 1 :]:
        s = l.strip()
        if s.startswith("#") or not s:
            continue
        out.append(s[2:].strip())
    return out


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    got = _pip_section()
    assert "-e ." in got, "environment.yml must install the package itself"
    got = [g for g in got if g != "-e ."]
    assert sorted(got) == sorted(wanted), (
        "environment.yml and pyproject.toml disagree; regenerate the pip section from pyproject"
    )
    env = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.11\s*$", env, re.M)
    assert project["requires-python"].startswith(">=3.11")


def test_torch_is_pinned_and_installed_first():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    make = (ROOT / "Makefile").read_text()
    assert make.index("torch==2.13.0") < make.index("-e '.[")
