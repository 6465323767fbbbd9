"""The lock of a run directory (:class:`RunLock`), held while a run works in it.

Exclusive through ``flock`` on the lock file :data:`LOCK` (the kernel releases it when the
holder dies, however it dies) and the holder's record in that file (pid, host, start time),
which a refused second run names. The record of a process that no longer runs is a stale lock,
taken over. On a file system without ``flock`` the record alone decides.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from clas_lens.errors import RunDirectoryError, RunLockedError
from clas_lens.io import symlink_error

try:  # POSIX; elsewhere the lock relies on the holder's record alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK", "RunLock"]

#: The lock file of a run directory (JSON: the holder's pid, host and start time).
LOCK = ".clas_lens_lock"


def _proc_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the process that wrote lock record ``holder`` still runs (another host: assumed)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    start = _proc_start(pid)
    return holder.get("proc_start") is None or start is None or start == holder.get("proc_start")


class RunLock:
    """The lock of a run directory, held while a run works in it (a context manager).

    Exclusive through ``flock`` on :data:`LOCK` (released by the kernel when the holder dies)
    and the holder's record in it (pid, host, start time): a second holder raises
    :class:`~clas_lens.errors.RunLockedError` naming the first; the record of a process that no
    longer runs is a stale lock, taken over (``taken_over`` holds it).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with RunLock(d) as lock:  # doctest: +ELLIPSIS
    ...     RunLock(d).acquire()
    Traceback (most recent call last):
    ...
    clas_lens.errors.RunLockedError: ... is in use by process ... (started ...); two runs must not write one run directory. ...
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None
        self.taken_over: dict[str, Any] | None = None

    def _holder(self, fd: int) -> dict[str, Any] | None:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        return rec if isinstance(rec, dict) else None

    def _refuse(self, holder: dict[str, Any] | None) -> RunLockedError:
        who = (
            f"process {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')})"
            if holder else "another process"
        )
        return RunLockedError(
            f"{self.path.parent} is in use by {who}; two runs must not write one run directory. Wait for it to "
            f"finish, or use another run name. If that process is gone, delete {self.path}."
        )

    def acquire(self) -> "RunLock":
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as e:
            if self.path.is_symlink():
                raise symlink_error(self.path) from None
            raise RunDirectoryError(f"Cannot open the lock {self.path}: {e}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._refuse(self._holder(fd)) from None
                except OSError:  # a file system without flock: the record alone decides
                    pass
            holder = self._holder(fd)
            if holder and holder.get("pid") is not None:
                mine = holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
                if not mine and _alive(holder):  # a live holder whose flock did not hold (no flock here)
                    raise self._refuse(holder)
                self.taken_over = None if mine else holder
            me = {
                "pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "proc_start": _proc_start(os.getpid()),
            }
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(me).encode("utf-8"))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # the file stays: unlinking it would let two holders lock two files
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()
