"""Notebooks 01-04: neurons, steering, clusters, paper figures (written by _build.py)."""
from __future__ import annotations

from _build import ROOT_CELL, SETUP, nb, params

NEURONS = nb([
    ("md", """
# 01 · Neurons: per-language statistics and categories

Record per-language MLP neuron statistics on parallel sentences, then sort neurons into
**all-shared**, **partial-shared**, **language-specific** and **non-activated** ones (CLAS /
"Sharing Matters"), and compare with LAPE's language-specific neurons.
Sizes are set in the parameters cell; the defaults run in a minute or two on a laptop CPU.
The methods are described in `docs/methods.md` ("Neuron sites", "Neuron categories", "Peer
methods"); the words are defined in `docs/glossary.md`.
"""),
    params("""
LANGS = ["en", "de", "ru", "zh", "sw"]
N_SENTENCES = 24           # parallel sentences per language
SITE = "act"               # act_fn(gate): where activation probabilities are meaningful
"""),
    ("code", SETUP),
    ("md", "## Streaming statistics\nOne forward per batch, stopped after the last MLP layer; padding and BOS are excluded."),
    ("code", """
stats = clas_lens.collect_stats(model, corpus, site=SITE)
probs = {lang: stats.active_prob(lang).numpy() for lang in stats.langs}   # [layer, neuron] each
stats
"""),
    ("code", "plotting.activation_prob_distributions(probs)"),
    ("md", "## CLAS categories\nA neuron is *active* for a language when it fires on more than half of that language's tokens."),
    ("code", """
neurons = clas_lens.identify_neurons(stats, method="clas", criterion="prob", prob_threshold=0.5)
counts = neurons.counts()
counts.groupby("category")["count"].sum()
"""),
    ("code", "plotting.neuron_categories(counts)"),
    ("md", """
How much do the languages' **active** neuron sets overlap? (CLAS's specific neurons cannot
overlap by construction: each is active in exactly one language.)
"""),
    ("code", "plotting.active_overlap(probs)"),
    ("md", "## LAPE (Tang et al. 2024) on the same statistics\nLAPE may give one neuron to several languages, so its sets can overlap."),
    ("code", """
lape = clas_lens.identify_neurons(stats, method="lape", top_rate=0.01, filter_rate=0.95)
lape_counts = lape.counts()
lape_counts[lape_counts.category == "specific"].groupby("lang")["count"].sum()
"""),
    ("code", "plotting.overlap_heatmap(lape.overlap(), title='LAPE neurons shared between languages')"),
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
    params("""
LANGS = ["en", "de", "sw"]
N_SENTENCES = 16
LIMIT = 6                  # task items per language
BETA, GAMMA = 0.5, 0.2
LAYERS = "last:4"
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
    if lang not in LANGS:
        continue
    conditions = {
        "unsteered": [],
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
    "unsteered": None,
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
    params("""
LANGS = ["en", "de", "ru", "zh", "sw"]
N_SENTENCES = 16
LIMIT = 6
PROJECTION = "pca"         # "umap" for UMAP (first fit ~25 s: numba compiles)
"""),
    ("code", SETUP),
    ("code", """
import pandas as pd
stats = clas_lens.collect_stats(model, corpus, site="act")
neurons = clas_lens.identify_neurons(stats, method="clas")
clas = clas_lens.ClasSteering(neurons, layers="last:4", beta=0.5, gamma=0.2)
before = clas_lens.residual_reps(model, corpus, condition="unsteered")
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

Every figure is rebuilt from the files a run saved (no model needed). `RUN_DIR` names a run
of `clas-lens run` (`runs/demo` after `make demo`); a relative path is read from the repository
root, wherever the notebook runs from. If there is no run there, the notebook says so and builds
a small run in a temporary folder first, so it always runs top to bottom.
"""),
    params("""
RUN_DIR = "runs/demo"       # relative to the repository root
FORMATS = ["html"]          # add "png", "svg" for static files (needs a Chrome, e.g. Debian's chromium)
"""),
    ("code", ROOT_CELL),
    ("code", """
import tempfile
from clas_lens.config import RunConfig
from clas_lens.pipeline import make_figures, run_pipeline, summary_table

run_dir = Path(RUN_DIR).expanduser()
if not run_dir.is_absolute():
    if ROOT is None:
        print(f"Not inside a clas_lens checkout: reading {RUN_DIR} from {Path.cwd()}.")
    run_dir = (ROOT or Path.cwd()) / run_dir
if (run_dir / "run.json").exists():
    print("Using the run in", run_dir)
else:
    small = Path(tempfile.mkdtemp(prefix="clas_lens_nb04_")) / "small_run"
    print(f"No run in {run_dir} (`make demo` writes runs/demo); building a small run in {small} instead.")
    if DTYPE != "float32":
        print("(run configs load the model in float32; DTYPE applies to the other notebooks)")
    cfg = RunConfig.from_dict({
        "run": {"name": small.name, "out_dir": str(small.parent)},
        "model": {"name": MODEL, "device": DEVICE, "threads": int(threads or 0)},
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


def books() -> dict:
    return {
        "01_neurons.ipynb": NEURONS,
        "02_steering.ipynb": STEERING,
        "03_clusters.ipynb": CLUSTERS,
        "04_paper_figures.ipynb": FIGURES,
    }
