"""clas_lens.clusters.projection: joint PCA axes, texts, errors; seeded UMAP."""
from __future__ import annotations

import numpy as np
import pytest

from clas_lens.clusters import project
from clas_lens.errors import DataValidationError
from _steering_toys import DuckCorpus

from ._toys import blobs, make_reps


def test_project_pca_joint_axes_and_texts():
    data = blobs(k=3, n=10, d=6)
    before = make_reps({"en": data["l0"], "de": data["l1"], "ru": data["l2"]})
    after = before.with_condition("clas")
    p = project([before, after], method="pca", texts={"en": {"0": "zero"}})
    assert list(p.columns) == ["x", "y", "lang", "condition", "id", "text", "layer"]
    assert len(p) == 60 and set(p.condition) == {"base", "clas"}
    a, b = p[p.condition == "base"], p[p.condition == "clas"]
    np.testing.assert_allclose(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())  # same vectors, same axes
    assert p.text.iloc[0] == "zero" and p.text.isna().sum() == 58
    assert len(p.attrs["explained_variance_ratio"]) == 2
    single = project(before, method="pca")
    assert len(single) == 30 and set(single.condition) == {"base"} and set(single.layer) == {0}
    with pytest.raises(DataValidationError, match="condition"):
        project([before, before], method="pca")
    with pytest.raises(ValueError, match="method"):
        project(before, method="tsne")
    with pytest.raises(DataValidationError, match="Layer 4"):
        project(before, method="pca", layer=4)
    corpus = DuckCorpus({"en": ["a"] * 10, "de": ["b"] * 10, "ru": ["c"] * 10}, ids=[str(i) for i in range(10)])
    assert set(project(before, method="pca", texts=corpus).text) == {"a", "b", "c"}


@pytest.mark.slow
def test_project_umap_is_seeded():
    pytest.importorskip("umap")
    data = blobs(k=3, n=20, d=6, spread=0.3)
    reps = make_reps({"en": data["l0"], "de": data["l1"], "ru": data["l2"]})
    p1 = project(reps, method="umap", seed=3, n_neighbors=10)
    p2 = project(reps, method="umap", seed=3, n_neighbors=10)
    np.testing.assert_allclose(p1[["x", "y"]].to_numpy(), p2[["x", "y"]].to_numpy())
    # well separated blobs stay separated: each point's nearest neighbour has its language
    Y = p1[["x", "y"]].to_numpy()
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    assert (p1.lang.to_numpy()[D.argmin(1)] == p1.lang.to_numpy()).mean() > 0.95
