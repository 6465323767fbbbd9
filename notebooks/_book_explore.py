"""Notebooks 05-08: explorer, one neuron, methods compared, paper table (written by _build.py)."""
from __future__ import annotations

from _build import SETUP, nb, params

EXPLORER_FIGURE = '''
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from clas_lens.vocab import CATEGORIES

probs = {lang: stats.active_prob(lang).numpy() for lang in stats.langs}   # [layer, neuron]
means = {lang: stats.mean(lang).numpy() for lang in stats.langs}
n_layers, d_mlp = next(iter(probs.values())).shape
colors = plotting.lang_colors(stats.langs)


def neuron_sets():
    """{(method, category, lang or None): Bool[layer, neuron]}: per language where the category depends on it."""
    out = {}
    for method, s in sets.items():
        for cat in [c for c in s.categories if c in CATEGORIES]:
            per_lang = {lang: s.mask(cat, lang).numpy() for lang in s.langs}
            union = s.mask(cat).numpy()
            if all(np.array_equal(m, union) for m in per_lang.values()):
                out[(method, cat, None)] = union
            else:
                out.update({(method, cat, lang): m for lang, m in per_lang.items()})
    return out


SELECTIONS = neuron_sets()


def label(key):
    method, cat, lang = key
    return f"{method} · {cat}" + (f" · {lang}" if lang else "")


def selection_traces(key):
    """A bar of the selected neurons per layer and, per language, the activation probability of
    (a seeded sample of at most MAX_POINTS of) them; x = layer * d_mlp + neuron."""
    mask = SELECTIONS[key]
    layer_idx, neuron_idx = np.nonzero(mask)
    n = len(layer_idx)
    if n > MAX_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(n, MAX_POINTS, replace=False))
        layer_idx, neuron_idx = layer_idx[keep], neuron_idx[keep]
    bar = go.Bar(x=np.arange(n_layers), y=mask.sum(axis=1), marker_color="#7f7f7f", showlegend=False,
                 hovertemplate="layer %{x}: %{y} neurons<extra></extra>")
    dots = []
    for lang in stats.langs:
        chosen = lang == key[2]
        dots.append(go.Scatter(
            x=layer_idx * d_mlp + neuron_idx, y=probs[lang][layer_idx, neuron_idx], mode="markers",
            name=lang, legendgroup=lang,
            marker=dict(color=colors[lang], size=7 if chosen else 4, opacity=0.95 if chosen else 0.5),
            customdata=np.stack([layer_idx, neuron_idx, means[lang][layer_idx, neuron_idx]], axis=-1),
            hovertemplate="layer %{customdata[0]}, neuron %{customdata[1]}<br>P(active) %{y:.2f}, "
                          "mean %{customdata[2]:.3f}<extra>" + lang + "</extra>"))
    return [bar] + dots, n


def layer_view(layer):
    """Layout changes that show every layer side by side (None) or one layer's neurons."""
    if layer is None:
        return {"xaxis2.range": [0, n_layers * d_mlp], "xaxis2.title.text": "layer (its neurons side by side)",
                "xaxis2.tickvals": [l * d_mlp + d_mlp / 2 for l in range(n_layers)],
                "xaxis2.ticktext": [str(l) for l in range(n_layers)]}
    ticks = np.linspace(0, d_mlp, 5).astype(int)
    return {"xaxis2.range": [layer * d_mlp, (layer + 1) * d_mlp], "xaxis2.title.text": f"neuron of layer {layer}",
            "xaxis2.tickvals": (layer * d_mlp + ticks).tolist(), "xaxis2.ticktext": [str(t) for t in ticks]}


def explorer_figure(keys, layer=None, start=None):
    """One selection (widgets) or all of them behind two dropdown menus (static HTML): a
    neuron set (method · category · language) and a layer; ``start`` is the selection shown first."""
    first = keys.index(start) if start in keys else 0
    fig = make_subplots(rows=2, cols=1, row_heights=[0.3, 0.7], vertical_spacing=0.14, subplot_titles=(
        "selected neurons per layer", "activation probability of the selected neurons, by language"))
    n_traces, sizes = [], []
    for i, key in enumerate(keys):
        traces, n = selection_traces(key)
        sizes.append(n)
        n_traces.append(len(traces))
        for t in traces:
            t.visible = i == first
            fig.add_trace(t, row=1 if isinstance(t, go.Bar) else 2, col=1)
    plotting.apply_style(fig, title=f"{label(keys[first])}: {sizes[first]} neurons", height=680)
    fig.update_yaxes(title_text="neurons", row=1, col=1)
    fig.update_yaxes(title_text="P(active)", range=[-0.03, 1.03], row=2, col=1)
    for l in range(1, n_layers):
        fig.add_vline(x=l * d_mlp, line_width=0.5, line_color="#d0d0d0", row=2, col=1)
    fig.update_layout(layer_view(layer))
    if len(keys) > 1:
        buttons, start = [], 0
        for key, k, n in zip(keys, n_traces, sizes):
            visible = [False] * sum(n_traces)
            visible[start:start + k] = [True] * k
            start += k
            buttons.append(dict(label=label(key), method="update",
                                args=[{"visible": visible}, {"title.text": f"{label(key)}: {n} neurons"}]))
        layers = [dict(label="all layers", method="relayout", args=[layer_view(None)])]
        layers += [dict(label=f"layer {l}", method="relayout", args=[layer_view(l)]) for l in range(n_layers)]
        menu = dict(direction="down", y=1.12, yanchor="bottom", xanchor="left", showactive=True)
        fig.update_layout(updatemenus=[dict(buttons=buttons, active=first, x=0.0, **menu), dict(buttons=layers, x=0.42, **menu)],
                          margin=dict(t=170), title=dict(y=0.985, yanchor="top"))
        for x, text in ((0.0, "neuron set: method · category · language"), (0.42, "layer")):
            fig.add_annotation(x=x, y=1.205, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                               text=text, showarrow=False, font=dict(size=12, color="#555555"))
    return fig
'''

