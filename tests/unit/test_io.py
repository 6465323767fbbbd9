"""clas_lens.io: atomic writes honour the umask and survive concurrency, links are not followed,
malformed JSON is a DataValidationError naming the file, leftover temporaries are recognised, and
every saved tensor file carries a checksum that catches one flipped bit."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

import clas_lens
from clas_lens.errors import DataValidationError, RunDirectoryError
from clas_lens.io import (
    TEMPORARY_NAME,
    append_jsonl,
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_tensors,
    open_nofollow,
    read_json,
    read_jsonl,
    remove_temporaries,
    save_tensors,
)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_writes_honour_the_umask(tmp_path, umask_027):
    p = atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert p.stat().st_mode & 0o777 == 0o640
    with atomic_directory(tmp_path / "folder") as d:
        (d / "f").write_text("x")
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750
    with open_nofollow(tmp_path / "log.jsonl", "ab") as f:
        f.write(b"{}\n")
    assert (tmp_path / "log.jsonl").stat().st_mode & 0o777 == 0o640


def test_umask_022_gives_world_readable(tmp_path):
    old = os.umask(0o022)
    try:
        assert atomic_write_text(tmp_path / "t.txt", "x").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_read_json_errors_name_the_file(tmp_path):
    p = tmp_path / "run.json"
    p.write_text('{"config": {"run": ')
    with pytest.raises(DataValidationError, match=r"run.json is not a valid run record: not complete JSON.*--restart"):
        read_json(p, "run record")
    p.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(DataValidationError, match="byte 7 is not valid UTF-8"):
        read_json(p)
    atomic_write_json(p, {"a": "ok"})
    assert read_json(p) == {"a": "ok"}


def test_read_jsonl_torn_tail_and_damage(tmp_path):
    p = tmp_path / "cells.jsonl"
    p.write_bytes(b'{"k": 1}\n{"k": 2}\n{"k": "\xe2\x82')  # torn in the middle of a UTF-8 character
    assert read_jsonl(p) == [{"k": 1}, {"k": 2}]
    p.write_bytes(b'{"k": 1}\n{"k": \n{"k": 3}\n')
    with pytest.raises(DataValidationError, match=r"cells.jsonl, line 2: not a valid JSON record"):
        read_jsonl(p)
    p.write_bytes(b'{"k": 1}\n\xff\xff\n{"k": 3}\n')
    with pytest.raises(DataValidationError, match="line 2"):
        read_jsonl(p)
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_links_are_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n{partial")
    run = tmp_path / "run"
    run.mkdir()
    (run / "cells.jsonl").symlink_to(outside)
    with pytest.raises(RunDirectoryError, match="is a symbolic link"):
        append_jsonl(run / "cells.jsonl", {"a": 1})
    with pytest.raises(RunDirectoryError, match="is a symbolic link"):
        read_jsonl(run / "cells.jsonl")
    from clas_lens.sweep.store import repair_tail

    with pytest.raises(RunDirectoryError, match="is a symbolic link"):
        repair_tail(run / "cells.jsonl")
    assert outside.read_text() == "precious\n{partial"  # not truncated, not appended to
    atomic_write_text(run / "cells.jsonl", "new")  # an atomic write replaces the link itself
    assert outside.read_text() == "precious\n{partial" and not (run / "cells.jsonl").is_symlink()


def test_lone_surrogates_are_refused_not_crashed(tmp_path):
    with pytest.raises(DataValidationError, match="lone surrogate"):
        atomic_write_text(tmp_path / "x.txt", "name \udcff")
    with pytest.raises(DataValidationError, match="lone surrogate"):
        atomic_write_json(tmp_path / "x.json", {"name": "\ud800"})
    assert not list(tmp_path.iterdir())


def test_remove_temporaries(tmp_path):
    (tmp_path / "sub").mkdir()
    files = [tmp_path / ".stats.safetensors.abcd_123.tmp", tmp_path / "sub" / ".cells.jsonl.zz99zz99.tmp"]
    for f in files:
        f.write_bytes(b"half")
    (tmp_path / ".reps.partial-a1b2c3d4").mkdir()
    (tmp_path / ".reps.partial-a1b2c3d4" / "x").write_text("x")
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "a.b.tmp", tmp_path / ".x.toolongname.tmp"]
    for f in keep:
        f.write_text("mine")
    removed = remove_temporaries(tmp_path)
    assert {p.name for p in removed} == {f.name for f in files} | {".reps.partial-a1b2c3d4"}
    assert all(f.exists() for f in keep) and not any(f.exists() for f in files)
    assert TEMPORARY_NAME.match(".x.abcdefgh.tmp") and not TEMPORARY_NAME.match("x.abcdefgh.tmp")


def test_a_killed_write_leaves_only_a_temporary(tmp_path):
    """kill -9 during an atomic write: the target is untouched, a temporary is left, and
    remove_temporaries (which every pipeline run calls) deletes it."""
    target = tmp_path / "stats.safetensors"
    target.write_bytes(b"old complete file")
    code = (
        "import os, sys, time\n"
        "import clas_lens.io as io\n"
        "os.fsync = lambda fd: (print('writing', flush=True), time.sleep(60))\n"
        f"io.atomic_write_bytes({str(target)!r}, b'new' * 1000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    temps = [p for p in tmp_path.iterdir() if p.name != target.name]
    assert len(temps) == 1 and TEMPORARY_NAME.match(temps[0].name)
    assert target.read_bytes() == b"old complete file"
    assert remove_temporaries(tmp_path) == temps and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_concurrent_saves_do_not_crash(tmp_path):
    """Threads saving one Reps folder and one file at once: every save succeeds (unique temporary
    names), and what is left is one complete copy."""
    from clas_lens.clusters import Reps

    errors: list[BaseException] = []
    folder, file = tmp_path / "reps" / "clas", tmp_path / "x.json"

    def work(i: int) -> None:
        try:
            for j in range(5):
                r = Reps(vectors=torch.full((1, 2, 3), float(i)), langs=["en", "de"], ids=["a", "a"], layers=[0],
                         pooling="mean")
                r.save(folder)
                atomic_write_json(file, {"i": i, "j": j})
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    loaded = Reps.load(folder)
    assert len(set(loaded.vectors.flatten().tolist())) == 1  # one writer's complete copy
    assert set(read_json(file)) == {"i", "j"}
    assert not [p for p in tmp_path.rglob("*") if TEMPORARY_NAME.match(p.name)]


def _flip_last_data_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte belongs to the last tensor's data
    path.write_bytes(bytes(data))


def test_a_flipped_bit_is_detected(tmp_path):
    p = save_tensors(tmp_path / "t.safetensors", {"a": torch.arange(6.0), "b": torch.ones(2, 2)}, {"k": 1}, "demo/1")
    _flip_last_data_bit(p)
    with pytest.raises(DataValidationError, match="do not match their stored checksum"):
        load_tensors(p, "demo/1", "demo")


def test_every_saved_tensor_file_is_checksummed(tmp_path):
    """NeuronStats, NeuronSet and Reps all save through io.save_tensors: one flipped bit makes
    their load fail; and no module writes safetensors another way."""
    from clas_lens.clusters import Reps
    from clas_lens.neurons import identify_neurons
    from clas_lens.stats import NeuronStats, collect_stats
    from clas_lens.testing import tiny_model

    stats = collect_stats(tiny_model("gemma3"), {"en": ["a cat", "one two"], "sw": ["paka", "moja mbili"]}, site="act")
    neurons = identify_neurons(stats, "clas", criterion="quantile")
    reps = Reps(vectors=torch.randn(1, 2, 3), langs=["en", "de"], ids=["a", "a"], layers=[0], pooling="mean")
    cases = [
        (stats.save(tmp_path / "stats.safetensors"), NeuronStats.load),
        (neurons.save(tmp_path / "neurons.safetensors"), type(neurons).load),
        (reps.save(tmp_path / "reps") / "reps.safetensors", lambda p: Reps.load(Path(p).parent)),
    ]
    for path, load in cases:
        load(path)
        _flip_last_data_bit(Path(path))
        with pytest.raises(DataValidationError, match="checksum"):
            load(path)
    root = Path(clas_lens.__file__).parent
    writers = []
    for f in root.rglob("*.py"):
        if f.name == "io.py" and f.parent == root:
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "safetensors.torch":
                writers += [f"{f.relative_to(root)}: {a.name}" for a in node.names if a.name.startswith("save")]
    assert not writers, f"safetensors written outside clas_lens.io.save_tensors: {writers}"


def test_load_tensors_required_fields(tmp_path):
    p = save_tensors(tmp_path / "q.safetensors", {"q/en": torch.ones(2)}, {"levels": [0.5]}, "demo/1")
    with pytest.raises(DataValidationError, match="metadata has no field 'langs'"):
        load_tensors(p, "demo/1", "quantiles", required=("levels", "langs"))
    with pytest.raises(DataValidationError, match="no tensor 'q/de'"):
        load_tensors(p, "demo/1", "quantiles", tensors_required=("q/de",))
    p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{trunc")
    with pytest.raises(DataValidationError, match="not a readable safetensors file"):
        load_tensors(p, "demo/1", "quantiles")

