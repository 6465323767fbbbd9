"""clas_lens/configs/paper_*.toml: the paper's setting passes the checks offline, and each config
runs END TO END on a tiny random Llama with local files in the exact Hugging Face schemas of
FLORES (corpus), XNLI and XQuAD. Only what a CPU test must change is overridden: the model
(a saved tiny folder, float32, cpu), the data (local files instead of the hub), the sizes
(items per language, generated tokens, bootstrap draws, batch sizes) and the run directory; languages, tasks, splits, the
CLAS grid, baselines and controls stay the paper's."""
from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path

import pandas as pd
import pytest

from clas_lens import config
from clas_lens.languages import XNLI_LANGS, XQUAD_LANGS
from clas_lens.pipeline import run_pipeline
from clas_lens.pipeline.inputs import check_inputs
from clas_lens.pipeline.steps import check_gain_metric, sweep_grid
from clas_lens.sweep.methods import control_methods

CONFIGS = config.default_config_path().parent
PAPER = {"paper_llama31_8b": "meta-llama/Llama-3.1-8B", "paper_qwen25_7b": "Qwen/Qwen2.5-7B"}
N_SENTENCES = 20  # enough for the corpus's stats / dev / test split to give every part items
N_ITEMS = 8  # XNLI and XQuAD items per language (their dev and test splits both get some)