EXPLORER = nb([
    ("md", """
# 05 · Explorer: neuron sets by method, category, language and layer

Pick a **method** (CLAS, LAPE, AP, mean), a **category** (all-shared, partial-shared,
specific, non-activated: the categories a method produces), a **language** and a **layer**, and
see how many neurons the set holds per layer and how often each fires in every language.
With `ipywidgets` installed (`make lab` installs it) the choices are four dropdowns; without it
(e.g. static HTML, CI) the same figure carries two plotly dropdown menus: the neuron set
(method · category · language) and the layer. Methods: `docs/methods.md`, "Neuron categories"
and "Peer methods".
"""),
    params("""
LANGS = ["en", "de", "ru", "zh", "sw"]
N_SENTENCES = 24
METHODS = {"clas": {}, "lape": {}, "ap": {"top_k": 500, "bottom_k": 0}, "mean": {}}   # method: parameters
MAX_POINTS = 300           # neurons drawn per selection (a seeded sample of larger sets)
WIDGETS = "auto"           # "auto": ipywidgets when installed; False: the static figure
START = ("clas", "specific", "de")   # the selection the static figure shows first
EXPORT_HTML = None         # a file name: also write the static explorer as self-contained HTML
"""),
    ("code", SETUP),
    ("code", """
import pandas as pd
stats = clas_lens.collect_stats(model, corpus, site="act", per_sentence="ap" in METHODS)
sets = {m: clas_lens.identify_neurons(stats, method=m, **kw) for m, kw in METHODS.items()}
from clas_lens.vocab import CATEGORIES
pd.DataFrame({m: s.counts().groupby("category")["count"].sum() for m, s in sets.items()}).reindex(CATEGORIES).fillna(0).astype(int)
"""),
    ("md", "The figure: a bar of the selected neurons per layer, and below it each selected neuron's activation probability in every language (the chosen language drawn larger)."),
    ("code", EXPLORER_FIGURE),
    ("code", """
import importlib.util
from IPython.display import display

use_widgets = WIDGETS is True or (WIDGETS == "auto" and importlib.util.find_spec("ipywidgets") is not None)
if use_widgets:
    import ipywidgets as W

    method = W.Dropdown(options=list(sets), description="method")
    category = W.Dropdown(description="category")
    lang = W.Dropdown(options=stats.langs, value=stats.langs[-1], description="language")
    layer = W.Dropdown(options=[("all", None)] + [(str(l), l) for l in range(n_layers)], description="layer")

    def categories_of(change=None):
        category.options = sorted({c for (m, c, _) in SELECTIONS if m == method.value}, key=CATEGORIES.index)

    method.observe(categories_of, names="value")
    categories_of()

    def show(method, category, lang, layer):
        key = (method, category, lang) if (method, category, lang) in SELECTIONS else (method, category, None)
        if key not in SELECTIONS:
            print("no such selection"); return
        explorer_figure([key], layer=layer).show()
        sel = np.argwhere(SELECTIONS[key] if layer is None else SELECTIONS[key] * (np.arange(n_layers) == layer)[:, None])
        top = pd.DataFrame(sel, columns=["layer", "neuron"]).assign(**{f"P({l})": probs[l][sel[:, 0], sel[:, 1]] for l in stats.langs})
        display(top.sort_values(f"P({lang})", ascending=False).head(10))

    out = W.interactive_output(show, {"method": method, "category": category, "lang": lang, "layer": layer})
    display(W.HBox([method, category, lang, layer]), out)
else:
    print("ipywidgets is not installed (`make lab` installs it): the static explorer, with dropdown menus.")
static = explorer_figure(list(SELECTIONS), start=START)
static
"""),
    ("code", """
if EXPORT_HTML:
    target = Path(EXPORT_HTML).expanduser()
    if not target.is_absolute():
        target = (ROOT or Path.cwd()) / target
    target.parent.mkdir(parents=True, exist_ok=True)
    static.write_html(target, include_plotlyjs=True, full_html=True)
    print("wrote", target)
"""),
])

