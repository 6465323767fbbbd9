"""clas_lens.plotting.clusters: metric per layer, projection scatter, divergence scatter."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError

from ._figs import LANGS
from ._figs import annotations as _annotations


def test_cluster_by_layer(metrics_df):
    fig = plotting.cluster_by_layer(metrics_df)
    # the legacy "base" condition is labelled "unsteered"
    assert [(t.name, t.xaxis) for t in fig.data] == [("unsteered", "x"), ("clas", "x"),
                                                      ("unsteered", "x2"), ("clas", "x2")]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert fig.data[0].line.color == plotting.BASE_COLOR
    np.testing.assert_allclose(fig.data[1].y, [0.05, 0.15, 0.25, 0.35])
    assert _annotations(fig) == ["silhouette_cosine",
                                 "parallel_cosine (alignment) · mean over 3 languages"]
    per = plotting.cluster_by_layer(metrics_df, per_lang=True)
    names = [t.name for t in per.data]
    assert names[:2] == ["unsteered", "clas"] and "de · unsteered" in names
    assert "hi · clas" in names
    assert len(per.data) == 2 + 2 * 3
    single = plotting.cluster_by_layer(metrics_df, alignment=None)
    assert len(single.data) == 2 and _annotations(single) == ["silhouette_cosine"]



def test_cluster_by_layer_uses_pooled_rows(metrics_df):
    # cluster_metrics: silhouette "all" plus one row per language; the line is the "all" row
    sil = metrics_df[metrics_df["metric"] == "silhouette_cosine"]
    per_lang = pd.concat([sil.assign(lang=l, value=-1.0) for l in LANGS[1:]])
    df = pd.concat([metrics_df.replace({"lang": {"": "all"}}), per_lang])
    fig = plotting.cluster_by_layer(df)
    np.testing.assert_allclose(fig.data[0].y, [0.0, 0.1, 0.2, 0.3])
    assert _annotations(fig)[0] == "silhouette_cosine"
    per = plotting.cluster_by_layer(df, per_lang=True, alignment=None)
    want = {f"{lang} · {cond}" for lang in LANGS[1:] for cond in ("unsteered", "clas")}
    assert {t.name for t in per.data} == want
    assert all(set(t.y) == {-1.0} for t in per.data)


def test_cluster_by_layer_unknown_metric(metrics_df):
    with pytest.raises(DataValidationError, match="silhouette_euclidean.*parallel_cosine"):
        plotting.cluster_by_layer(metrics_df, metric="silhouette_euclidean")


def test_projection_scatter(proj_df):
    fig = plotting.projection_scatter(proj_df)
    assert _annotations(fig) == ["unsteered (before steering)", "clas"]
    assert len(fig.data) == 2 * len(LANGS)
    assert [t.name for t in fig.data] == LANGS * 2
    assert [t.xaxis for t in fig.data] == ["x"] * 4 + ["x2"] * 4  # base first
    assert sum(t.showlegend for t in fig.data) == len(LANGS)
    t = fig.data[0]
    assert t.mode == "markers" and len(t.x) == 5
    ident, text = t.customdata[0]
    assert ident == "s0" and "&lt;i&gt;sentence&lt;/i&gt;" in text and "<br>" in text
    assert "%{customdata[0]}" in t.hovertemplate and "%{customdata[1]}" in t.hovertemplate


def test_projection_scatter_layers(proj_df):
    two = pd.concat([proj_df.assign(layer=3), proj_df.assign(layer=5, x=proj_df["x"] + 100)])
    with pytest.raises(DataValidationError, match=r"several layers \[3, 5\].*layer="):
        plotting.projection_scatter(two)
    fig = plotting.projection_scatter(two, layer=5, share_axes=True)
    assert _annotations(fig) == ["unsteered (before steering) · layer 5", "clas · layer 5"]
    assert min(min(t.x) for t in fig.data) > 50
    with pytest.raises(DataValidationError, match="no rows for layer 4"):
        plotting.projection_scatter(two, layer=4)


def test_divergence_scatter(points_df, test_df):
    fig = plotting.divergence_scatter(points_df, test_df)
    fits = [t for t in fig.data if t.name == "least-squares fit"]
    assert len(fits) == 2 and sum(t.showlegend for t in fits) == 1
    slope, intercept = np.polyfit(points_df["delta_separation"], points_df["gain"], 1)
    np.testing.assert_allclose(fits[0].y, slope * np.asarray(fits[0].x) + intercept)
    points = [t for t in fig.data if t.name != "least-squares fit"]
    assert len(points) == 2 * 4 and {t.name for t in points} == {"de", "zh", "hi", "ar"}
    notes = _annotations(fig)
    assert notes[:2] == ["gain vs separation (divergence)", "gain vs alignment"]
    assert "spearman r = +0.80 [+0.10, +1.00], p = 0.04, n = 4" in notes[2]
    assert "silhouette_cosine, layer 3" in notes[2]
    assert "r = -0.20" in notes[3] and "parallel_cosine" in notes[3]
    bare = plotting.divergence_scatter(points_df)
    assert _annotations(bare)[2] == "n = 4 points (no test given)"
    assert bare.layout.yaxis.title.text == "task gain (steered − unsteered)"
    many = pd.concat([test_df, test_df.assign(layer=7, r=0.1)])
    with pytest.raises(DataValidationError, match=r"several layers \[3, 7\].*layer="):
        plotting.divergence_scatter(points_df, many)
    seven = plotting.divergence_scatter(points_df, many, layer=7)
    assert "r = +0.10" in _annotations(seven)[2] and "layer 7" in _annotations(seven)[2]


def _label_boxes(fig, axis, font):
    """Pixel boxes of the visible point labels of one panel (independent of place_labels)."""
    from clas_lens.plotting import geometry, layout

    traces = [t for t in fig.data if t.mode == "markers+text" and t.xaxis == axis]
    w, h = layout.panel_size(fig, None, "xaxis" + axis[1:], "yaxis" + axis[1:])
    xs = np.concatenate([np.asarray(t.x, float) for t in traces])
    ys = np.concatenate([np.asarray(t.y, float) for t in traces])
    texts = [s for t in traces for s in t.text]
    pos = [p for t in traces for p in t.textposition]

    def px(v, size):
        span = (v.max() - v.min()) or 1.0
        return (v - v.min() + 0.06 * span) / (1.12 * span) * size

    boxes = []
    for a, b, text, where in zip(px(xs, w), px(ys, h), texts, pos):
        if not text:
            continue
        tw, th = geometry.text_width(text, font), geometry.line_height(font)
        vert, horiz = where.split()
        cx = a + {"left": -(7 + tw / 2), "center": 0.0, "right": 7 + tw / 2}[horiz]
        cy = b + {"bottom": -(7 + th / 2), "middle": 0.0, "top": 7 + th / 2}[vert]
        boxes.append((cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2))
    return texts, boxes


@pytest.mark.parametrize("n", [12, 20])
def test_divergence_labels_do_not_collide(n):
    from clas_lens.languages import LANGUAGES

    langs = list(LANGUAGES)[1:n + 1]
    rng = np.random.default_rng(3)
    pts = pd.DataFrame({"lang": langs, "gain": rng.normal(0, 0.05, n).round(2),
                        "delta_separation": rng.normal(0, 0.03, n).round(2),
                        "delta_alignment": rng.normal(0, 0.005, n).round(3)})
    pts.loc[1, ["gain", "delta_separation", "delta_alignment"]] = pts.loc[
        0, ["gain", "delta_separation", "delta_alignment"]].to_numpy()  # two points coincide
    fig = plotting.divergence_scatter(pts)
    for axis in ("x", "x2"):
        texts, boxes = _label_boxes(fig, axis, plotting.SIZES["screen"].small)
        assert len(boxes) >= n // 2  # most points keep their label
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not (a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5
                            and b[1] < a[3] - 0.5), (axis, a, b)
    # every language keeps its legend entry and hover name, labelled or not
    shown = [t for t in fig.data if t.mode == "markers+text" and t.showlegend]
    assert [t.name for t in shown] == langs
    first = [t for t in fig.data if t.name in langs[:2] and t.xaxis == "x"]
    assert [t.textposition[0] for t in first][0] != [t.textposition[0] for t in first][1] or \
        "" in [t.text[0] for t in first]