# The project's own translations of the first 20 sentences of the embedded corpus, for the four
# XNLI / XQuAD languages the embedded corpus lacks.
EXTRA = {
    "fr": [
        "Le bus pour le marché part tous les matins à sept heures.",
        "Ma grand-mère entretient un petit jardin avec des tomates, des haricots et des oignons derrière sa maison.",
        "Pourrais-tu fermer la fenêtre avant que la pluie n'entre ?",
        "Le week-end dernier, nous avons peint les murs de la cuisine en jaune clair.",
        "Les enfants jouent au football dans le parc jusqu'à la tombée de la nuit.",
        "Il a beaucoup neigé pendant la nuit, donc les écoles sont fermées aujourd'hui.",
        "N'oublie pas d'éteindre la lumière quand tu quittes la pièce.",
        "Je bois généralement une tasse de thé au lait avant de commencer le travail.",
        "Le médecin lui a dit de se reposer à la maison pendant trois jours.",
        "Notre train a eu quarante minutes de retard à cause d'un problème sur la voie.",
        "Elle a acheté du pain frais, du fromage et un sac de pommes au magasin.",
        "Combien coûte un billet pour le centre-ville ?",
        "Le fermier se lève avant le lever du soleil pour nourrir les vaches et les poules.",
        "Mon frère apprend à jouer de la guitare le soir.",
        "La rivière près de notre village déborde presque chaque printemps.",
        "Sais-tu où je peux trouver une bonne pharmacie près d'ici ?",
        "Le musée est gratuit pour les étudiants le premier dimanche de chaque mois.",
        "Nous rendrons visite à nos cousins à la montagne pendant les vacances d'été.",
        "Le prix du riz a beaucoup augmenté cette année.",
        "Il a oublié son parapluie dans le bus et il a été complètement trempé.",
    ],
    "ro": [
        "Autobuzul spre piață pleacă în fiecare dimineață la ora șapte.",
        "Bunica mea are o grădină mică cu roșii, fasole și ceapă în spatele casei.",
        "Poți te rog să închizi fereastra înainte să intre ploaia?",
        "Weekendul trecut am vopsit pereții bucătăriei într-un galben deschis.",
        "Copiii joacă fotbal în parc până se întunecă.",
        "A nins puternic în timpul nopții, așa că școlile sunt închise astăzi.",
        "Te rog să nu uiți să stingi lumina când ieși din cameră.",
        "De obicei beau o ceașcă de ceai cu lapte înainte să încep lucrul.",
        "Doctorul i-a spus să stea acasă și să se odihnească trei zile.",
        "Trenul nostru a întârziat patruzeci de minute din cauza unei probleme la linie.",
        "Ea a cumpărat pâine proaspătă, brânză și o pungă de mere de la magazin.",
        "Cât costă un bilet până în centrul orașului?",
        "Fermierul se trezește înainte de răsărit ca să hrănească vacile și găinile.",
        "Fratele meu învață să cânte la chitară seara.",
        "Râul de lângă satul nostru se revarsă aproape în fiecare primăvară.",
        "Știi unde pot găsi o farmacie bună prin apropiere?",
        "Muzeul este gratuit pentru studenți în prima duminică a fiecărei luni.",
        "Îi vom vizita pe verii noștri la munte în vacanța de vară.",
        "Prețul orezului a crescut mult anul acesta.",
        "Și-a uitat umbrela în autobuz și s-a udat complet.",
    ],
    "bg": [
        "Автобусът за пазара тръгва всяка сутрин в седем часа.",
        "Баба ми има малка градина с домати, боб и лук зад къщата си.",
        "Би ли затворил прозореца, преди да завали?",
        "Миналия уикенд боядисахме стените на кухнята в светложълто.",
        "Децата играят футбол в парка, докато се стъмни.",
        "През нощта валя силен сняг, затова днес училищата са затворени.",
        "Моля, не забравяй да изгасиш лампите, когато излизаш от стаята.",
        "Обикновено пия чаша чай с мляко, преди да започна работа.",
        "Лекарят му каза да почива вкъщи три дни.",
        "Влакът ни закъсня с четиридесет минути заради проблем с линията.",
        "Тя купи пресен хляб, сирене и торба ябълки от магазина.",
        "Колко струва един билет до центъра на града?",
        "Фермерът става преди изгрев, за да нахрани кравите и кокошките.",
        "Брат ми се учи да свири на китара вечер.",
        "Реката край нашето село прелива почти всяка пролет.",
        "Знаеш ли къде наблизо мога да намеря добра аптека?",
        "Музеят е безплатен за студенти в първата неделя на всеки месец.",
        "През лятната ваканция ще гостуваме на братовчедите си в планината.",
        "Цената на ориза се повиши много тази година.",
        "Той забрави чадъра си в автобуса и се намокри до кости.",
    ],
    "ur": [
        "بازار جانے والی بس ہر صبح سات بجے روانہ ہوتی ہے۔",
        "میری دادی اپنے گھر کے پیچھے ٹماٹر، پھلیاں اور پیاز کا ایک چھوٹا سا باغ رکھتی ہیں۔",
        "کیا آپ بارش آنے سے پہلے کھڑکی بند کر دیں گے؟",
        "ہم نے پچھلے ہفتے کے آخر میں باورچی خانے کی دیواروں کو ہلکا پیلا رنگ کیا۔",
        "بچے اندھیرا ہونے تک پارک میں فٹ بال کھیل رہے ہیں۔",
        "رات بھر شدید برف باری ہوئی، اس لیے آج اسکول بند ہیں۔",
        "براہ کرم کمرے سے نکلتے وقت بتیاں بند کرنا یاد رکھیں۔",
        "میں عام طور پر کام شروع کرنے سے پہلے دودھ والی چائے کا ایک کپ پیتا ہوں۔",
        "ڈاکٹر نے اسے تین دن گھر پر آرام کرنے کو کہا۔",
        "پٹری پر ایک خرابی کی وجہ سے ہماری ٹرین چالیس منٹ لیٹ ہو گئی۔",
        "اس نے دکان سے تازہ روٹی، پنیر اور سیبوں کا ایک تھیلا خریدا۔",
        "شہر کے مرکز تک ٹکٹ کتنے کا ہے؟",
        "کسان گایوں اور مرغیوں کو چارہ ڈالنے کے لیے سورج نکلنے سے پہلے اٹھتا ہے۔",
        "میرا بھائی شام کو گٹار بجانا سیکھ رہا ہے۔",
        "ہمارے گاؤں کے قریب دریا تقریباً ہر بہار میں سیلاب لاتا ہے۔",
        "کیا آپ جانتے ہیں کہ مجھے قریب میں کوئی اچھی فارمیسی کہاں ملے گی؟",
        "ہر مہینے کے پہلے اتوار کو طلبہ کے لیے عجائب گھر مفت ہوتا ہے۔",
        "ہم گرمیوں کی چھٹیوں میں پہاڑوں پر اپنے کزنز سے ملنے جائیں گے۔",
        "اس سال چاول کی قیمت بہت بڑھ گئی ہے۔",
        "وہ اپنی چھتری بس میں بھول گیا اور پوری طرح بھیگ گیا۔",
    ],
}


