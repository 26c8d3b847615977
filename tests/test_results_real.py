"""The results package on REAL lm-eval outputs: `lm_eval run` on two tiny checkpoints over three of
our tasks (two languages), checkpoint A with few-shot seeds 1 and 2, checkpoint B with seed 1."""
import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from medtasks.cli import main as medeval
from medtasks.metrics import expected_calibration_error

ROOT = Path(__file__).resolve().parent.parent
TASKS = "mmlu_anatomy_en,mmlu_medical_genetics_en,mmlu_anatomy_fr"
LIMIT = 8


# lm-eval's own CLI, called in ONE process for the three runs (its start-up, ~10 s, is paid once).
_RUNNER = """
import json, sys
from lm_eval.__main__ import cli_evaluate
for model, out, seed, tasks, limit in json.loads(sys.argv[1]):
    sys.argv = ["lm_eval", "run", "--model", "hf", "--model_args", "pretrained=" + model, "--device", "cpu",
                "--tasks", tasks, "--limit", str(limit), "--log_samples", "--output_path", out,
                "--metadata", json.dumps({"fewshot_seed": seed})]
    cli_evaluate()
"""


@pytest.fixture(scope="session")
def runs(shared_data, tiny_llama, tmp_path_factory):
    """{"A": folder, "B": folder, "models": {...}}: real lm-eval output folders (run from the repo root,
    so lm-eval records this project's commit)."""
    from tiny import build_tiny_model

    other = build_tiny_model(tmp_path_factory.mktemp("tiny_llama_b"), "llama", seed=1)
    out = tmp_path_factory.mktemp("lm_eval_out")
    plan = [(str(tiny_llama), str(out / "A"), 1, TASKS, LIMIT), (str(tiny_llama), str(out / "A"), 2, TASKS, LIMIT),
            (str(other), str(out / "B"), 1, TASKS, LIMIT)]
    env = dict(os.environ, MEDTASKS_DATA=str(shared_data), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(plan)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"A": out / "A", "B": out / "B", "root": out, "models": {"A": tiny_llama, "B": other}}


@pytest.fixture(scope="session")
def table(runs):
    from results.load import load_table

    names = {str(runs["models"]["A"]): "A", str(runs["models"]["B"]): "B"}
    return load_table([runs["root"]], names=names)


def table_sha(runs, task: str) -> str:
    """The data checksum of a task, read here from the first line of one of its samples files."""
    path = next(runs["root"].rglob(f"samples_{task}_*.jsonl"))
    return json.loads(path.read_text().splitlines()[0])["doc"]["data_sha256"]


def _results_files(folder: Path):
    return sorted(folder.rglob("results_*.json"))


def test_table_rows_and_provenance(runs, table):
    assert set(table["model"]) == {"A", "B"}
    assert len(table) == (2 + 1) * 3 * 4  # (A: 2 seeds, B: 1) x 3 tasks x 4 metrics
    a = table[table["model"] == "A"]
    assert sorted(a["fewshot_seed"].unique()) == [1, 2]
    assert set(table["language"]) == {"en", "fr"}
    assert set(table["benchmark"]) == {"mmlu_anatomy", "mmlu_medical_genetics"}
    assert set(table["regime"]) == {"biomistral_3shot"} and set(table["regime_version"]) == {1}
    assert set(table["n_shot"]) == {3} and set(table["kind"]) == {"suite"} and set(table["answers"]) == {"single"}
    # the data checksum: the sha256 of the store file the questions came from (every doc carries it)
    store = Path(os.environ["MEDTASKS_STORE"])
    for task, bench, lang, sha in table[["task", "benchmark", "language", "data_sha256"]].drop_duplicates().itertuples(index=False):
        assert sha == hashlib.sha256((store / bench / lang / "test.jsonl").read_bytes()).hexdigest(), task
    assert set(table["n_questions"]) == {LIMIT}
    assert set(table[table["task"] == "mmlu_anatomy_en"]["n_questions_full"]) == {135}
    assert set(table["lm_eval_version"]) == {"0.4.13"}
    for commit in set(table["project_commit"]):  # lm-eval ran in this repository: a commit of it
        assert subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT).returncode == 0, commit
    # the revision is the content hash of the model folder (config + weights), computed here independently
    folder = runs["models"]["A"]
    files = sorted(list(folder.glob("config.json")) + list(folder.glob("*.safetensors")))
    combined = "".join(f"{f.name}:{hashlib.sha256(f.read_bytes()).hexdigest()}\n" for f in files)
    assert set(a["model_revision"]) == {"sha256:" + hashlib.sha256(combined.encode()).hexdigest()}
    assert a["model_revision"].iloc[0] != table[table["model"] == "B"]["model_revision"].iloc[0]
    assert all(Path(p).is_file() for p in table["samples"])


