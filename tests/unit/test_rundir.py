"""The run directory (clas_lens.pipeline.rundir and .lock, and run_pipeline / check_config around
them): nothing outside a run directory is ever written, emptied or deleted; --restart empties
only a marked run directory; links are refused; one run at a time (stale locks taken over);
temporaries of killed writes are removed; another release's directory and damaged records are
refused with the fix. No model is loaded: every refusal comes before it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import clas_lens.pipeline.run as run_module
from clas_lens.config import RunConfig
from clas_lens.errors import (
    DataValidationError,
    MismatchError,
    NotARunDirectoryError,
    RunDirectoryError,
    RunLockedError,
)
from clas_lens.pipeline.lock import LOCK, RunLock
from clas_lens.pipeline.rundir import (
    MARKER,
    check_no_symlinks,
    claim_run_dir,
    load_run_config,
    prepare_run_dir,
    read_marker,
    run_dir_of,
)
from clas_lens.pipeline.run import check_config, run_pipeline


def _cfg(out: Path, name: str = "r", **sections) -> RunConfig:
    data = {"run": {"name": name, "out_dir": str(out)}, "eval": {"tasks": ["cloze"]}}
    data.update(sections)
    return RunConfig.from_dict(data)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


@pytest.fixture
def no_model(monkeypatch):
    """Every test here must stop before a model loads."""
    monkeypatch.setattr(run_module, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))


def _quiet(_: str) -> None:
    pass


def test_a_new_run_directory_gets_a_marker(tmp_path):
    cfg = _cfg(tmp_path / "runs")
    with claim_run_dir(cfg, log=_quiet) as (run_dir, identity):
        assert run_dir == tmp_path / "runs" / "r" and identity == cfg.identity()
        marker = read_marker(run_dir)
        assert marker["format"] == "clas_lens.run_dir/1" and marker["clas_lens"]
        assert (run_dir / LOCK).exists()


@pytest.mark.parametrize("name", ["../victim", "..", ".", "", "/abs/path", "a/b", "a\\b"])
def test_run_names_that_leave_out_dir_are_refused(tmp_path, name, no_model):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    out = tmp_path / "runs"
    out.mkdir()
    with pytest.raises(DataValidationError, match="'run.name'"):
        _cfg(out, name)
    cfg = _cfg(out)
    cfg.run.name = name  # set after the config was checked: the run directory checks it again
    with pytest.raises(DataValidationError, match="'run.name'"):
        run_pipeline(cfg, restart=True, log=_quiet)
    with pytest.raises(DataValidationError, match="'run.name'"):
        run_dir_of(cfg)
    assert (victim / "precious.txt").read_text() == "keep me" and list(out.iterdir()) == []


def test_restart_refuses_a_folder_that_is_not_a_run_directory(tmp_path, no_model):
    """--restart deletes nothing that clas_lens did not make (the probe's data loss)."""
    out = tmp_path / "runs"
    victim = out / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "thesis.tex").write_text("years of work")
    (victim / "sub" / "data.csv").write_text("1,2")
    (victim / "run.json").write_text("{}")  # even a folder that looks like an old run
    before = _tree(victim)
    for restart in (True, False):
        with pytest.raises(RunDirectoryError, match=r"not a clas_lens run directory.*Nothing in it was changed or deleted"):
            run_pipeline(_cfg(out, "victim"), restart=restart, log=_quiet)
        with pytest.raises(RunDirectoryError, match="not a clas_lens run directory"):
            check_config(_cfg(out, "victim"), restart=restart)
    assert _tree(victim) == before
    (out / "file").write_text("a file, not a folder")
    with pytest.raises(RunDirectoryError, match="not a folder"):
        run_pipeline(_cfg(out, "file"), restart=True, log=_quiet)
    assert (out / "file").read_text() == "a file, not a folder"


