"""Write the notebooks from this script (narrative + calls; outputs are never committed).

Run: .venv/bin/python notebooks/_build.py
"""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent


def nb(cells):
    book = nbf.v4.new_notebook()
    out = []
    for kind, src in cells:
        if kind == "md":
            out.append(nbf.v4.new_markdown_cell(src.strip()))
        elif kind == "params":
            c = nbf.v4.new_code_cell(src.strip())
            c.metadata["tags"] = ["parameters"]
            out.append(c)
        else:
            out.append(nbf.v4.new_code_cell(src.strip()))
    book.cells = out
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    return book


SETUP = """
import torch
import clas_lens
from clas_lens import plotting

torch.set_num_threads(THREADS)
plotting.set_defaults()  # one place sets the plotly template and renderer
model = clas_lens.load_model(MODEL)
corpus = clas_lens.load_corpus("default", langs=LANGS)
corpus = corpus.subset(ids=corpus.ids[:N_SENTENCES])
print(clas_lens.model_info(model).model_id, "|", len(corpus), "parallel sentences x", corpus.langs)
"""

NEURONS = nb([
    ("md", """
# 01 · Neurons: per-language statistics and categories

Record per-language MLP neuron statistics on parallel sentences, then sort neurons into
**all-shared**, **partial-shared**, **language-specific** and **non-activated** ones (CLAS /
"Sharing Matters"), and compare with LAPE's language-specific neurons.
Sizes are set in the parameters cell; the defaults run in a minute on a laptop CPU.
The methods are described in `docs/methods.md` ("Neuron sites", "Neuron categories", "Peer
methods"); the words are defined in `docs/glossary.md`.
"""),
    ("params", """
MODEL = "default"          # the embedded Gemma-3-270M, or a local HF model folder
LANGS = ["en", "de", "ru", "zh", "sw"]
N_SENTENCES = 24           # parallel sentences per language
SITE = "act"               # act_fn(gate): where activation probabilities are meaningful
THREADS = 2
"""),
    ("code", SETUP),
    ("md", "## Streaming statistics\nOne forward per batch, stopped after the last MLP layer; padding and BOS are excluded."),
    ("code", """
stats = clas_lens.collect_stats(model, corpus, site=SITE)
stats
"""),
    ("code", """
plotting.activation_prob_distributions({lang: stats.active_prob(lang).numpy() for lang in stats.langs})
"""),
    ("md", "## CLAS categories\nA neuron is *active* for a language when it fires on more than half of that language's tokens."),
    ("code", """
neurons = clas_lens.identify_neurons(stats, method="clas", criterion="prob", prob_threshold=0.5)
counts = neurons.counts()
counts.groupby("category")["count"].sum()
"""),
    ("code", "plotting.neuron_categories(counts)"),
    ("md", "Where do the language-specific neurons of each language sit, and how much do languages share them?"),
    ("code", "plotting.language_overlap(neurons.overlap())"),
    ("md", "## LAPE (Tang et al. 2024) on the same statistics"),
    ("code", """
lape = clas_lens.identify_neurons(stats, method="lape", top_rate=0.01, filter_rate=0.95)
lape_counts = lape.counts()
lape_counts[lape_counts.category == "specific"].groupby("lang")["count"].sum()
"""),
    ("code", "plotting.language_overlap(lape.overlap())"),
])

STEERING = nb([
    ("md", """
# 02 · Steering: CLAS and its baselines

CLAS boosts shared neurons and damps the target language's specific neurons in the last
("bridge") layers. We compare it with Int-mu (specific neurons set to their mean), look at
greedy generations side by side, and measure per-language effects with confidence intervals.
The rule, its defaults and the choices the paper leaves open: `docs/methods.md`, "The CLAS rule";
the evaluation and its tests: "Evaluation" and "Statistical tests".
"""),
    ("params", """
MODEL = "default"
LANGS = ["en", "de", "sw"]
N_SENTENCES = 16
LIMIT = 6                  # task items per language
BETA, GAMMA = 0.5, 0.2
LAYERS = "last:4"
THREADS = 2
"""),
    ("code", SETUP),
    ("code", """
stats = clas_lens.collect_stats(model, corpus, site="act")
neurons = clas_lens.identify_neurons(stats, method="clas")
clas = clas_lens.ClasSteering(neurons, layers=LAYERS, beta=BETA, gamma=GAMMA)   # a per-language template
"""),
    ("md", "## Generation side by side\nGreedy continuations, unsteered, with CLAS, and with Int-mu, each steering with the prompt language's own neurons."),
    ("code", """
import pandas as pd
prompts = {"de": "Montag, Dienstag,", "sw": "Jumatatu, Jumanne,"}
rows = []
for lang, prompt in prompts.items():
    conditions = {
        "baseline": [],
        "clas": [clas.for_lang(lang)],
        "int_mu": [clas_lens.SetNeurons.int_mu(neurons, stats, lang)],
    }
    for name, ivs in conditions.items():
        with clas_lens.steer(model, *ivs):
            out = clas_lens.generate(model, [prompt], max_new_tokens=8, stop="\\n")[0]
        rows.append({"lang": lang, "condition": name, "prompt": prompt, "continuation": out,
                     "language_id": clas_lens.detect_language(out)[0] if out.strip() else ""})
pd.DataFrame(rows)
"""),
    ("md", "## Per-language effects on the cloze task\nEvery row carries a bootstrap CI; `diff` is the paired difference to the unsteered model."),
    ("code", """
task = clas_lens.load_task("cloze", langs=LANGS)
results = clas_lens.evaluate(model, task, LANGS, {
    "baseline": None,
    "clas": clas,
    "int_mu": clas_lens.SetNeurons.int_mu(neurons, stats),   # template: bound per language too
}, limit=LIMIT, n_boot=500)
results[["lang", "condition", "metric", "value", "ci_low", "ci_high", "diff", "p_value"]]
"""),
    ("code", "plotting.language_gains(results, anchor='en')"),
])