def test_table_values_are_the_results_files_values(runs, table):
    for path in _results_files(runs["root"]):
        data = json.loads(path.read_text())
        for task, metrics in data["results"].items():
            rows = table[(table["source"] == str(path)) & (table["task"] == task)]
            got = dict(zip(rows["metric"], rows["value"]))
            assert got == {m: metrics[f"{m},none"] for m in ("acc", "strict_acc", "ece", "brier")}


def test_leaderboard_mean_and_population_std_over_seeds(runs, table):
    from results.leaderboard import tasks_view

    acc = {}
    for path in _results_files(runs["A"]):
        data = json.loads(path.read_text())
        acc[data["configs"]["mmlu_anatomy_en"]["metadata"]["fewshot_seed"]] = data["results"]["mmlu_anatomy_en"]["acc,none"]
    grid = tasks_view(table, language="en")
    cell = dict(grid.rows)["A"][grid.columns.index("mmlu_anatomy")]
    mean = (acc[1] + acc[2]) / 2
    assert cell.mean == pytest.approx(mean) and cell.std == pytest.approx(abs(acc[1] - acc[2]) / 2)
    assert cell.seeds == 2


def _raw_samples(results_file: Path, task: str) -> list[dict]:
    """The samples file of a task beside its results file, parsed here with json alone."""
    stamp = results_file.name[len("results_"):-len(".json")]
    path = results_file.with_name(f"samples_{task}_{stamp}.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_calibration_from_samples_matches_lm_eval(runs, table):
    """Per task, the ece and brier from the per-question samples equal lm-eval's aggregates; per language,
    Avg is the mean of the tasks' values (lm-eval's group figure) and pooled is one value over all the
    language's questions, both recomputed here from the raw sample lines."""
    from results.calibration import AVERAGE, POOLED, calibration_records

    (b_file,) = _results_files(runs["B"])
    lm_eval = json.loads(b_file.read_text())["results"]
    records = {(r["model"], r["language"], r["task"]): r for r in calibration_records(table)}
    english = ("mmlu_anatomy_en", "mmlu_medical_genetics_en")
    raw = {task: _raw_samples(b_file, task) for task in english}
    for task in english:
        ece = expected_calibration_error([s["ece"][0] for s in raw[task]], [s["ece"][1] for s in raw[task]])
        assert ece == pytest.approx(lm_eval[task]["ece,none"])
        assert records[("B", "en", task)]["ece"] == pytest.approx(ece)
        assert records[("B", "en", task)]["brier"] == pytest.approx(lm_eval[task]["brier,none"])
    average = records[("B", "en", AVERAGE)]
    assert average["ece"] == pytest.approx(sum(lm_eval[t]["ece,none"] for t in english) / 2)
    assert average["brier"] == pytest.approx(sum(lm_eval[t]["brier,none"] for t in english) / 2)
    pooled = records[("B", "en", POOLED)]
    both = raw[english[0]] + raw[english[1]]
    assert pooled["ece"] == pytest.approx(expected_calibration_error([s["ece"][0] for s in both],
                                                                     [s["ece"][1] for s in both]))
    assert pooled["brier"] == pytest.approx(sum(s["brier"] for s in both) / len(both))
    assert (pooled["questions"], pooled["questions_full"], pooled["seeds"]) == (2 * LIMIT, 135 + 100, 1)
    # A: two seeds; its per-task record is the mean and population std of the two results files' ece
    per_seed = [json.loads(f.read_text())["results"]["mmlu_anatomy_fr"]["ece,none"] for f in _results_files(runs["A"])]
    anatomy_fr = records[("A", "fr", "mmlu_anatomy_fr")]
    assert (anatomy_fr["ece"], anatomy_fr["ece_std"]) == pytest.approx((sum(per_seed) / 2, abs(per_seed[0] - per_seed[1]) / 2))


def _per_seed(folder: Path, task: str, metric: str) -> dict[int, float]:
    """{few-shot seed: value} of one task and metric, read from the results files."""
    out = {}
    for path in _results_files(folder):
        data = json.loads(path.read_text())
        out[data["configs"][task]["metadata"]["fewshot_seed"]] = data["results"][task][f"{metric},none"]
    return out


def _markdown_row(text: str, label: str) -> dict[str, str]:
    """{column: cell text} of the Markdown table row `label`."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| model |") or line.startswith("| task |"))
    row = next(line for line in lines if line.startswith(f"| {label} |"))
    return dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))


def test_leaderboard_cli_writes_three_formats(runs, tmp_path, capsys):
    names = ["--name", f"{runs['models']['A']}=A", "--name", f"{runs['models']['B']}=B"]
    assert medeval(["leaderboard", str(runs["root"]), "--view", "grid", "-o", str(tmp_path), *names]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid_acc.csv", "grid_acc.md", "grid_acc.tex"]
    md = (tmp_path / "grid_acc.md").read_text()
    a, b = _per_seed(runs["A"], "mmlu_anatomy_fr", "acc"), _per_seed(runs["B"], "mmlu_anatomy_fr", "acc")[1]
    mean, std = (a[1] + a[2]) / 2, abs(a[1] - a[2]) / 2
    bold = {"A": mean >= b, "B": b >= mean}
    row = _markdown_row(md, "mmlu_anatomy_fr")
    # lm-eval's numbers, four decimals, mean ± population std over seeds; --limit 8 marks every cell
    assert row["chance"] == "0.2500"
    assert row["A"] == (f"**{mean:.4f}**" if bold["A"] else f"{mean:.4f}") + f" ± {std:.4f}†"
    assert row["B"] == (f"**{b:.4f}**" if bold["B"] else f"{b:.4f}") + "†"
    assert "† limited run (lm_eval --limit): 3 of 3 tasks scored on a subset, 24 of 370 questions" in md
    csv_rows = {line.split(",")[0]: line.split(",") for line in (tmp_path / "grid_acc.csv").read_text().splitlines()}
    header = csv_rows["task"]
    got = dict(zip(header, csv_rows["mmlu_anatomy_fr"]))
    assert float(got["B"]) == pytest.approx(b) and (got["B_questions"], got["B_questions_full"], got["B_limited"]) == ("8", "135", "1")
    assert r"\textsuperscript{\dag}" in (tmp_path / "grid_acc.tex").read_text()
    assert medeval(["leaderboard", str(runs["root"]), "--view", "headline", *names]) == 0
    out = capsys.readouterr().out
    assert "| model | MedGen | Anat | Avg |" in out and "strict_acc" in out
    strict = _per_seed(runs["A"], "mmlu_anatomy_en", "strict_acc")
    assert _markdown_row(out, "A")["Anat"].replace("**", "") == f"{(strict[1] + strict[2]) / 2:.4f}†"


def _svg_lines(path: Path) -> list[str]:
    """The text lines of a matplotlib SVG (drawn as paths, each line kept in a comment, where XML makes
    matplotlib write `--` as `- -`)."""
    return [line.replace("- -", "--") for line in re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8"))]


def test_plots_are_valid_images(runs, tmp_path):
    from PIL import Image

    code = medeval(["plots", str(runs["root"]), "-o", str(tmp_path), "--plots", "bars", "heatmap",
                    "reliability", "variants", "--name", f"{runs['models']['A']}=A", "--base", "A"])
    assert code == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 1 + 2 + 2 + 1 and "variants_A_acc.png" in pngs
    for png in tmp_path.glob("*.png"):
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 400
        svg = ET.parse(png.with_suffix(".svg")).getroot()
        assert svg.tag.endswith("svg")
        lines = _svg_lines(png.with_suffix(".svg"))
        assert any("regime biomistral_3shot v1" in line for line in lines)  # the caption names the regime
        # every figure of these --limit 8 runs says so, and says what the mark means
        assert any(line.startswith("† limited run (lm_eval --limit): ") for line in lines), png.name


def test_figures_state_lm_eval_metric_and_unit(runs, tmp_path):
    """The reliability figure is captioned with ece (not acc) and shows, per language, the ece lm-eval
    reports for the language (the mean of its tasks' ece) with lm-eval's four decimals; the heatmap
    annotates each task with the value of the results file."""
    assert medeval(["plots", str(runs["B"]), "-o", str(tmp_path), "--plots", "reliability", "heatmap"]) == 0
    data = json.loads(_results_files(runs["B"])[0].read_text())["results"]
    english = (data["mmlu_anatomy_en"]["ece,none"] + data["mmlu_medical_genetics_en"]["ece,none"]) / 2
    (reliability,) = tmp_path.glob("reliability_*.svg")
    lines = _svg_lines(reliability)
    assert f"English: ece {english:.4f}†" in lines
    assert f"French: ece {data['mmlu_anatomy_fr']['ece,none']:.4f}†" in lines
    assert any(line.startswith("metric ece (fractions 0..1, as lm-eval reports them)") for line in lines)
    assert not any("metric acc" in line for line in lines)
    (heatmap,) = tmp_path.glob("heatmap_*.svg")
    assert f"{data['mmlu_anatomy_fr']['acc,none']:.4f}†" in _svg_lines(heatmap)


def test_compare_same_run_is_no_regression(runs, capsys):
    assert medeval(["compare", str(runs["A"]), str(runs["A"])]) == 0
    out = capsys.readouterr().out
    assert "no significant regression" in out and "| mmlu_anatomy_fr | fr | 8 of 135† |" in out


def test_compare_two_checkpoints(runs, tmp_path, capsys):
    """Deltas equal the accuracy differences of the results files and McNemar's p the exact binomial test of
    the discordant pairs counted here from the samples; seed 2 of A has no partner and is left out."""
    from scipy.stats import binomtest

    from results.stats import stratified_bootstrap

    report = tmp_path / "cmp.json"
    code = medeval(["compare", str(runs["A"]), str(runs["B"]), "--json", str(report), "--seed", "3"])
    result = json.loads(report.read_text())
    assert code == (1 if result["regression"] else 0)
    assert result["seeds"] == [1]
    acc = {}
    for side in ("A", "B"):
        for path in _results_files(runs[side]):
            data = json.loads(path.read_text())
            if data["configs"]["mmlu_anatomy_en"]["metadata"]["fewshot_seed"] == 1:
                acc[side] = {t: m["acc,none"] for t, m in data["results"].items()}
    rows = {r["name"]: r for r in result["rows"]}
    seed_1 = {side: next(f for f in _results_files(runs[side])
                         if json.loads(f.read_text())["configs"]["mmlu_anatomy_en"]["metadata"]["fewshot_seed"] == 1)
              for side in ("A", "B")}
    for task in TASKS.split(","):
        assert rows[task]["delta"] == pytest.approx(acc["B"][task] - acc["A"][task])
        # McNemar from the questions paired by id in the raw sample lines: b = only A right, c = only B right
        right = {side: {s["doc"]["id"]: s["acc"] for s in _raw_samples(seed_1[side], task)} for side in ("A", "B")}
        assert set(right["A"]) == set(right["B"]) and len(right["A"]) == rows[task]["questions"] == LIMIT
        # the interval: the (separately tested) bootstrap over the pairs made here, with the row's stream
        ids = sorted(right["A"])
        pairs = [([right["A"][q] for q in ids], [right["B"][q] for q in ids])]
        assert (rows[task]["low"], rows[task]["high"]) == stratified_bootstrap(pairs, 10_000, 3, 0.95, task)[1:]
        b = sum(1 for q in right["A"] if right["A"][q] == 1 and right["B"][q] == 0)
        c = sum(1 for q in right["A"] if right["A"][q] == 0 and right["B"][q] == 1)
        assert rows[task]["p_value"] == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0)
    english = ["mmlu_anatomy_en", "mmlu_medical_genetics_en"]
    assert rows["medeval_en"]["delta"] == pytest.approx(sum(rows[t]["delta"] for t in english) / 2)
    assert rows["all tasks"]["delta"] == pytest.approx(sum(rows[t]["delta"] for t in TASKS.split(",")) / 3)
    again = tmp_path / "again.json"
    medeval(["compare", str(runs["A"]), str(runs["B"]), "--json", str(again), "--seed", "3"])
    assert json.loads(again.read_text()) == result  # deterministic for a given seed


def test_publish_model_index_round_trips_through_huggingface_hub(runs, tmp_path):
    import yaml
    from huggingface_hub.repocard_data import model_index_to_eval_results

    code = medeval(["publish", str(runs["root"]), "--model", "A", "--name", f"{runs['models']['A']}=A",
                    "--url", "https://example.org/medeval-results", "-o", str(tmp_path)])
    assert code == 0
    block = yaml.safe_load((tmp_path / "model-index.yaml").read_text())
    name, results = model_index_to_eval_results(block["model-index"])
    assert name == "A" and len(results) == 3 * 4
    by_key = {(r.metric_args["task"], r.metric_type): r for r in results}
    anatomy = by_key[("mmlu_anatomy_fr", "acc")]
    assert anatomy.dataset_type == "BioMistral/BioInstructQA" and anatomy.metric_args["fewshot_seeds"] == [1, 2]
    english = by_key[("mmlu_anatomy_en", "acc")]
    assert (english.dataset_type, english.dataset_config) == ("BioMistral/BioInstructQA", "MMLU_anatomy-English")
    assert english.metric_args["data_sha256"] == table_sha(runs, "mmlu_anatomy_en")
    summary = json.loads((tmp_path / "A.medeval.json").read_text())
    assert summary["schema"] == "medeval-results/2" and summary["model"]["revision"].startswith("sha256:")
    assert summary["provenance"]["lm_eval_versions"] == ["0.4.13"]
    task = next(t for t in summary["tasks"] if t["task"] == "mmlu_anatomy_fr")
    acc = _per_seed(runs["A"], "mmlu_anatomy_fr", "acc")  # published as lm-eval reports it: a fraction, 4 decimals
    assert task["metrics"]["acc"]["value"] == anatomy.metric_value == round((acc[1] + acc[2]) / 2, 4)
    assert (task["questions"], task["questions_in_split"], task["limited"]) == (LIMIT, 135, True)
    assert (task["regime"], task["regime_version"], task["data_sha256"]) == ("biomistral_3shot", 1,
                                                                              table_sha(runs, "mmlu_anatomy_fr"))
    assert anatomy.metric_args["questions_in_split"] == 135