ONE_NEURON = nb([
    ("md", """
# 06 · One neuron: what it responds to, what it does

Pick one MLP neuron (by default: the neuron of the CLAS bridge layers most specific to `LANG`,
the largest gap between its activation probability in `LANG` and in any other language) and
look at it closely: how often and how strongly it fires in each language, on which tokens, how
much the cloze task relies on it (activation x gradient attribution), and what editing it alone
does to the task and to a greedy continuation. See `docs/methods.md`, "Neuron sites",
"Neuron categories" and "Peer methods" (attribution).
"""),
    params("""
LANGS = ["en", "de", "es", "sw"]
N_SENTENCES = 16
LANG = "de"                # the language whose neuron we look for
LAYER, NEURON = None, None # or pick one yourself, e.g. LAYER, NEURON = 15, 1234
N_SHOW = 2                 # sentences per language in the token view
LIMIT = 6                  # cloze items for attribution and editing
BOOST_SD = 3.0             # the "boosted" edit adds this many standard deviations (in LANG)
"""),
    ("code", SETUP),
    ("code", """
import pandas as pd
from clas_lens.specs import resolve_layers

stats = clas_lens.collect_stats(model, corpus, site="act")
neurons = clas_lens.identify_neurons(stats, method="clas")
sites = clas_lens.neuron_sites(model)
p = torch.stack([stats.active_prob(l) for l in stats.langs])        # [lang, layer, neuron]
if LAYER is None or NEURON is None:
    i = stats.langs.index(LANG)
    contrast = p[i] - torch.cat([p[:i], p[i + 1:]]).amax(0)          # P(LANG) - max P(other)
    bridge = torch.zeros(sites.shape, dtype=torch.bool)
    bridge[resolve_layers("last:4", sites.n_layers)] = True
    pool = bridge & neurons.mask("specific", LANG)
    pool = pool if pool.any() else bridge
    LAYER, NEURON = divmod(int(torch.where(pool, contrast, torch.tensor(-2.0)).argmax()), sites.d_mlp)
in_categories = [c for c in neurons.categories if bool(neurons.mask(c, LANG)[LAYER, NEURON])]
print(f"layer {LAYER}, neuron {NEURON}: CLAS categories for {LANG}: {in_categories}")
profile = pd.DataFrame({
    "lang": stats.langs,
    "p_active": [float(stats.active_prob(l)[LAYER, NEURON]) for l in stats.langs],
    "mean": [float(stats.mean(l)[LAYER, NEURON]) for l in stats.langs],
    "std": [float(stats.std(l)[LAYER, NEURON]) for l in stats.langs],
})
profile
"""),
    ("code", """
import plotly.graph_objects as go
colors = plotting.lang_colors(stats.langs)
fig = go.Figure(go.Bar(x=profile.lang, y=profile.p_active, marker_color=[colors[l] for l in profile.lang],
                       error_y=None, customdata=profile[["mean", "std"]],
                       hovertemplate="%{x}: P(active) %{y:.2f}, mean %{customdata[0]:.3f}<extra></extra>"))
plotting.apply_style(fig, title=f"L{LAYER}.N{NEURON}: how often it fires, by language")
fig.update_yaxes(title_text="P(active)", range=[0, 1])
fig
"""),
    ("md", "## On which tokens\nThe neuron's activation (site `act`) on every real token of a few parallel sentences; the forward stops after its layer."),
    ("code", """
import numpy as np
from clas_lens.stats.reader import read_forward


def token_activations(texts):
    enc = clas_lens.encode(model, texts)
    got = {}
    hooks = sites.read_hooks("act", LAYER, lambda v: got.__setitem__("v", v[..., NEURON].float().cpu()))
    read_forward(model, enc, hooks, stop_after_layer=LAYER)
    out = []
    for b in range(len(texts)):
        real = enc.real_mask[b].cpu()
        ids = enc.input_ids[b].cpu()[real].tolist()
        out.append((model.tokenizer.convert_ids_to_tokens(ids), got["v"][b][real].numpy()))
    return out


rows, tokens = [], []
for lang in stats.langs:
    texts = corpus.texts(lang)
    for j, (toks, vals) in enumerate(token_activations(texts)):
        tokens += [{"lang": lang, "token": t, "activation": float(v)} for t, v in zip(toks, vals)]
        if j < N_SHOW:
            rows.append((f"{lang} · {corpus.ids[j]}", toks[:24], vals[:24]))
width = max(len(t) for _, t, _ in rows)
z = np.full((len(rows), width), np.nan)
text = np.full((len(rows), width), "", dtype=object)
for r, (_, toks, vals) in enumerate(rows):
    z[r, :len(vals)] = vals
    text[r, :len(toks)] = [t.replace("\\u2581", " ") for t in toks]
fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", y=[r[0] for r in rows], colorscale="RdBu",
                           zmid=0, colorbar=dict(title="act"), hovertemplate="%{text}: %{z:.3f}<extra>%{y}</extra>"))
plotting.apply_style(fig, title=f"L{LAYER}.N{NEURON} on each token", height=120 + 40 * len(rows))
fig.update_yaxes(autorange="reversed")
fig.update_xaxes(title_text="token position", showgrid=False)
fig
"""),
    ("code", """
tok = pd.DataFrame(tokens)
tok.sort_values("activation", ascending=False).groupby("lang").head(3).sort_values(["lang", "activation"], ascending=[True, False])
"""),
    ("md", "## Attribution\nActivation x gradient of the cloze margin for every neuron of its layer in `LANG`: where does our neuron rank?"),
    ("code", """
task = clas_lens.load_task("cloze", langs=sorted({"en", LANG}))
attr = clas_lens.attribute_neurons(model, task, LANG, site="act", layers=[LAYER], limit=LIMIT)
attr["rank"] = attr["score"].abs().rank(ascending=False).astype(int)
print(f"L{LAYER}.N{NEURON}: score {float(attr.loc[attr.neuron == NEURON, 'score'].iloc[0]):+.4f}, "
      f"rank {int(attr.loc[attr.neuron == NEURON, 'rank'].iloc[0])} of {len(attr)} by |score|")
plotting.top_attributed_neurons(attr, k=12)
"""),
    ("md", "## Editing it alone\nZero it, or add `BOOST_SD` standard deviations of its activation in `LANG`, at every position; evaluate the cloze task (English, the anchor, beside it) and compare greedy continuations."),
    ("code", """
mask = torch.zeros(sites.shape, dtype=torch.bool)
mask[LAYER, NEURON] = True
boost = BOOST_SD * float(stats.std(LANG)[LAYER, NEURON])
edits = {
    "unsteered": None,
    "zeroed": clas_lens.Deactivate(mask, site="act"),
    "boosted": clas_lens.AddNeurons(mask, amount=boost, site="act"),
}
results = clas_lens.evaluate(model, task, [LANG], edits, limit=LIMIT, n_boot=300)
results[results.metric.isin(["accuracy", "margin"])][["lang", "condition", "metric", "value", "diff", "diff_ci_low", "diff_ci_high", "p_value"]]
"""),
    ("code", """
prompt = task.items(LANG)[0].prompt
rows = []
for name, edit in edits.items():
    with clas_lens.steer(model, *([edit] if edit else [])):
        rows.append({"condition": name, "prompt": prompt,
                     "continuation": clas_lens.generate(model, [prompt], max_new_tokens=8, stop="\\n")[0]})
pd.DataFrame(rows)
"""),
])