def _sentences(lang: str) -> list[str]:
    if lang in EXTRA:
        return EXTRA[lang]
    from clas_lens.data.corpus import load_corpus

    return load_corpus("default", langs=[lang], check_langid=False).texts(lang)[:N_SENTENCES]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="module")
def local_data(tmp_path_factory):
    """A tiny Llama folder and local files in the hub schemas: FLORES ({id, text} per language),
    XNLI (premise, hypothesis, label 0/1/2) and XQuAD (id, context, question, answers {text,
    answer_start})."""
    from clas_lens.testing import tiny_model_folder

    root = tmp_path_factory.mktemp("paper")
    langs = sorted(set(XNLI_LANGS) | set(XQUAD_LANGS))
    for lang in langs:
        s = _sentences(lang)
        _write_jsonl(root / "flores" / f"{lang}.jsonl", [{"id": k + 1, "text": t} for k, t in enumerate(s)])
        _write_jsonl(root / "xnli" / f"{lang}.jsonl",
                     [{"premise": s[k], "hypothesis": s[k + 1], "label": k % 3} for k in range(N_ITEMS)])
        qa = []
        for k in range(N_ITEMS):
            answer = s[k].split()[0]
            qa.append({"id": f"q{k}", "context": s[k], "question": s[k + N_ITEMS],
                       "answers": {"text": [answer], "answer_start": [s[k].index(answer)]}})
        _write_jsonl(root / "xquad" / f"{lang}.jsonl", qa)
    model = tiny_model_folder("llama", folder=root / "model")
    return {"root": root, "model": str(model)}


