"""medeval submit on real lm-eval runs of the default model (two tasks, --limit 3, seeds 1 and 2): what a
bundle holds and records, what it refuses and why, and partial_reasons on tables of cases."""
import json
import shutil
import tarfile

import leaderboard_runs as lr
import pytest

from medtasks import spec
from medtasks.cli import main as medeval
from medtasks.common import model_content_hash, sha256_file
from results.submission import MANIFEST, REASONS, SUBMISSION, partial_reasons


@pytest.fixture(scope="session")
def runs(default_model, shared_data, tmp_path_factory):
    return lr.default_runs(default_model, shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("submit") / "bundle"
    assert medeval(["submit", *map(str, runs["folders"]), "-o", str(out), "--partial", "--model-name", "SmolLM2"]) == 0
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("medeval submit: ") and "\n" not in err and "Traceback" not in err
    return err


def test_limited_incomplete_runs_are_refused_with_every_reason(runs, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert medeval(["submit", *map(str, runs["folders"]), "-o", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "--partial" in err
    assert "--limit: mmlu_anatomy_en (3 of 135 questions), mmlu_medical_genetics_en (3 of 100 questions)" in err
    assert "medeval_en lacks" in err and "(2 of 10 tasks)" in err
    assert "mmlu_anatomy_en (seeds 1, 2)" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


def test_bundle_records_model_versions_regime_and_data_of_every_task(bundle, runs):
    sub = json.loads((bundle / SUBMISSION).read_text())
    assert sub["partial"] is True and set(sub["partial_reasons"]) == {"limit", "suite", "seeds"}
    assert sub["model"]["name"] == "SmolLM2"
    assert sub["model"]["revision"] == f"sha256:{model_content_hash(str(runs['model'].resolve()))}"
    results = [lr.results_of(f) for f in runs["folders"]]
    assert sub["versions"]["lm_eval"] == sorted({r["lm_eval_version"] for r in results})
    assert sub["versions"]["eval_commits"] == sorted({r["git_hash"] for r in results})
    assert sub["seeds"] == [1, 2] and sorted(sub["tasks"]) == sorted(lr.TASKS)
    for task, entry in sub["tasks"].items():
        bench, language = spec.parse_task(task)
        metadata = results[0]["configs"][task]["metadata"]
        assert (entry["regime"], entry["regime_version"]) == (metadata["regime"], metadata["regime_version"])
        # the checksum of the store file the run read, as every sample's doc carries it
        store_file = runs["store"] / bench.key / language / "test.jsonl"
        assert entry["data_sha256"] == sha256_file(store_file)
        for folder in runs["folders"]:
            assert {s["doc"]["data_sha256"] for s in lr.samples_of(folder, task)} == {entry["data_sha256"]}
        assert (entry["questions"], entry["limited"]) == (lr.LIMIT, True)
        assert sorted(entry["seeds"]) == ["1", "2"]


def test_bundle_files_are_the_runs_byte_for_byte_and_the_manifest_pins_them(bundle, runs):
    manifest = json.loads((bundle / MANIFEST).read_text())["files"]
    files = {p.relative_to(bundle).as_posix(): p for p in bundle.rglob("*") if p.is_file()}
    assert set(manifest) == set(files) - {MANIFEST}
    assert all(sha256_file(files[name]) == digest for name, digest in manifest.items())
    originals = {p.name: p for folder in runs["folders"] for p in folder.rglob("*") if p.is_file()}
    copied = [p for p in files.values() if p.name not in (MANIFEST, SUBMISSION)]
    assert len(copied) == len(originals) == 2 * (1 + len(lr.TASKS))  # results + one samples file per task, per seed
    assert all(p.read_bytes() == originals[p.name].read_bytes() for p in copied)


def test_archive_bundle_holds_the_same_files(runs, bundle, tmp_path):
    out = tmp_path / "bundle.tar.gz"
    assert medeval(["submit", *map(str, runs["folders"]), "-o", str(out), "--partial", "--model-name", "SmolLM2"]) == 0
    with tarfile.open(out) as archive:
        names = {m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()}
        manifest = json.loads(archive.extractfile(f"bundle/{MANIFEST}").read())
    assert names == {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    folder_manifest = json.loads((bundle / MANIFEST).read_text())["files"]
    assert {k: v for k, v in manifest["files"].items() if k != SUBMISSION} == \
        {k: v for k, v in folder_manifest.items() if k != SUBMISSION}  # only the creation time differs


def test_runs_without_samples_or_of_two_models_or_twice_the_same_are_refused(runs, tmp_path, capsys):
    no_samples = tmp_path / "no_samples"
    shutil.copytree(runs["folders"][0], no_samples)
    next(no_samples.rglob("samples_mmlu_anatomy_en_*.jsonl")).unlink()
    assert medeval(["submit", str(no_samples), "-o", str(tmp_path / "b1"), "--partial"]) == 2
    assert "task mmlu_anatomy_en has no samples file: rerun lm_eval with --log_samples" in _one_line_error(capsys)

    assert medeval(["submit", str(runs["folders"][0]), str(runs["folders"][0]), "-o", str(tmp_path / "b2"),
                    "--partial"]) == 0  # the same folder twice is the same files
    copy = tmp_path / "copy"
    shutil.copytree(runs["folders"][0], copy)
    assert medeval(["submit", str(runs["folders"][0]), str(copy), "-o", str(tmp_path / "b3"), "--partial"]) == 2
    assert "with few-shot seed 1 appears in" in _one_line_error(capsys)

    other = tmp_path / "other_model"
    shutil.copytree(runs["folders"][1], other)
    results = next(other.rglob("results_*.json"))
    data = json.loads(results.read_text())
    data["config"]["model_args"] = {"pretrained": "someone/else"}
    data["config"]["model_sha"] = "0" * 40
    results.write_text(json.dumps(data))
    assert medeval(["submit", str(runs["folders"][0]), str(other), "-o", str(tmp_path / "b4"), "--partial"]) == 2
    assert "the runs are of several models" in _one_line_error(capsys)

    assert medeval(["submit", str(runs["folders"][0]), "-o", str(tmp_path / "b2"), "--partial"]) == 2
    assert "already exists" in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b2", "copy", "no_samples", "other_model"]


def _entries(tasks, seeds=spec.FEWSHOT_SEEDS, questions=(10, 10), regime=None, version=1):
    out = []
    for task in tasks:
        bench, _ = spec.parse_task(task)
        own = spec.regime_of(bench)
        for seed in seeds:
            out.append({"task": task, "benchmark": bench.key, "regime": regime or own.name,
                        "regime_version": version, "fewshot_seed": seed, "n_questions": questions[0],
                        "n_questions_full": questions[1]})
    return out


SUITE_EN = [spec.task_name(b, "en") for b in spec.BENCHMARKS]
TRUTHFULQA = [spec.task_name("truthfulqa_med", lang) for lang in spec.suite_languages()]


@pytest.mark.parametrize("entries, reasons", [
    (_entries(SUITE_EN), set()),
    (_entries(SUITE_EN + [spec.task_name(b, "fr") for b in spec.BENCHMARKS]), set()),
    (_entries(TRUTHFULQA, seeds=(1,)), set()),  # zero-shot: one run per task is all there is
    (_entries(["head_qa_es"]), set()),  # the only native exam in Spanish: a whole group
    (_entries(SUITE_EN[:-1]), {"suite"}),
    (_entries(SUITE_EN, seeds=(1, 2)), {"seeds"}),
    (_entries(SUITE_EN, questions=(5, 10)), {"limit"}),
    (_entries(SUITE_EN) + _entries(TRUTHFULQA, seeds=(1,)), {"regime"}),  # biomistral_3shot and zero_shot
    (_entries(SUITE_EN, regime="biomistral_3shot(n_shot=0)"), {"regime"}),  # lm_eval --num_fewshot 0
    (_entries(SUITE_EN, version=0), {"regime"}),  # an older definition of the regime
    (_entries(SUITE_EN[:2], seeds=(1,), questions=(3, 9)), {"limit", "suite", "seeds"}),
])
def test_partial_reasons(entries, reasons):
    found = partial_reasons(entries)
    assert set(found) == reasons and set(found) <= set(REASONS)
    assert all(isinstance(text, str) and text for text in found.values())


def test_reasons_name_the_missing_tasks_and_regimes():
    found = partial_reasons(_entries(SUITE_EN[1:], seeds=(1, 3)) + _entries(TRUTHFULQA, seeds=(1,)))
    assert f"medeval_en lacks {SUITE_EN[0]} (9 of 10 tasks)" in found["suite"]
    assert "biomistral_3shot v1:" in found["regime"] and "zero_shot v1:" in found["regime"]
    assert "(seeds 1, 3)" in found["seeds"]


def test_a_contamination_report_travels_with_the_bundle_and_gives_clean_scores(runs, tmp_path):
    from lm_eval_run import letter_scores

    from medtasks.metrics import process_results

    task = "mmlu_anatomy_en"
    samples = {folder: lr.samples_of(folder, task) for folder in runs["folders"]}
    flagged = samples[runs["folders"][0]][0]["doc"]["id"]  # one question the report says the corpus holds
    data = samples[runs["folders"][0]][0]["doc"]["data_sha256"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"format": "medeval-contamination/1", "tasks": {
        task: {"data_sha256": data, "contaminated_ids": [flagged]}}}))
    out = tmp_path / "bundle"
    assert medeval(["submit", *map(str, runs["folders"]), "-o", str(out), "--partial",
                    "--contamination", str(report)]) == 0
    sub = json.loads((out / SUBMISSION).read_text())
    assert sub["contamination"]["sha256"] == sha256_file(report) and (out / sub["contamination"]["report"]).is_file()
    assert "clean" not in sub["tasks"]["mmlu_medical_genetics_en"]  # a task the report did not check
    for folder, rows in samples.items():
        seed = str(lr.results_of(folder)["configs"][task]["metadata"].get("fewshot_seed", 1))
        kept = [process_results(s["doc"], list(zip(*letter_scores(s)))) for s in rows if s["doc"]["id"] != flagged]
        clean = sub["tasks"][task]["clean"][seed]["acc"]
        assert clean["questions"] == len(rows) - 1 == len(kept)
        assert clean["value"] == pytest.approx(sum(q["acc"] for q in kept) / len(kept))
    assert medeval(["verify", str(out), "--store", str(runs["store"])]) == 0  # the extra file is pinned too