def test_restart_empties_a_run_directory_and_keeps_marker_and_lock(tmp_path):
    cfg = _cfg(tmp_path)
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        (run_dir / "stats.safetensors").write_text("old")
        (run_dir / "sweeps" / "cloze").mkdir(parents=True)
        (run_dir / "sweeps" / "cloze" / "cells.jsonl").write_text("{}\n")
    with claim_run_dir(cfg, restart=True, log=_quiet) as (run_dir, _):
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK, MARKER]


def test_an_empty_existing_folder_is_adopted(tmp_path):
    (tmp_path / "r").mkdir()
    with claim_run_dir(_cfg(tmp_path), log=_quiet) as (run_dir, _):
        assert read_marker(run_dir) is not None


def test_links_inside_a_run_directory_are_refused(tmp_path):
    """The probe's tail repair truncated a file outside the run directory through a link."""
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"mine": 1}\n{"torn')
    cfg = _cfg(tmp_path / "runs")
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        sweep = run_dir / "sweeps" / "cloze" / "sweep"
        sweep.mkdir(parents=True)
        (sweep / "cells.jsonl").symlink_to(outside)
    for restart in (False, True):
        with pytest.raises(RunDirectoryError, match=r"cells.jsonl is a symbolic link"):
            with claim_run_dir(cfg, restart=restart, log=_quiet):
                pass
    assert outside.read_text() == '{"mine": 1}\n{"torn'
    (sweep / "cells.jsonl").unlink()
    (run_dir / "reps").symlink_to(tmp_path, target_is_directory=True)  # a linked folder too
    with pytest.raises(RunDirectoryError, match="reps is a symbolic link"):
        check_no_symlinks(run_dir)


def test_a_linked_run_directory_is_refused(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "r").symlink_to(real, target_is_directory=True)
    with pytest.raises(RunDirectoryError, match="is a symbolic link"):
        prepare_run_dir(tmp_path / "runs" / "r")
    with pytest.raises(RunDirectoryError, match="is a symbolic link"):
        check_config(_cfg(tmp_path / "runs"))
    assert list(real.iterdir()) == []


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    cfg = _cfg(tmp_path)
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        with pytest.raises(RunLockedError, match=rf"in use by process {os.getpid()} on .* \(started 2\d\d\d-"):
            with claim_run_dir(cfg, log=_quiet):
                pass
        assert (run_dir / MARKER).exists()
    with claim_run_dir(cfg, log=_quiet):  # released: the next run gets it
        pass


def test_a_lock_held_by_another_process(tmp_path):
    run_dir = prepare_run_dir(tmp_path / "r")
    code = (
        "import sys, time\n"
        "from clas_lens.pipeline.lock import RunLock\n"
        f"lock = RunLock({str(run_dir)!r}).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"in use by process {proc.pid} "):
            RunLock(run_dir).acquire()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    lock = RunLock(run_dir).acquire()  # the kernel dropped the dead holder's lock
    try:
        assert lock.taken_over["pid"] == proc.pid
    finally:
        lock.release()


def test_a_stale_lock_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    cfg = _cfg(tmp_path)
    run_dir = prepare_run_dir(run_dir_of(cfg))
    (run_dir / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                            "started": "2020-01-01T00:00:00+0000"}))
    logs: list[str] = []
    with claim_run_dir(cfg, log=logs.append):
        record = json.loads((run_dir / LOCK).read_text())
        assert record["pid"] == os.getpid()
    assert any(f"took over the lock of process {dead.pid}" in line for line in logs)


