"""medeval verify on a real bundle (the default model, two tasks, --limit 3, seeds 1 and 2, made --partial) against
a maintainer's store imported afresh from the real data: the honest bundle passes; each way of tampering with it
(an edited score, a removed question, a changed prompt, other few-shot examples, another data version, files
changed behind the manifest, a false claim of completeness) is caught, naming the task, question id and field."""
import dataclasses
import json
import re
import shutil

import pytest

import leaderboard_runs as lr
from medtasks.cli import main as medeval
from medtasks.store import read_records, write_records
from results.submission import SUBMISSION, make_bundle, write_manifest
from results.verify import BUNDLE, TASK_LEVEL, TOLERANCE, verify_bundle

ANATOMY, GENETICS = lr.TASKS


@pytest.fixture(scope="session")
def runs(default_model, shared_data, tmp_path_factory):
    return lr.default_runs(default_model, shared_data, tmp_path_factory)


@pytest.fixture(scope="session")
def store(shared_data, tmp_path_factory):
    return lr.maintainer_store(shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "bundle"
    make_bundle(runs["folders"], out, partial=True)
    return out


def _tampered(bundle, tmp_path, edit):
    """A copy of the bundle changed by `edit`, its manifest rewritten as a careful cheater would."""
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    edit(copy)
    write_manifest(copy)
    return copy


def _run_folder(bundle, seed: int):
    sub = json.loads((bundle / SUBMISSION).read_text())
    return bundle / sub["tasks"][ANATOMY]["seeds"][str(seed)]["results"].rsplit("/", 1)[0]


def _edit_samples(folder, task, change):
    path = next(folder.glob(f"samples_{task}_*.jsonl"))
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    samples = change(samples)
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))


def _edit_results(folder, change):
    path = next(folder.glob("results_*.json"))
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _found(report) -> set[tuple]:
    return {(d.task, d.seed, d.question, d.field) for d in report.discrepancies}