def _overrides(data: dict, name: str) -> dict:
    root = data["root"]
    return {
        "run.name": name,
        "run.out_dir": str(root / "runs"),
        "model.name": data["model"],
        "model.dtype": "float32",
        "model.device": "cpu",
        "corpus.name": str(root / "flores"),
        "corpus.cluster_limit": 0,
        "eval.options.xnli.data_files": str(root / "xnli" / "{lang}.jsonl"),
        "eval.options.xquad.data_files": str(root / "xquad" / "{lang}.jsonl"),
        "eval.options.xquad.max_new_tokens": 4,
        "eval.limits": {"xnli": 2, "xquad": 2},
        "eval.n_boot": 50,
        "eval.batch_size": 8,
        "clusters.batch_size": 8,
    }


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_is_the_papers_setting_and_passes_the_checks_offline(name):
    raw = tomllib.loads((CONFIGS / f"{name}.toml").read_text(encoding="utf-8"))
    cfg = config.load(CONFIGS / f"{name}.toml")
    assert cfg.model.name == PAPER[name] and cfg.model.dtype == "bfloat16" and cfg.model.device == "cuda"
    assert cfg.eval.tasks == ["xnli", "xquad"] and cfg.eval.gain_task == "xnli"
    assert cfg.task_langs("xnli") == ["en", *sorted(set(XNLI_LANGS) - {"en"})]
    assert set(cfg.task_langs("xquad")) == set(XQUAD_LANGS) and "sw" not in cfg.task_langs("xquad")
    assert set(cfg.corpus.langs) == set(XNLI_LANGS) | set(XQUAD_LANGS)
    assert cfg.task_options("xnli")["hub_split"] == "test" and cfg.task_options("xquad")["hub_split"] == "validation"
    assert cfg.task_options("xnli")["dataset"] == "facebook/xnli" and cfg.task_options("xquad")["dataset"] == "google/xquad"
    s = cfg.steering
    assert s.layers == "last:4" and len(s.betas) >= 3 and len(s.gammas) >= 3 and s.alphas == [1.0]
    assert {"clas", "int_mu", "lape_deactivate", "diffmean"} | set(control_methods()) == set(s.methods)
    assert cfg.stats.site == "act" and raw["eval"]["limits"] == {}
    notes = check_inputs(cfg, devices=False)  # offline: the hub is named, never fetched
    assert any(PAPER[name] in n and "hub id" in n for n in notes)
    check_gain_metric(cfg)
    assert sweep_grid(cfg, "xquad").all_langs == cfg.task_langs("xquad")


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_runs_end_to_end_on_a_tiny_model(name, local_data):
    cfg = config.load(CONFIGS / f"{name}.toml", _overrides(local_data, name))
    logs: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_dir = run_pipeline(cfg, figures=False, log=logs.append)
    sweep = pd.read_csv(run_dir / "sweep.csv")
    for task, langs in (("xnli", XNLI_LANGS), ("xquad", XQUAD_LANGS)):
        sub = sweep[sweep.task == task]
        assert set(sub.lang) == set(langs), task
        assert set(sub.method) == {"unsteered", *cfg.steering.methods}, task
    assert "sw" not in set(sweep[sweep.task == "xquad"].lang)
    assert set(sweep[sweep.task == "xquad"].metric) >= {"f1", "exact_match"}
    clas = sweep[(sweep.task == "xnli") & (sweep.method == "clas") & (sweep.metric == "accuracy")]
    assert set(clas.lang) == set(XNLI_LANGS)
    div = pd.read_csv(run_dir / "clusters" / "divergence.csv")
    assert set(div.hypothesis) >= {"separation"} and int(div.n.iloc[0]) == 14
    saved = json.loads((run_dir / "run.json").read_text())["config"]
    assert saved["model"]["dtype"] == "float32" and saved["eval"]["langs"]["xquad"] == cfg.eval.langs["xquad"]
    assert any(line.startswith("task xquad: 12 languages") for line in logs)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_passes_run_check_offline(name, tmp_path, capsys):
    from clas_lens.cli import main

    path = CONFIGS / f"{name}.toml"
    assert main(["run", str(path), "--check", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"config OK: {path}" in out and f"hub id '{PAPER[name]}'" in out and "device: cuda" in out
    assert "task xquad: 12 languages" in out and "task xnli: 15 languages" in out


def test_configs_are_found_by_name_and_from_the_repository_root(tmp_path, capsys, monkeypatch):
    from clas_lens.cli import main
    from clas_lens.errors import DataValidationError

    repo = CONFIGS.parent.parent
    if (repo / "configs").is_dir():  # a source checkout: `configs/` links to the packaged configs
        monkeypatch.chdir(repo)
        assert main(["run", "--check", "configs/paper_llama31_8b.toml", "--out-dir", str(tmp_path)]) == 0
        assert "config OK: configs/paper_llama31_8b.toml" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # anywhere: a packaged config by its name
    assert main(["run", "--check", "paper_qwen25_7b", "--out-dir", str(tmp_path)]) == 0
    assert f"config OK: {CONFIGS / 'paper_qwen25_7b.toml'}" in capsys.readouterr().out
    with pytest.raises(DataValidationError, match=r"does not exist; .*\['demo', 'paper_llama31_8b', 'paper_qwen25_7b'\]"):
        config.load("paper_llama3")