def test_a_live_holder_without_flock_is_still_refused(tmp_path, monkeypatch):
    """Where flock does not hold (some network file systems), the record of a live process decides."""
    import clas_lens.pipeline.lock as lock_module

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = prepare_run_dir(tmp_path / "r")
        (run_dir / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "then"}))
        monkeypatch.setattr(lock_module, "fcntl", None)
        with pytest.raises(RunLockedError, match=rf"process {holder.pid} .*\(started then\)"):
            RunLock(run_dir).acquire()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_leftover_temporaries_are_removed_by_the_next_run(tmp_path):
    cfg = _cfg(tmp_path)
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        pass
    (run_dir / "reps").mkdir()
    left = [run_dir / ".stats.safetensors.k3j2h1g0.tmp", run_dir / "reps" / ".clas.partial-abcd1234"]
    left[0].write_bytes(b"half")
    left[1].mkdir()
    (run_dir / "notes.tmp").write_text("the user's")
    logs: list[str] = []
    with claim_run_dir(cfg, log=logs.append):
        assert not any(p.exists() for p in left) and (run_dir / "notes.tmp").exists()
    assert any("removed 2 temporary file(s)" in line for line in logs)


def test_a_directory_of_another_release_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        pass
    marker = json.loads((run_dir / MARKER).read_text())
    (run_dir / MARKER).write_text(json.dumps(dict(marker, clas_lens="0.0.1")))
    with pytest.raises(MismatchError, match=r"made by clas_lens 0.0.1, this is clas_lens .*--restart"):
        with claim_run_dir(cfg, log=_quiet):
            pass
    with pytest.raises(MismatchError, match="made by clas_lens 0.0.1"):
        check_config(cfg)
    with claim_run_dir(cfg, restart=True, log=_quiet):  # --restart: starts again under this release
        assert read_marker(run_dir)["clas_lens"] != "0.0.1"
    (run_dir / MARKER).write_text('{"format": "clas_lens.run_dir/1"')  # truncated marker
    with pytest.raises(DataValidationError, match=r"\.clas_lens_run is damaged"):
        check_config(cfg)


def test_damaged_run_records_are_named(tmp_path):
    cfg = _cfg(tmp_path)
    with claim_run_dir(cfg, log=_quiet) as (run_dir, _):
        pass
    (run_dir / "run.json").write_text('{"config": {"run": {"na')
    with pytest.raises(DataValidationError, match=r"run.json is not a valid run record \(run.json\): not complete JSON"):
        with claim_run_dir(cfg, log=_quiet):
            pass
    (run_dir / "run.json").write_bytes(b'{"config": "\xc3\x28"}')
    with pytest.raises(DataValidationError, match="not valid UTF-8"):
        load_run_config(run_dir)
    (run_dir / "run.json").write_text(json.dumps({"config": cfg.to_dict()}))
    with pytest.raises(DataValidationError, match=r"run.json has no field 'config_sha256'.*--restart"):
        with claim_run_dir(cfg, log=_quiet):
            pass
    (run_dir / "run.json").write_text(json.dumps({"config_sha256": "x"}))
    with pytest.raises(DataValidationError, match="has no field 'config'"):
        load_run_config(run_dir)
    (run_dir / "run.json").write_text(json.dumps({"config": cfg.to_dict(), "config_sha256": "other"}))
    with pytest.raises(MismatchError, match="different config"):
        with claim_run_dir(cfg, log=_quiet):
            pass
    with pytest.raises(NotARunDirectoryError, match="no run.json"):
        load_run_config(tmp_path / "nothing")
    assert issubclass(NotARunDirectoryError, FileNotFoundError)


def test_check_config_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    notes = check_config(_cfg(out))
    assert notes[-1] == f"run directory: {out / 'r'} (new)" and not out.exists()
    with claim_run_dir(_cfg(out), log=_quiet) as (run_dir, _):
        pass
    before = _tree(out)
    assert "a rerun resumes it" in check_config(_cfg(out))[-1]
    (run_dir / "run.json").write_text(json.dumps({"config": {}, "config_sha256": "another config"}))
    with pytest.raises(MismatchError, match="different config"):
        check_config(_cfg(out))
    assert "--restart empties it" in check_config(_cfg(out), restart=True)[-1]
    (run_dir / "run.json").unlink()
    assert _tree(out) == before