COMPARE = nb([
    ("md", """
# 07 · Methods compared: CLAS, LAPE, AP and mean-activation neurons

Do the methods find the same language neurons? And on a small task, how does CLAS compare with
the baselines (Int-mu, LAPE and AP deactivation) and with two controls: CLAS on **random
neurons** (the same number per layer and category, at random positions) and CLAS with
`beta = gamma = 0` (an exact no-op: its gain must be 0)? See `docs/methods.md`, "Neuron
categories", "The CLAS rule", "Peer methods" and "Evaluation".
"""),
    params("""
LANGS = ["en", "de", "sw"]
N_SENTENCES = 24
LIMIT = 6
LAYERS = "last:4"
BETA, GAMMA = 0.5, 0.2
AP_TOP_K = 500
"""),
    ("code", SETUP),
    ("code", """
import pandas as pd
stats = clas_lens.collect_stats(model, corpus, site="act", per_sentence=True)
sets = {
    "CLAS": clas_lens.identify_neurons(stats, method="clas"),
    "LAPE": clas_lens.identify_neurons(stats, method="lape"),
    "AP": clas_lens.identify_neurons(stats, method="ap", top_k=AP_TOP_K, bottom_k=0),
    "mean": clas_lens.identify_neurons(stats, method="mean"),
}
pd.DataFrame({m: {l: int(s.mask("specific", l).sum()) for l in stats.langs} for m, s in sets.items()}).rename_axis("lang")
"""),
    ("md", "## Overlap of the language-specific sets\nJaccard of two methods' specific neurons for the same language, averaged over languages."),
    ("code", """
import numpy as np


def jaccard(a, b):
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else float("nan")

names = list(sets)
overlap = pd.DataFrame(
    [[float(np.nanmean([jaccard(sets[a].mask("specific", l), sets[b].mask("specific", l)) for l in stats.langs]))
      for b in names] for a in names], index=names, columns=names)
plotting.overlap_heatmap(overlap, title="Specific neurons: overlap between methods (mean over languages)")
"""),
    ("md", "## CLAS vs baselines vs controls on the cloze task"),
    ("code", """
from clas_lens.steering import MaskSet


def random_like(ns, seed=0):
    \"\"\"The same number of neurons per layer in each category CLAS uses, at random positions.\"\"\"
    g = torch.Generator().manual_seed(seed)

    def shuffle(m):
        out = torch.zeros_like(m)
        for l in range(m.shape[0]):
            k = int(m[l].sum())
            if k:
                out[l, torch.randperm(m.shape[1], generator=g)[:k]] = True
        return out

    return MaskSet(langs=ns.langs, specific={l: shuffle(ns.mask("specific", l)) for l in ns.langs},
                   categories={"partial_shared": shuffle(ns.mask("partial_shared"))})


clas_set = sets["CLAS"]
conditions = {
    "unsteered": None,
    "CLAS": clas_lens.ClasSteering(clas_set, layers=LAYERS, beta=BETA, gamma=GAMMA),
    "Int-mu": clas_lens.SetNeurons.int_mu(clas_set, stats, layers=LAYERS),
    "LAPE off": clas_lens.Deactivate(sets["LAPE"]),
    "AP off": clas_lens.Deactivate(sets["AP"]),
    "control: CLAS random neurons": clas_lens.ClasSteering(random_like(clas_set), layers=LAYERS, beta=BETA, gamma=GAMMA),
    "control: CLAS beta=gamma=0": clas_lens.ClasSteering(clas_set, layers=LAYERS, beta=0.0, gamma=0.0),
}
task = clas_lens.load_task("cloze", langs=LANGS)
results = clas_lens.evaluate(model, task, LANGS, conditions, limit=LIMIT, n_boot=300)
acc = results[results.metric == "accuracy"]
acc.pivot(index="condition", columns="lang", values="diff").loc[[c for c in conditions if c != "unsteered"]]
"""),
    ("code", """
assert (results[results.condition == "control: CLAS beta=gamma=0"]["diff"].fillna(0) == 0).all(), "beta=gamma=0 must be a no-op"
plotting.language_gains(results, anchor="en", metric="margin")
"""),
])

