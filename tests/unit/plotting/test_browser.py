"""A saved HTML figure renders in a real headless Chromium (not just "the file exists").

The page is screenshotted by ``chromium --headless --screenshot`` and the PNG is decoded with a
small zlib + struct decoder (no Pillow in the venv; numpy only for counting), then checked:
enough non-white pixels, enough distinct colours, and the exact bar colour of a language
present. A page with the same figure but no plotly.js is the negative control: it must come
out (almost) blank, so the checks really tell a drawn plot from an empty page.

Skipped (see tests/QUARANTINE.md) when no Chrome/Chromium is installed.

Not the mirror of one module: it checks clas_lens.plotting.export (save_figure's HTML) end to
end, with a figure from clas_lens.plotting.gains.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clas_lens import plotting

WINDOW = (1200, 800)


def _find_chromium() -> str | None:
    env = os.environ.get("BROWSER_PATH")
    if env and os.path.isfile(env) and os.access(env, os.X_OK):
        return env
    for name in plotting.BROWSER_NAMES:
        if found := shutil.which(name):
            return found
    for p in plotting.BROWSER_PATHS:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


CHROMIUM = _find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chrome/Chromium found: `apt-get install -y --no-install-recommends chromium` "
           "or set BROWSER_PATH (see tests/QUARANTINE.md)",
)


# ------------------------------------------------------------------------------------------------
# Minimal PNG decoder: 8-bit, non-interlaced, greyscale / RGB / grey+alpha / RGBA.
# ------------------------------------------------------------------------------------------------

def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Return (width, height, channels, raw pixel bytes, row-major, no filter bytes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, color_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color_type}, "
                         f"interlace {interlace}")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError(f"bad PNG filter type {ftype}")
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def pixels_rgb(data: bytes) -> np.ndarray:
    """Decoded PNG as a uint8 array [height, width, 3]."""
    w, h, ch, raw = decode_png(data)
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, ch)
    if ch <= 2:  # grey (+ alpha)
        return np.repeat(arr[..., :1], 3, axis=-1)
    return arr[..., :3]


def _hex_rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + ctype + body
            + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF))


def test_png_decoder_known_image():
    """The decoder itself, on a hand-made 2x2 RGB image using the Sub, Up and Paeth filters."""
    rows = [(1, bytes([10, 20, 30, 5, 5, 5])),   # Sub: second pixel = first + (5,5,5)
            (4, bytes([1, 1, 1, 200, 0, 0]))]     # Paeth
    raw = b"".join(bytes([f]) + r for f, r in rows)
    png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))
    px = pixels_rgb(png)
    assert px.shape == (2, 2, 3)
    px = [tuple(int(v) for v in p) for p in px.reshape(-1, 3)]
    assert px[0] == (10, 20, 30) and px[1] == (15, 25, 35)
    # Paeth row 2: pixel 0 predicts from above (10,20,30): 11,21,31; pixel 1: a=(11,21,31),
    # b=(15,25,35), c=(10,20,30) -> p = a+b-c = (16,26,36) closest to b -> (15,25,35) + (200,0,0)
    assert px[2] == (11, 21, 31) and px[3] == (215, 25, 35)


# ------------------------------------------------------------------------------------------------
# The browser check
# ------------------------------------------------------------------------------------------------

def _screenshot(html: Path, out: Path, tmp: Path) -> bytes:
    profile = tmp / f"profile-{out.stem}"
    profile.mkdir()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={profile}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=15000",
           f"--screenshot={out}", html.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.exists() and out.stat().st_size > 0, (
        f"chromium wrote no screenshot (rc {proc.returncode}); stderr tail:\n{proc.stderr[-2000:]}")
    return out.read_bytes()


def _stats(png: bytes, color: str) -> dict[str, float]:
    px = pixels_rgb(png)
    h, w, _ = px.shape
    flat = px.reshape(-1, 3).astype(np.int32)
    target = np.array(_hex_rgb(color), dtype=np.int32)
    return {"size": (w, h),
            "non_white": float((flat.min(axis=1) < 245).mean()),
            "colours": len(np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2])),
            "target": int((np.abs(flat - target).max(axis=1) <= 6).sum())}


@needs_chromium
def test_saved_html_renders_a_plot_in_headless_chromium(tmp_path):
    langs = ["en", "de", "zh", "hi"]
    df = pd.DataFrame({
        "task": "nli", "condition": "clas", "metric": "accuracy", "lang": langs,
        "diff": [0.001, 0.04, 0.03, 0.05], "diff_ci_low": [-0.01, 0.02, 0.01, 0.03],
        "diff_ci_high": [0.012, 0.06, 0.05, 0.07], "p_value": [0.9, 0.01, 0.04, 0.002]})
    fig = plotting.language_gains(df, title="browser check")
    out = plotting.save_figure(fig, tmp_path / "gains", formats=("html",))
    html = out["html"]
    assert isinstance(html, Path) and html.exists()

    shot = _stats(_screenshot(html, tmp_path / "plot.png", tmp_path),
                  plotting.lang_colors(["de"])["de"])
    assert shot["size"] == WINDOW
    assert shot["non_white"] > 0.03, shot
    assert shot["colours"] > 50, shot
    assert shot["target"] > 1000, f"the 'de' bar colour is missing from the screenshot: {shot}"

    # Negative control: same page without plotly.js must stay (almost) blank.
    bare = tmp_path / "bare.html"
    bare.write_text(fig.to_html(include_plotlyjs=False, full_html=True), encoding="utf-8")
    control = _stats(_screenshot(bare, tmp_path / "bare.png", tmp_path),
                     plotting.lang_colors(["de"])["de"])
    print(f"\nplot {shot}\ncontrol {control}")
    assert control["target"] == 0 and control["non_white"] < 0.01, control
