"""clas_lens.plotting.overlap: the Jaccard heatmap, the overlap of active neuron sets, and the
deprecated language_overlap (which draws the same heatmap, with a DeprecationWarning)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError
from clas_lens.languages import LANGUAGES

from ._figs import LANGS


def _deprecated_language_overlap(*args, **kwargs):
    with pytest.warns(DeprecationWarning, match="active_overlap"):
        return plotting.language_overlap(*args, **kwargs)


HEATMAPS = [plotting.overlap_heatmap, _deprecated_language_overlap]


@pytest.mark.parametrize("draw", HEATMAPS, ids=["overlap_heatmap", "language_overlap"])
def test_language_overlap(overlap_df, draw):
    fig = draw(overlap_df)
    (hm,) = fig.data
    assert hm.type == "heatmap" and list(hm.x) == LANGS and list(hm.y) == LANGS
    assert hm.texttemplate == "%{text}"
    text = np.asarray(hm.text)
    assert text[0, 1] == "0.10" and text[1, 2] == "0.30" and text[0, 0] == ""
    assert np.isnan(np.asarray(hm.z, dtype=float)[0, 0]) and hm.zmax == pytest.approx(0.3)
    full = draw(overlap_df.loc[LANGS, LANGS[::-1]], mask_diagonal=False, decimals=1)
    assert np.asarray(full.data[0].text)[0, 0] == "1.0"
    assert list(full.data[0].x) == LANGS  # columns reordered to the index order


@pytest.mark.parametrize("draw", HEATMAPS, ids=["overlap_heatmap", "language_overlap"])
def test_language_overlap_errors(overlap_df, draw):
    with pytest.raises(DataValidationError, match="square"):
        draw(overlap_df.iloc[:, :3])
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        draw(overlap_df * 2)
    with pytest.raises(DataValidationError, match="DataFrame"):
        draw(overlap_df.to_numpy())


def test_active_jaccard_by_hand():
    p = {"de": np.array([[0.9, 0.8, 0.1, 0.0], [0.6, 0.0, 0.0, 0.0]]),
         "zh": np.array([[0.9, 0.2, 0.7, 0.0], [0.6, 0.0, 0.0, 0.0]]),
         "xx": np.zeros((2, 4))}
    table = plotting.active_jaccard(p)
    # de active: (0,0) (0,1) (1,0); zh active: (0,0) (0,2) (1,0) -> 2 shared of 4
    assert table.loc["de", "zh"] == pytest.approx(0.5) == table.loc["zh", "de"]
    assert table.loc["de", "de"] == 1.0 and np.isnan(table.loc["xx", "xx"])
    assert table.loc["de", "xx"] == 0.0
    # layer 1 only: both {(1,0)}; threshold 0.75: de {(0,0), (0,1)}, zh {(0,0)}
    assert plotting.active_jaccard(p, layers=[1]).loc["de", "zh"] == 1.0
    assert plotting.active_jaccard(p, 0.75).loc["de", "zh"] == pytest.approx(1 / 2)
    with pytest.raises(DataValidationError, match="out of range"):
        plotting.active_jaccard(p, layers=[5])
    with pytest.raises(DataValidationError, match="same shape"):
        plotting.active_jaccard({**p, "yy": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="threshold"):
        plotting.active_jaccard(p, 1.0)


def test_active_overlap_carries_information_where_clas_specific_overlap_is_zero(probs):
    # CLAS specific neurons belong to one language each: their overlap is 0 for every pair
    specific = pd.DataFrame(np.eye(len(LANGS)), index=LANGS, columns=LANGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        zeros = plotting.language_overlap(specific)
    off = np.asarray(zeros.data[0].z, dtype=float)
    assert np.nanmax(off) == 0.0  # the old figure: nothing to see
    fig = plotting.active_overlap(probs)
    (hm,) = fig.data
    z = np.asarray(hm.z, dtype=float)
    vals = z[~np.eye(len(LANGS), dtype=bool)]
    assert np.all((vals > 0) & (vals < 1)) and np.ptp(vals) > 0.01
    assert hm.zmin == pytest.approx(vals.min()) and hm.zmax == pytest.approx(vals.max())
    assert hm.colorbar.title.text == "Jaccard (p > 0.5)"
    want = plotting.active_jaccard(probs).to_numpy()
    np.testing.assert_allclose(z[~np.isnan(z)], want[~np.eye(len(LANGS), dtype=bool)])
    with pytest.warns(DeprecationWarning):  # the old name redirects a dict of probabilities
        redirected = plotting.language_overlap(probs)
    np.testing.assert_allclose(np.asarray(redirected.data[0].z, dtype=float), z)


def test_overlap_heatmap_many_languages_names_every_language_and_drops_cell_text():
    langs = list(LANGUAGES)[:20]
    rng = np.random.default_rng(1)
    m = rng.uniform(0.2, 0.8, size=(20, 20))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    df = pd.DataFrame(m, index=langs, columns=langs)
    screen = plotting.overlap_heatmap(df)
    assert list(screen.layout.xaxis.tickvals) == langs == list(screen.layout.yaxis.tickvals)
    assert screen.data[0].texttemplate == "%{text}"  # 40 px cells: numbers readable
    single = plotting.overlap_heatmap(df, size="single")
    assert single.layout.width == 336 and single.data[0].texttemplate == ""  # colour only
    assert list(single.layout.xaxis.tickvals) == langs