PAPER_TABLE = nb([
    ("md", """
# 08 · The paper table: per-language gains with CI, p-value and MDE

`clas_lens.report.paper_table` turns an `evaluate()` (or sweep) frame into the table a paper
reports: per method and language, the unsteered and steered scores, the gain with its
confidence interval, the p-value and its Holm adjustment over the target languages, and the
**minimum detectable effect** (what the items could have shown at 80 % power), the anchor
language beside them. `format_table` lays it out for `.to_latex()`. See `docs/methods.md`,
"Evaluation" and "Statistical tests".
"""),
    params("""
LANGS = ["en", "de", "es", "sw"]
N_SENTENCES = 24
LIMIT = 8
LAYERS = "last:4"
BETA, GAMMA = 0.5, 0.2
"""),
    ("code", SETUP),
    ("code", """
from clas_lens.report import format_table, paper_table

stats = clas_lens.collect_stats(model, corpus, site="act")
neurons = clas_lens.identify_neurons(stats, method="clas")
lape = clas_lens.identify_neurons(stats, method="lape")
task = clas_lens.load_task("cloze", langs=LANGS)
results = clas_lens.evaluate(model, task, LANGS, {
    "unsteered": None,
    "clas": clas_lens.ClasSteering(neurons, layers=LAYERS, beta=BETA, gamma=GAMMA),
    "int_mu": clas_lens.SetNeurons.int_mu(neurons, stats, layers=LAYERS),
    "lape_off": clas_lens.Deactivate(lape),
}, limit=LIMIT, n_boot=500)
"""),
    ("code", """
labels = {"clas": "CLAS", "int_mu": "Int-$\\\\mu$", "lape_off": "LAPE deact."}
table = paper_table(results, metric="accuracy", methods=labels)
table
"""),
    ("md", "Laid out for the paper (`*`: Holm-adjusted p below 0.05), and as LaTeX:"),
    ("code", """
wide = format_table(table)
print(wide.to_latex(caption=f"Cloze accuracy gain over the unsteered model ({LIMIT} items per language, 95\\\\% CI).",
                    label="tab:gains"))
wide
"""),
    ("md", "The margin (a continuous metric): its MDE comes from the SD of the paired differences."),
    ("code", "paper_table(results, metric='margin', methods=labels)[['method', 'lang', 'gain', 'gain_ci_low', 'gain_ci_high', 'p_holm', 'mde']]"),
    ("md", "A sweep works the same way: `paper_table(load_sweep(run_dir), methods={...})` (or the run's `sweep.csv`), one row per setting."),
    ("code", """
from IPython.display import display
from clas_lens.pipeline import read_sweep_csv

demo = (ROOT / "runs" / "demo") if ROOT is not None else None
if demo is not None and (demo / "sweep.csv").exists():
    sweep = read_sweep_csv(demo)
    display(format_table(paper_table(sweep, metric="accuracy")))
else:
    print("No runs/demo/sweep.csv in this checkout (`make demo` writes it): skipped.")
"""),
])


def books() -> dict:
    return {
        "05_explorer.ipynb": EXPLORER,
        "06_one_neuron.ipynb": ONE_NEURON,
        "07_compare_methods.ipynb": COMPARE,
        "08_paper_table.ipynb": PAPER_TABLE,
    }