def test_an_honest_bundle_passes_folder_and_archive(bundle, runs, store, tmp_path, capsys):
    report = verify_bundle(bundle, store)
    assert report.ok, report.text()
    assert report.counts == {"files": 2 * (1 + len(lr.TASKS)) + 1, "runs": 4, "questions": 4 * lr.LIMIT,
                             "prompts": 4 * lr.LIMIT, "metrics": 4 * 4}
    assert set(report.partial) == {"limit", "suite", "seeds"}

    archive = tmp_path / "bundle.tar.gz"
    make_bundle(runs["folders"], archive, partial=True)
    assert medeval(["verify", str(archive), "--store", str(store), "--report", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"VERIFIED: {archive}") and "PARTIAL submission" in out and "runs made with --limit" in out
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["verdict"] == "verified" and saved["partial"] is True and saved["discrepancies"] == []
    assert saved["tolerance"] == TOLERANCE


def test_prompts_are_byte_for_byte_what_our_task_renders(bundle, store, runs):
    """The check behind the prompt discrepancies: render_prompt reproduces lm-eval's arg_0 exactly (the
    honest bundle passing says so for every request; here once more, directly)."""
    from medtasks.loader import load_task_dataset
    from results.verify import maintainer_store, render_prompt

    sample = lr.samples_of(runs["folders"][1], GENETICS)[2]
    with maintainer_store(store):
        data = load_task_dataset("mmlu_medical_genetics", "en", fewshot_seed=2)
    doc = data["test"].to_list()[2]
    assert render_prompt(doc, data["fewshot"].to_list()[:3], multi=False) == sample["arguments"]["gen_args_0"]["arg_0"]


def test_an_edited_score_is_caught(bundle, store, tmp_path, capsys):
    def edit(copy):
        _edit_results(_run_folder(copy, 1), lambda d: d["results"][ANATOMY].update({"acc,none": 2 / 3}))
        # and one question's stored score flipped, results left alone
        _edit_samples(_run_folder(copy, 2), GENETICS, lambda s: [dict(x, acc=1.0 - x["acc"]) if i == 1 else x
                                                                 for i, x in enumerate(s)])
    tampered = _tampered(bundle, tmp_path, edit)
    qid = lr.samples_of(_run_folder(tampered, 2), GENETICS)[1]["doc"]["id"]
    report = verify_bundle(tampered, store)
    assert _found(report) == {(ANATOMY, 1, TASK_LEVEL, "results.acc"), (GENETICS, 2, qid, "acc")}
    assert medeval(["verify", str(tampered), "--store", str(store)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED") and "2 discrepancies" in out
    assert f"{GENETICS} [seed 2] · question {qid} · acc: the sample says" in out
    assert f"{ANATOMY} [seed 1] · question {TASK_LEVEL} · results.acc: reported 0.666" in out


def test_a_removed_question_is_caught(bundle, store, tmp_path):
    def remove(copy):
        _edit_samples(_run_folder(copy, 2), GENETICS, lambda samples: samples[:1] + samples[2:])
    tampered = _tampered(bundle, tmp_path, remove)
    removed = lr.samples_of(_run_folder(bundle, 2), GENETICS)[1]["doc"]["id"]
    found = _found(verify_bundle(tampered, store))
    assert (GENETICS, 2, removed, "doc.id") in found
    assert (GENETICS, 2, TASK_LEVEL, "n-samples.effective") in found
    assert {f[0] for f in found} == {GENETICS} and {f[1] for f in found} == {2}


def test_a_changed_prompt_is_caught(bundle, store, tmp_path):
    def doctor(samples):
        for request in samples[0]["arguments"].values():  # every request of the question, consistently
            request["arg_0"] = request["arg_0"].replace("**Answer:**(", "Think step by step. **Answer:**(")
        return samples
    tampered = _tampered(bundle, tmp_path, lambda c: _edit_samples(_run_folder(c, 1), ANATOMY, doctor))
    qid = lr.samples_of(_run_folder(bundle, 1), ANATOMY)[0]["doc"]["id"]
    report = verify_bundle(tampered, store)
    assert _found(report) == {(ANATOMY, 1, qid, f"arguments.gen_args_{i}.arg_0") for i in range(4)}
    message = report.discrepancies[0].message
    assert "differs from the prompt our task renders" in message and "found 'Think step by step." in message


def test_other_few_shot_examples_are_caught(bundle, store, tmp_path):
    """Seed 1's run re-prompted with seed 2's examples (what a hand-picked few-shot set looks like)."""
    def prefix(prompt):
        return prompt[: prompt.rindex("**Question:**")]

    seed2 = prefix(lr.samples_of(_run_folder(bundle, 2), ANATOMY)[0]["arguments"]["gen_args_0"]["arg_0"])
    assert seed2 != prefix(lr.samples_of(_run_folder(bundle, 1), ANATOMY)[0]["arguments"]["gen_args_0"]["arg_0"])

    def swap(samples):
        for sample in samples:
            for request in sample["arguments"].values():
                request["arg_0"] = seed2 + request["arg_0"][len(prefix(request["arg_0"])):]
        return samples
    tampered = _tampered(bundle, tmp_path, lambda c: _edit_samples(_run_folder(c, 1), ANATOMY, swap))
    ids = [s["doc"]["id"] for s in lr.samples_of(_run_folder(bundle, 1), ANATOMY)]
    assert _found(verify_bundle(tampered, store)) == {(ANATOMY, 1, q, f"arguments.gen_args_{i}.arg_0")
                                                      for q in ids for i in range(4)}


def test_another_data_version_is_caught(bundle, store, tmp_path):
    other = tmp_path / "other_store"
    shutil.copytree(store, other)
    records = read_records(other, "mmlu_anatomy", "en", "test")
    changed = records[1].id
    records[1] = dataclasses.replace(records[1], question=records[1].question + " (revised)")
    write_records(other, records)
    report = verify_bundle(bundle, other)
    found = _found(report)
    ids = [s["doc"]["id"] for s in lr.samples_of(_run_folder(bundle, 1), ANATOMY)]
    assert {(ANATOMY, seed, q, "doc.data_sha256") for seed in (1, 2) for q in ids} <= found
    assert {(ANATOMY, seed, changed, "doc.question") for seed in (1, 2)} <= found
    assert {(ANATOMY, seed, changed, "arguments.gen_args_0.arg_0") for seed in (1, 2)} <= found
    assert {f[0] for f in found} == {ANATOMY}  # the other task's data is the same
    assert "data checksum" in next(d.message for d in report.discrepancies if d.field == "doc.data_sha256")


def test_files_changed_behind_the_manifest_and_false_claims_are_caught(bundle, store, tmp_path):
    copy = tmp_path / "behind"
    shutil.copytree(bundle, copy)
    results = next(_run_folder(copy, 1).glob("results_*.json"))
    results.write_text(results.read_text().replace('"lm_eval_version": "', '"lm_eval_version": "9'))
    (copy / "extra.txt").write_text("hello")
    found = _found(verify_bundle(copy, store))
    assert found == {(BUNDLE, None, TASK_LEVEL, results.relative_to(copy).as_posix()),
                     (BUNDLE, None, TASK_LEVEL, "extra.txt")}

    def claim_complete(c):
        sub = json.loads((c / SUBMISSION).read_text())
        sub.update(partial=False, partial_reasons={})
        sub["tasks"][GENETICS]["data_sha256"] = "0" * 64
        (c / SUBMISSION).write_text(json.dumps(sub))
    report = verify_bundle(_tampered(bundle, tmp_path, claim_complete), store)
    assert _found(report) == {(BUNDLE, None, TASK_LEVEL, "submission.partial"),
                              (GENETICS, None, TASK_LEVEL, "submission.tasks.data_sha256")}
    partial = next(str(d) for d in report.discrepancies if d.field == "submission.partial")
    assert re.search(r"claims a complete submission, but runs made with --limit", partial)


def test_not_a_bundle_is_a_usage_error(runs, store, tmp_path, capsys):
    assert medeval(["verify", str(runs["folders"][0]), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medeval verify: ") and "not a submission bundle" in err and err.count("\n") == 1
    (tmp_path / "x.tar.gz").write_bytes(b"not gzip")
    assert medeval(["verify", str(tmp_path / "x.tar.gz"), "--store", str(store)]) == 2
    assert "cannot unpack the bundle" in capsys.readouterr().err


@pytest.fixture(scope="session")
def tiny(tiny_llama, shared_data, tmp_path_factory):
    return lr.tiny_runs(tiny_llama, shared_data, tmp_path_factory)


def test_native_and_multi_answer_exams_verify_and_their_tampering_is_caught(tiny, store, tmp_path):
    """HEAD-QA (its own Spanish examples, 4 or 5 options), FrenchMedMCQA (several correct letters: 31 letter
    sets per question, examples answered "A, C)", hamming and emr) and a translated task in one bundle."""
    bundle = tmp_path / "tiny"
    make_bundle(tiny["folders"], bundle, partial=True)
    report = verify_bundle(bundle, store)
    assert report.ok, report.text()
    assert report.counts["metrics"] == 4 * 4 + 2  # acc, strict_acc, ece, brier of four tasks; hamming, emr
    assert "native_3shot v1: frenchmedmcqa_fr, head_qa_es" in report.partial["regime"]

    def edit(copy):
        folder = next(copy.glob("runs/*"))
        _edit_samples(folder, "frenchmedmcqa_fr", lambda s: [dict(x, emr=1.0 - x["emr"]) if i == 0 else x
                                                             for i, x in enumerate(s)])
        _edit_samples(folder, "head_qa_es", lambda s: s[:2])
    tampered = _tampered(bundle, tmp_path, edit)
    first = lr.samples_of(tiny["folders"][0], "frenchmedmcqa_fr")[0]["doc"]["id"]
    last = lr.samples_of(tiny["folders"][0], "head_qa_es")[2]["doc"]["id"]
    found = _found(verify_bundle(tampered, store))
    assert ("frenchmedmcqa_fr", 1, first, "emr") in found and ("head_qa_es", 1, last, "doc.id") in found


def test_group_rows_are_the_mean_of_their_leaf_tasks():
    """lm-eval's group rows (medeval_<lang>, and medeval over them) against the recomputed task values."""
    from results.verify import Report, check_groups

    report = Report("bundle", "digest", "store", {}, {})
    data = {"group_subtasks": {"medeval": ["medeval_en", "medeval_fr"], "medeval_en": ["a_en", "b_en"],
                               "medeval_fr": ["a_fr"]},
            "results": {"medeval": {"acc,none": 0.5, "brier,none": 0.3},
                        "medeval_en": {"acc,none": 0.5, "ece,none": 0.2},
                        "medeval_fr": {"acc,none": 0.5}}}
    recomputed = {"a_en": {"acc": 0.25, "ece": 0.1, "brier": 0.2}, "b_en": {"acc": 0.75, "ece": 0.4, "brier": 0.4},
                  "a_fr": {"acc": 0.5, "ece": 0.3, "brier": 0.3}}
    check_groups(report, data, recomputed)
    # medeval: acc (0.25 + 0.75 + 0.5) / 3 = 0.5 and brier 0.3 hold; medeval_en's ece is (0.1 + 0.4) / 2 = 0.25
    assert _found(report) == {("medeval_en", None, TASK_LEVEL, "results.ece")}
    assert report.counts["metrics"] == 5
