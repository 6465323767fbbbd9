"""Saving figures: self-contained HTML always, PNG / SVG / PDF through kaleido when a browser is
found.

Owns :func:`save_figure` (HTML, PNG, SVG and PDF by default; ``size="single"`` /
``"double"`` lays the figure out for print and saves PNGs at 300 dpi), the check :func:`static_export_available`, the Chrome/Chromium lookup
(``BROWSER_PATH``, then :data:`BROWSER_NAMES` on PATH, then :data:`BROWSER_PATHS`) and its one
message saying how to fix a missing browser. HTML inlines plotly.js (works offline) and is
written atomically. Static formats go through kaleido 1.x, imported only when used. A missing
browser is reported (a :class:`StaticExportWarning` and a message per format), never raised:
kaleido's own ``get_chrome()`` downloads Chrome and fails offline, so clas_lens never calls it;
install Debian's ``chromium`` or point ``BROWSER_PATH`` at a Chrome instead.

>>> "png" in STATIC_FORMATS and "chromium" in BROWSER_NAMES
True
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import plotly.graph_objects as go

from clas_lens.io import atomic_write_bytes, atomic_write_text
from clas_lens.plotting.geometry import SizePreset, get_size
from clas_lens.plotting.layout import resize
from clas_lens.plotting.style import DEFAULT_HEIGHT, DEFAULT_WIDTH

__all__ = [
    "BROWSER_NAMES",
    "BROWSER_PATHS",
    "STATIC_FORMATS",
    "StaticExportWarning",
    "export_session",
    "save_figure",
    "static_export_available",
]

STATIC_FORMATS: tuple[str, ...] = ("png", "svg", "pdf", "jpeg", "webp")
#: Chrome / Chromium executables looked for on PATH, then at these absolute paths.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome")
BROWSER_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser",
                 "/usr/bin/google-chrome-stable", "/usr/bin/google-chrome", "/snap/bin/chromium",
                 "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                 "/Applications/Chromium.app/Contents/MacOS/Chromium")
_FIX = ("install a Chromium (Debian/Ubuntu: `apt-get install -y --no-install-recommends "
        "chromium`) or set BROWSER_PATH to a Chrome/Chromium executable; kaleido.get_chrome() "
        "downloads Chrome and fails offline")


class StaticExportWarning(UserWarning):
    """PNG/SVG/PDF export was skipped or failed; the HTML file was still written."""


def _is_exe(p: str | os.PathLike) -> bool:
    return os.path.isfile(p) and os.access(p, os.X_OK)


def _find_browser() -> str | None:
    """A Chrome/Chromium on PATH, at a usual path, or one kaleido downloaded earlier."""
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found and _is_exe(found):
            return found
    for p in BROWSER_PATHS:
        if _is_exe(p):
            return p
    try:  # a Chrome fetched by kaleido.get_chrome() on a machine with internet
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False, skip_typical=True)
        if found and _is_exe(found):
            return str(found)
    except Exception:  # noqa: BLE001 (best effort, any failure means "not found")
        pass
    return None


def _export_browser() -> tuple[str | None, str]:
    """(browser path or None, reason)."""
    if importlib.util.find_spec("kaleido") is None:
        return None, ("kaleido is not installed: `pip install 'clas_lens[figures]'` "
                      "(kaleido>=1), then " + _FIX)
    try:
        from importlib.metadata import version

        kver = version("kaleido")
    except Exception:  # noqa: BLE001
        kver = "?"
    if kver.split(".")[0] == "0":
        return None, (f"kaleido {kver} is too old: clas_lens needs kaleido>=1 "
                      "(`pip install 'kaleido>=1,<2'`), which drives a system Chrome")
    env = os.environ.get("BROWSER_PATH")
    if env:
        if _is_exe(env):
            return env, f"kaleido {kver} with the browser at {env} (BROWSER_PATH)"
        return None, (f"BROWSER_PATH={env!r} is not an executable file: fix or unset it; "
                      + _FIX)
    found = _find_browser()
    if found:
        return found, f"kaleido {kver} with the browser at {found}"
    return None, (f"no Chrome/Chromium found (looked for {list(BROWSER_NAMES)} on PATH and at "
                  f"{list(BROWSER_PATHS[:4])}); " + _FIX)


def static_export_available() -> tuple[bool, str]:
    """Whether PNG/SVG/PDF export can run here, and why (or why not, and how to fix it).

    Needs kaleido>=1 and a Chrome/Chromium: ``BROWSER_PATH`` if set, else one on PATH
    (``chromium``, ``google-chrome``...) or at a usual path such as ``/usr/bin/chromium``.

    >>> ok, reason = static_export_available()
    >>> isinstance(ok, bool) and ("browser at" in reason if ok else "BROWSER_PATH" in reason
    ...                           or "kaleido" in reason)
    True
    """
    path, reason = _export_browser()
    return path is not None, reason


def _kaleido_export(fig: go.Figure, formats: Sequence[str], *, browser: str, width: int,
                    height: int, scale: float, timeout: float) -> dict[str, bytes]:
    """Render ``fig`` once per format in a headless browser started for it (kaleido 1.x)."""
    session = _Session(browser, timeout)
    try:
        return session.render(fig, formats, dict(width=width, height=height, scale=scale))
    finally:
        session.close()


class _Session:
    """One kaleido browser kept open on its own thread and event loop, so that it also works inside
    Jupyter's running loop (one figure: :func:`_kaleido_export`; several: :func:`export_session`)."""

    def __init__(self, browser: str, timeout: float) -> None:
        import kaleido  # lazy: heavy, optional

        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="clas_lens-kaleido", daemon=True)
        self.thread.start()

        async def start():
            k = kaleido.Kaleido(n=1, timeout=timeout, mathjax=False, path=browser)
            await k.__aenter__()
            return k

        try:
            self.kaleido = self._run(start(), timeout + 60)
        except BaseException:
            self._stop()
            raise

    def _run(self, coro, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def render(self, fig: go.Figure, formats: Sequence[str], opts: dict) -> dict[str, bytes]:
        return {fmt: self._run(self.kaleido.calc_fig(fig, opts=dict(opts, format=fmt)), self.timeout + 60)
                for fmt in formats}

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        if not self.thread.is_alive():
            self.loop.close()

    def close(self) -> None:
        try:
            self._run(self.kaleido.__aexit__(None, None, None), 60)
        finally:
            self._stop()


#: The sessions of the :func:`export_session` blocks in progress (innermost last).
_SESSIONS: list[_Session] = []


@contextlib.contextmanager
def export_session(timeout: float = 120.0) -> Iterator[bool]:
    """Keep one headless browser open for every :func:`save_figure` in the block.

    Static export starts a browser for each figure (about 3 s, against about 0.4 s to render a
    figure as PNG and SVG); inside this block the figures share one. Yields True when a browser
    was started; False when there is none (or it did not start), and ``save_figure`` then
    reports as usual, HTML is still written. The browser is closed when the block ends.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d, export_session():
    ...     sorted(save_figure(go.Figure(), pathlib.Path(d) / "a", formats=("html",)))
    ['html']
    """
    browser, _ = _export_browser()
    session = None
    if browser is not None:
        try:
            session = _Session(browser, timeout)
        except Exception as e:  # noqa: BLE001 (save_figure starts its own and reports)
            warnings.warn(f"export_session: the browser did not start ({type(e).__name__}: {e}); "
                          "each figure starts its own.", StaticExportWarning, stacklevel=3)
    if session is None:
        yield False
        return
    _SESSIONS.append(session)
    try:
        yield True
    finally:
        _SESSIONS.remove(session)
        session.close()


def save_figure(fig: go.Figure, path: str | os.PathLike,
                formats: Sequence[str] = ("html", "png", "svg", "pdf"), width: int | None = None,
                height: int | None = None, *, scale: float | None = None,
                size: str | SizePreset | None = None,
                timeout: float = 120.0) -> dict[str, Path | str]:
    """Write ``fig`` as self-contained HTML (always) and PNG/SVG/PDF when a Chrome is found.

    ``path`` is the file stem; a known extension (``.html``, ``.png``...) is dropped, so
    ``figs/overlap`` and ``figs/overlap.png`` both give ``figs/overlap.html``,
    ``figs/overlap.png``... HTML inlines plotly.js (works offline, ~5 MB) and is written
    atomically. Static formats go through kaleido 1.x and the browser that
    :func:`static_export_available` finds, in one browser session (the one of an enclosing
    :func:`export_session`, which saves starting a browser per figure), at ``width`` x ``height``
    (default: the figure's size, else 1000 x 600) times ``scale`` (default 2). PDF pages are
    ``width / 96`` inches wide. ``size="single"`` (one column, 3.5 in) or ``"double"`` (two
    columns, 7.2 in) first lays the figure out for print (:func:`clas_lens.plotting.layout.resize`:
    fonts, width, margins, legend; better still, build it with the figure function's own
    ``size=``), and makes the default ``scale`` give 300 dpi PNGs. If no browser is found or
    the export fails, nothing is raised: the entry for that format holds a message saying why
    and how to fix it, and a :class:`StaticExportWarning` is emitted.

    Returns ``{format: Path}`` for written files and ``{format: message}`` for skipped ones.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = save_figure(go.Figure(go.Bar(x=["a"], y=[1])), pathlib.Path(d) / "demo.png",
    ...                       formats=("html",))
    ...     out["html"].name, out["html"].stat().st_size > 1_000_000
    ('demo.html', True)
    """
    if not isinstance(fig, go.Figure):
        raise TypeError(f"save_figure needs a plotly go.Figure, got {type(fig).__name__}")
    if size is not None:
        preset = get_size(size)
        fig = resize(fig, preset)
        scale = preset.scale if scale is None else scale
    scale = 2.0 if scale is None else float(scale)
    if isinstance(formats, str):
        formats = (formats,)
    wanted: list[str] = []
    for f in formats:
        f = str(f).lower().lstrip(".")
        f = {"jpg": "jpeg", "htm": "html"}.get(f, f)
        if f not in ("html",) + STATIC_FORMATS:
            raise ValueError(f"unknown figure format {f!r}; choose from "
                             f"{['html', *STATIC_FORMATS]}")
        if f not in wanted:
            wanted.append(f)
    stem = Path(path)
    if stem.suffix.lower().lstrip(".") in ("html", "htm", "jpg", *STATIC_FORMATS):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)

    def target(fmt: str) -> Path:
        return stem.with_name(f"{stem.name}.{fmt}")

    out: dict[str, Path | str] = {}
    page = fig.to_html(include_plotlyjs=True, full_html=True,
                       config={"displaylogo": False, "responsive": True})
    out["html"] = atomic_write_text(target("html"), page)

    static = [f for f in wanted if f != "html"]
    if not static:
        return out
    browser, reason = _export_browser()
    if browser is None:
        msg = f"{'/'.join(s.upper() for s in static)} not written: {reason}. HTML was written."
    else:
        w = int(width or fig.layout.width or DEFAULT_WIDTH)
        h = int(height or fig.layout.height or DEFAULT_HEIGHT)
        try:
            if _SESSIONS:  # the browser of the enclosing export_session()
                images = _SESSIONS[-1].render(fig, static, dict(width=w, height=h, scale=scale))
            else:
                images = _kaleido_export(fig, static, browser=browser, width=w, height=h,
                                         scale=scale, timeout=timeout)
            for fmt in static:
                data = images.get(fmt) or b""
                if not data:
                    raise RuntimeError(f"kaleido returned no {fmt.upper()} bytes")
                out[fmt] = atomic_write_bytes(target(fmt), data)
            return out
        except Exception as e:  # noqa: BLE001 (reported, never raised: HTML is already saved)
            msg = (f"{'/'.join(s.upper() for s in static)} not written: kaleido failed with "
                   f"{type(e).__name__}: {e}. HTML was written. Check that {browser} starts "
                   f"headless (`{browser} --headless --no-sandbox --disable-gpu --dump-dom "
                   f"about:blank`), or set BROWSER_PATH to another Chrome/Chromium.")
    warnings.warn(msg, StaticExportWarning, stacklevel=2)
    for fmt in static:
        out.setdefault(fmt, msg)
    return out