CLUSTERS = nb([
    ("md", """
# 03 · Language clusters before and after steering

The paper's key claim: CLAS gains go with **more separated** language clusters in the residual
stream ("functional divergence"), not with alignment to English. Here we measure silhouette and
alignment per layer before and after CLAS, project one layer, and test which one tracks gains.
Metrics, deltas and the test are described in `docs/methods.md`, "Clusters and the divergence test".
"""),
    ("params", """
MODEL = "default"
LANGS = ["en", "de", "ru", "zh", "sw"]
N_SENTENCES = 16
LIMIT = 6
PROJECTION = "pca"         # "umap" for UMAP (first fit ~25 s: numba compiles)
THREADS = 2
"""),
    ("code", SETUP),
    ("code", """
import pandas as pd
stats = clas_lens.collect_stats(model, corpus, site="act")
neurons = clas_lens.identify_neurons(stats, method="clas")
clas = clas_lens.ClasSteering(neurons, layers="last:4", beta=0.5, gamma=0.2)
before = clas_lens.residual_reps(model, corpus, condition="base")
after = clas_lens.residual_reps(model, corpus, intervention=clas, condition="clas")
metrics = pd.concat([clas_lens.cluster_metrics(before), clas_lens.cluster_metrics(after)], ignore_index=True)
plotting.cluster_by_layer(metrics, metric="silhouette_cosine")
"""),
    ("code", """
deltas = clas_lens.compare_reps(before, after)
layer = int(deltas[deltas.metric == "silhouette_cosine"].groupby("layer")["delta"].apply(lambda d: d.abs().mean()).idxmax())
proj = clas_lens.project([before, after], method=PROJECTION, layer=layer, texts=corpus)
plotting.projection_scatter(proj)
"""),
    ("md", "## The divergence test\nPer-language gains on the cloze task against per-language metric deltas, separation and alignment side by side."),
    ("code", """
task = clas_lens.load_task("cloze", langs=LANGS)
res = clas_lens.evaluate(model, task, LANGS, {"clas": clas}, limit=LIMIT, n_boot=300)
gains = res[(res.condition == "clas") & (res.metric == "accuracy") & (res.lang != "en")][["lang", "diff"]].rename(columns={"diff": "gain"})
test = clas_lens.divergence_test(gains, deltas, n_boot=500, n_perm=500)
test
"""),
    ("code", """
from clas_lens.pipeline import divergence_points
plotting.divergence_scatter(divergence_points(gains, deltas, test), test)
"""),
])

FIGURES = nb([
    ("md", """
# 04 · Paper figures from a run directory

Every figure is rebuilt from the files a run saved (no model needed). Point `RUN_DIR` at a run
of `clas-lens run` (e.g. `runs/demo` after `make demo`); if it does not exist, a small run is
made first so the notebook always runs top to bottom.
"""),
    ("params", """
RUN_DIR = "runs/demo"
SMALL_RUN_DIR = "runs/notebook_small"
FORMATS = ["html"]          # add "png", "svg" for static files (needs a Chrome, e.g. Debian's chromium)
THREADS = 2
"""),
    ("code", """
from pathlib import Path
import torch
from clas_lens.config import RunConfig
from clas_lens.pipeline import make_figures, run_pipeline, summary_table

torch.set_num_threads(THREADS)
run_dir = Path(RUN_DIR)
if not (run_dir / "run.json").exists():
    small = Path(SMALL_RUN_DIR)
    cfg = RunConfig.from_dict({
        "run": {"name": small.name, "out_dir": str(small.parent)},
        "corpus": {"langs": ["en", "de", "es", "sw"], "stats_limit": 16, "cluster_limit": 12},
        "stats": {"site": "act"},
        "steering": {"betas": [0.0, 0.5], "methods": ["clas"]},
        "eval": {"tasks": ["cloze"], "limits": {"cloze": 6}, "n_boot": 200},
        "figures": {"formats": FORMATS},
    })
    run_dir = run_pipeline(cfg, figures=False)
run_dir
"""),
    ("code", "summary_table(run_dir)"),
    ("code", """
written = make_figures(run_dir, formats=FORMATS)
sorted(written)
"""),
    ("md", "The interactive versions live in `RUN_DIR/figures/*.html`; open any of them in a browser."),
])

for name, book in {
    "01_neurons.ipynb": NEURONS,
    "02_steering.ipynb": STEERING,
    "03_clusters.ipynb": CLUSTERS,
    "04_paper_figures.ipynb": FIGURES,
}.items():
    nbf.write(book, HERE / name)
    print("wrote", name)
