"""Clean-subset scores (issue 16 §4) on a REAL lm-eval run of the default model (tests/native_runs.py): a
contamination report written here, in `medeval contamination`'s format, flags some question ids of the
run; each task's metrics are recomputed without them, from the raw sample lines, and compared."""
import json

import pytest

from lm_eval_run import load_run
from medtasks.cli import main as medeval
from medtasks.metrics import expected_calibration_error

pytest_plugins = ["native_runs"]  # the session fixture native_run: one lm_eval run for both modules
NAME = "smol"
FLAGGED = {"mmlu_anatomy_en": 2, "head_qa_es": 1, "cmexam_multi_zh": 1}  # questions flagged per task


@pytest.fixture(scope="module")
def samples(native_run):
    return load_run(native_run["out"])[1]


def write_report(path, samples, flagged=FLAGGED, data=None):
    """A contamination report as `medeval contamination` writes it (training/README.md, "Report format")."""
    tasks = {}
    for task, n in flagged.items():
        ids = sorted(s["doc"]["id"] for s in samples[task])[:n]
        tasks[task] = {"benchmark": task.rsplit("_", 1)[0], "language": task.rsplit("_", 1)[1], "split": "test",
                       "questions": 100, "data_sha256": (data or {}).get(task, samples[task][0]["doc"]["data_sha256"]),
                       "fields": {"checked": 5, "too_short": 0}, "contaminated": n, "contaminated_ids": ids,
                       "matches": {}, "samples": {}}
    path.write_text(json.dumps({"format": "medeval-contamination/1", "fingerprint": "x", "settings": {"n": 13},
                                "corpus": {"inputs": ["corpus.jsonl"]}, "tasks": tasks}))
    return path


def _clean(lines, flagged_ids, metric):
    kept = [s for s in lines if s["doc"]["id"] not in flagged_ids]
    if metric == "ece":
        return expected_calibration_error([s["ece"][0] for s in kept], [s["ece"][1] for s in kept]), len(kept)
    return sum(s[metric] for s in kept) / len(kept), len(kept)


def test_results_table_adds_clean_scores_beside_the_full_ones(native_run, samples, tmp_path):
    import pandas as pd

    report = write_report(tmp_path / "report.json", samples)
    flagged = {t: set(e["contaminated_ids"]) for t, e in json.loads(report.read_text())["tasks"].items()}
    assert medeval(["results-table", str(native_run["out"]), "--contamination", str(report),
                    "-o", str(tmp_path / "table.csv")]) == 0
    table = pd.read_csv(tmp_path / "table.csv")
    for row in table.itertuples():
        if row.task not in FLAGGED:
            assert pd.isna(row.clean_value) and pd.isna(row.n_questions_clean)  # not checked: no clean score
            continue
        value, kept = _clean(samples[row.task], flagged[row.task], row.metric)
        assert row.clean_value == pytest.approx(value) and row.n_questions_clean == kept == row.n_questions - FLAGGED[row.task]
    assert set(table[table["task"] == "cmexam_multi_zh"]["metric"]) == {"hamming", "emr"}


def test_leaderboard_shows_clean_columns(native_run, samples, tmp_path, capsys):
    from results.clean import clean_records, with_clean_scores
    from results.load import load_table

    report = write_report(tmp_path / "report.json", samples)
    flagged = set(json.loads(report.read_text())["tasks"]["mmlu_anatomy_en"]["contaminated_ids"])
    names = ["--name", f"{native_run['model']}={NAME}"]
    assert medeval(["leaderboard", str(native_run["out"]), "--view", "grid", "--format", "csv",
                    "--contamination", str(report), *names]) == 0
    csv = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    rows = {r[0]: dict(zip(csv[0], r)) for r in csv[1:]}
    full = sum(s["acc"] for s in samples["mmlu_anatomy_en"]) / len(samples["mmlu_anatomy_en"])
    clean, _ = _clean(samples["mmlu_anatomy_en"], flagged, "acc")
    assert float(rows["mmlu_anatomy_en"][NAME]) == pytest.approx(full)
    assert float(rows["mmlu_anatomy_en"][f"{NAME} clean"]) == pytest.approx(clean)
    assert rows["mmlu_anatomy_fr"][f"{NAME} clean"] == ""  # the report did not check it
    assert medeval(["leaderboard", str(native_run["out"]), "--view", "native", "--contamination", str(report),
                    *names]) == 0
    md = capsys.readouterr().out
    assert "| model | suite | suite clean | native | native clean |" in md
    assert "removed: cmexam_multi_zh 1 of 2, head_qa_es 1 of 4, mmlu_anatomy_en 2 of 3" in md
    # what a submission bundle stores
    table = with_clean_scores(load_table([native_run["out"]]), report)
    records = {(r["task"], r["metric"]): r for r in clean_records(table)}
    assert set(t for t, _ in records) == set(FLAGGED)
    assert records[("mmlu_anatomy_en", "acc")]["clean_value"] == pytest.approx(clean)
    assert records[("mmlu_anatomy_en", "acc")]["n_questions_clean"] == 1


def test_a_report_made_on_other_data_is_refused(native_run, samples, tmp_path, capsys):
    report = write_report(tmp_path / "report.json", samples, data={"head_qa_es": "0" * 64})
    before = set(tmp_path.iterdir())
    assert medeval(["results-table", str(native_run["out"]), "--contamination", str(report),
                    "-o", str(tmp_path / "table.csv")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("medeval")]
    assert err == [f"medeval results-table: --contamination {report} checked head_qa_es on data 000000000000 but "
                   f"{next(native_run['out'].rglob('results_*.json'))} was scored on "
                   f"{samples['head_qa_es'][0]['doc']['data_sha256'][:12]}: check the store the run used"]
    assert set(tmp_path.iterdir()) == before  # nothing written
