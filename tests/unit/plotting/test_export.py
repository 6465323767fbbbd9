"""clas_lens.plotting.export: save_figure with and without a browser (HTML always written)."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from clas_lens import plotting
from clas_lens.plotting import export


@pytest.fixture
def small_fig(eval_df):
    return plotting.language_gains(eval_df[eval_df["task"] == "nli"])


def _self_contained(html: str) -> bool:
    return "Plotly.newPlot" in html and len(html) > 1_000_000 and 'src="https://cdn' not in html


def test_save_figure_html_only(tmp_path, small_fig):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # HTML alone never warns
        out = plotting.save_figure(small_fig, tmp_path / "sub" / "gains.png", formats=["html"])
    assert out == {"html": tmp_path / "sub" / "gains.html"}
    assert _self_contained(out["html"].read_text(encoding="utf-8"))
    assert not list((tmp_path / "sub").glob(".*.tmp"))  # atomic: no temp file left
    dotted = plotting.save_figure(small_fig, tmp_path / "fig.v2", formats="html")
    assert dotted["html"].name == "fig.v2.html"
    with pytest.raises(ValueError, match="unknown figure format 'gif'"):
        plotting.save_figure(small_fig, tmp_path / "x", formats=("gif",))
    with pytest.raises(TypeError, match="go.Figure"):
        plotting.save_figure({"data": []}, tmp_path / "x")


def test_save_figure_without_browser_still_writes_html(tmp_path, small_fig, monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(export, "_find_browser", lambda: None)
    ok, reason = plotting.static_export_available()
    assert ok is False and "apt-get install" in reason and "BROWSER_PATH" in reason
    with pytest.warns(plotting.StaticExportWarning, match="PNG/SVG/PDF not written"):
        out = plotting.save_figure(small_fig, tmp_path / "gains")
    assert isinstance(out["html"], Path) and _self_contained(out["html"].read_text("utf-8"))
    for fmt in ("png", "svg", "pdf"):  # PDF is a default format beside PNG and SVG
        assert isinstance(out[fmt], str) and "no Chrome/Chromium found" in out[fmt]
        assert "apt-get install" in out[fmt] and not (tmp_path / f"gains.{fmt}").exists()


def test_bad_browser_path_is_reported(tmp_path, small_fig, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    ok, reason = plotting.static_export_available()
    assert not ok and "BROWSER_PATH=" in reason and "not an executable" in reason
    with pytest.warns(plotting.StaticExportWarning):
        out = plotting.save_figure(small_fig, tmp_path / "g", formats=("svg",))
    assert "BROWSER_PATH=" in out["svg"] and out["html"].exists()


@pytest.fixture
def fake_browser(tmp_path, monkeypatch):
    """BROWSER_PATH pointing at an executable that is found but is no browser."""
    exe = tmp_path / "fake-chrome"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(exe))
    return exe


def test_kaleido_failure_is_reported_not_raised(tmp_path, small_fig, monkeypatch, fake_browser):
    def boom(*args, **kwargs):
        raise RuntimeError("browser crashed")

    monkeypatch.setattr(export, "_kaleido_export", boom)
    with pytest.warns(plotting.StaticExportWarning, match="browser crashed"):
        out = plotting.save_figure(small_fig, tmp_path / "g", formats=("html", "png"))
    assert out["html"].exists() and "kaleido failed" in out["png"]
    assert not (tmp_path / "g.png").exists()


def test_save_figure_size_presets_lay_out_for_print(tmp_path, small_fig, monkeypatch):
    exe = tmp_path / "fake-chrome"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(exe))
    calls = []

    def fake_export(fig, formats, *, browser, width, height, scale, timeout):
        calls.append((fig, width, height, scale))
        return {f: b"%PDF-1.4 fake" if f == "pdf" else b"bytes" for f in formats}

    monkeypatch.setattr(export, "_kaleido_export", fake_export)
    out = plotting.save_figure(small_fig, tmp_path / "g", formats=("png", "pdf"), size="single")
    assert out["pdf"].read_bytes().startswith(b"%PDF") and out["png"].exists()
    fig, width, height, scale = calls[-1]
    assert width == 336 == fig.layout.width  # 3.5 in at 96 px per inch
    assert scale == pytest.approx(300 / 96)  # PNG at 300 dpi
    assert fig.layout.template.layout.font.size == plotting.SIZES["single"].font
    assert height < small_fig.layout.height
    assert small_fig.layout.width is None  # the caller's figure is untouched
    plotting.save_figure(small_fig, tmp_path / "d", formats=("pdf",), size="double", scale=1)
    assert calls[-1][1] == 691 and calls[-1][3] == 1  # an explicit scale wins
    plotting.save_figure(small_fig, tmp_path / "s", formats=("png",))
    assert calls[-1][1:] == (1000, small_fig.layout.height, 2.0)  # screen: as before
    built = plotting.language_gains(small_fig_source(), size="double")
    plotting.save_figure(built, tmp_path / "b", formats=("png",), size="double")
    assert calls[-1][0] is built  # already laid out for that size: kept as is
    with pytest.raises(ValueError, match="unknown figure size 'poster'"):
        plotting.save_figure(small_fig, tmp_path / "x", formats=("html",), size="poster")


def small_fig_source():
    import pandas as pd

    return pd.DataFrame({"task": "nli", "condition": "clas", "metric": "accuracy",
                         "lang": ["en", "de"], "diff": [0.0, 0.1], "diff_ci_low": [-0.1, 0.0],
                         "diff_ci_high": [0.1, 0.2]})


STATIC_OK, STATIC_REASON = plotting.static_export_available()


@pytest.mark.slow
@pytest.mark.skipif(not STATIC_OK, reason=f"static export unavailable: {STATIC_REASON} "
                                          "(see tests/QUARANTINE.md)")
def test_save_figure_png_svg_with_browser(tmp_path, small_fig):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", plotting.StaticExportWarning)
        out = plotting.save_figure(small_fig, tmp_path / "gains", width=800, height=500, scale=1)
    elapsed = time.perf_counter() - t0
    png, svg, pdf = out["png"], out["svg"], out["pdf"]
    assert isinstance(png, Path) and isinstance(svg, Path) and isinstance(pdf, Path), out
    assert pdf.read_bytes()[:5] == b"%PDF-"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert int.from_bytes(data[16:20], "big") == 800 and int.from_bytes(data[20:24], "big") == 500
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and len(text) > 10_000 and "target languages" in text
    assert elapsed < 120, f"static export took {elapsed:.1f} s"
    print(f"\nPNG+SVG+PDF export with {STATIC_REASON}: {elapsed:.1f} s")


def test_export_session_without_browser_yields_false(tmp_path, small_fig, monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(export, "_find_browser", lambda: None)
    with plotting.export_session() as started:
        assert started is False and not export._SESSIONS
        with pytest.warns(plotting.StaticExportWarning, match="no Chrome/Chromium found"):
            out = plotting.save_figure(small_fig, tmp_path / "g", formats=("html", "png"))
    assert out["html"].exists() and isinstance(out["png"], str)


def test_export_session_that_cannot_start_is_reported(monkeypatch, fake_browser):
    def no_start(*args, **kwargs):
        raise RuntimeError("browser crashed")

    monkeypatch.setattr(export, "_Session", no_start)
    with pytest.warns(plotting.StaticExportWarning, match="did not start"):
        with plotting.export_session() as started:
            assert started is False and not export._SESSIONS


@pytest.mark.slow
@pytest.mark.skipif(not STATIC_OK, reason=f"static export unavailable: {STATIC_REASON} "
                                          "(see tests/QUARANTINE.md)")
def test_export_session_shares_one_browser(tmp_path, small_fig, monkeypatch):
    import kaleido

    started = []
    real = kaleido.Kaleido

    def counting(*args, **kwargs):
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kaleido, "Kaleido", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("error", plotting.StaticExportWarning)
        with plotting.export_session() as ok:
            assert ok is True
            outs = [plotting.save_figure(small_fig, tmp_path / f"g{i}", formats=("png", "svg"), width=600,
                                         height=400, scale=1) for i in range(3)]
    assert len(started) == 1  # one browser for three figures
    assert not export._SESSIONS
    assert not any(t.name == "clas_lens-kaleido" and t.is_alive() for t in __import__("threading").enumerate())
    for out in outs:
        data = out["png"].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 600
        assert out["svg"].read_text(encoding="utf-8").lstrip().startswith("<svg")
    # outside a session each figure starts its own
    plotting.save_figure(small_fig, tmp_path / "alone", formats=("png",), width=600, height=400, scale=1)
    assert len(started) == 2
