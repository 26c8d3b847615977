"""The results package on REAL lm-eval outputs: `lm_eval run` on two tiny checkpoints over three of
our tasks (two languages), checkpoint A with few-shot seeds 1 and 2, checkpoint B with seed 1."""
import hashlib
import json
import os
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


def _results_files(folder: Path):
    return sorted(folder.rglob("results_*.json"))


def test_table_rows_and_provenance(runs, table):
    assert set(table["model"]) == {"A", "B"}
    assert len(table) == (2 + 1) * 3 * 4  # (A: 2 seeds, B: 1) x 3 tasks x 4 metrics
    a = table[table["model"] == "A"]
    assert sorted(a["fewshot_seed"].unique()) == [1, 2]
    assert set(table["language"]) == {"en", "fr"}
    assert set(table["benchmark"]) == {"mmlu_anatomy", "mmlu_medical_genetics"}
    assert set(table["regime"]) == {"biomistral-3shot"} and set(table["n_shot"]) == {3}
    assert set(table["n_questions"]) == {LIMIT}
    assert set(table[table["task"] == "mmlu_anatomy_en"]["n_questions_full"]) == {135}
    assert set(table["lm_eval_version"]) == {"0.4.13"}
    assert all(c not in ("", "unknown", None) for c in table["project_commit"])  # lm-eval ran in this repo
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


def test_calibration_from_samples_matches_lm_eval(runs, table):
    """ECE recomputed from the per-question samples equals the ECE lm-eval aggregated, per task and seed."""
    from results.calibration import calibration_records
    from results.samples import read_samples

    for path in _results_files(runs["root"]):
        data = json.loads(path.read_text())
        for task in data["results"]:
            stamp = path.name[len("results_"):-len(".json")]
            samples = read_samples(path.with_name(f"samples_{task}_{stamp}.jsonl"))
            ece = expected_calibration_error(samples.confidence.tolist(), (samples.acc > 0.5).tolist())
            assert ece == pytest.approx(data["results"][task]["ece,none"])
    records = {(r["model"], r["language"], r["task"]): r for r in calibration_records(table)}
    pooled = records[("B", "en", "all tasks")]
    assert pooled["questions"] == 2 * LIMIT and pooled["seeds"] == 1
    assert 0.0 <= pooled["ece"] <= 1.0 and 0.0 <= pooled["brier"] <= 2.0


def test_leaderboard_cli_writes_three_formats(runs, tmp_path, capsys):
    assert medeval(["leaderboard", str(runs["root"]), "--view", "grid", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid_acc.csv", "grid_acc.md", "grid_acc.tex"]
    md = (tmp_path / "grid_acc.md").read_text()
    assert "| mmlu_anatomy_fr | 25.0 |" in md and "**" in md
    assert medeval(["leaderboard", str(runs["root"]), "--view", "headline"]) == 0
    out = capsys.readouterr().out
    assert "| model | MedGen | Anat | Avg |" in out and "strict_acc" in out


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
        assert "biomistral-3shot" in png.with_suffix(".svg").read_text()  # the caption names the regime


def test_compare_same_run_is_no_regression(runs, capsys):
    assert medeval(["compare", str(runs["A"]), str(runs["A"])]) == 0
    out = capsys.readouterr().out
    assert "no significant regression" in out and "| mmlu_anatomy_fr | fr | 8 |" in out


def test_compare_two_checkpoints(runs, tmp_path, capsys):
    """Deltas equal the accuracy differences of the results files; seed 2 of A has no partner and is left out."""
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
    for task in TASKS.split(","):
        assert rows[task]["delta"] == pytest.approx(acc["B"][task] - acc["A"][task])
        assert rows[task]["low"] <= rows[task]["delta"] <= rows[task]["high"]
        assert 0.0 <= rows[task]["p_value"] <= 1.0
    assert set(rows) >= {"medeval_en", "all tasks"}
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
    assert by_key[("mmlu_anatomy_en", "acc")].dataset_type == "cais/mmlu"
    summary = json.loads((tmp_path / "A.medeval.json").read_text())
    assert summary["schema"] == "medeval-results/1" and summary["model"]["revision"].startswith("sha256:")
    assert summary["provenance"]["lm_eval_versions"] == ["0.4.13"]
    task = next(t for t in summary["tasks"] if t["task"] == "mmlu_anatomy_fr")
    assert task["metrics"]["acc"]["value"] == pytest.approx(anatomy.metric_value)
