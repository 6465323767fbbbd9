"""clas_lens.neurons.identify: real statistics end to end, model and site checks, the chance warning."""
from __future__ import annotations

import pytest

from clas_lens.errors import MismatchError
from clas_lens.neurons import identify_neurons
from clas_lens.stats import collect_stats


def test_real_stats_check_model_and_warning(tiny_llama, tiny_gpt2):
    texts = {"en": ["The cat sat.", "One two three"], "de": ["Die Katze.", "Eins zwei drei"]}
    with pytest.warns(UserWarning, match="site='act'"):
        identify_neurons(collect_stats(tiny_llama, texts), "clas")
    stats = collect_stats(tiny_llama, texts, site="act", per_sentence=True)
    ns = identify_neurons(stats, "clas")
    ns.check_model(tiny_llama, site="act")
    with pytest.raises(MismatchError, match="model"):
        ns.check_model(tiny_gpt2)
    with pytest.raises(MismatchError, match="'act'.*'post'"):
        ns.check_model(tiny_llama, site="post")
    assert ns.model_info == stats.model_info and ns.site == "act" and ns.method == "clas"
    assert ns.stats_ref["n_tokens"] == {l: stats.n_tokens(l) for l in texts}
    with pytest.raises(ValueError, match="Language 'fr'"):
        ns.mask("specific", "fr")
    ap = identify_neurons(stats, "ap", top_k=3, bottom_k=3)
    assert int(ap.mask("specific", "de").sum()) == 6
