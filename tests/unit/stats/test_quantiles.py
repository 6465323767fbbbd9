"""clas_lens.stats.quantiles: exact quantiles against numpy on reference values, argument errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.sites import neuron_sites
from clas_lens.stats import collect_quantiles

from ._stats_ref import TEXTS, reference_values


@pytest.mark.parametrize("site", ["post", "act"])
def test_quantiles_match_numpy_on_reference_values(tiny, site):
    sites = neuron_sites(tiny)
    mask = torch.zeros(sites.shape, dtype=torch.bool)
    mask[0, [1, 5]] = True
    mask[1, [0, 7, 9]] = True
    q = collect_quantiles(tiny, TEXTS, mask, ["median", 0.1, "p90"], site=site, batch_size=3)
    for lang in TEXTS:
        vals, _ = reference_values(tiny, TEXTS[lang], site)
        assert q[lang].shape == (3,) + sites.shape
        assert q[lang][:, ~mask].isnan().all()
        for l in range(2):
            cols = mask[l].nonzero().squeeze(1)
            ref = np.quantile(vals[l][:, cols].numpy(), [0.5, 0.1, 0.9], axis=0)
            np.testing.assert_allclose(q[lang][:, l, cols].numpy(), ref, rtol=1e-4, atol=1e-5)


def test_quantiles_argument_errors(tiny_llama):
    mask = torch.zeros(2, 64, dtype=torch.bool)
    with pytest.raises(DataValidationError, match="shape"):
        collect_quantiles(tiny_llama, TEXTS, torch.zeros(3, 64, dtype=torch.bool), 0.5)
    with pytest.raises(ValueError, match="outside"):
        collect_quantiles(tiny_llama, TEXTS, mask, 1.5)
    with pytest.raises(ValueError, match="Unknown quantile"):
        collect_quantiles(tiny_llama, TEXTS, mask, "middle")
    empty = collect_quantiles(tiny_llama, TEXTS, mask, 0.5)
    assert all(math.isnan(float(v.max())) or v.isnan().all() for v in empty.values())


def test_sorted_quantiles_known_answer():
    from clas_lens.stats import sorted_quantiles

    v = torch.tensor([[4.0], [1.0], [3.0], [2.0]])
    assert sorted_quantiles(v, [0.0, 0.5, 1.0, 1 / 3]).squeeze(1).tolist() == [1.0, 2.5, 4.0, 2.0]
