"""Issue 12's acceptance: the ten-task suite's prompts and scores are byte-for-byte what they were before
the spec work. tests/golden/suite_214e29f.json was made from commit 214e29f by
tests/golden/make_suite_golden.py (its docstring says exactly how); this runs today's code the same way
(plain lm_eval, default model, CPU, the real data, 2 questions per task) and compares question by question."""
import json
import math

import pytest
from golden.make_suite_golden import GOLDEN, LIMIT, TASKS, summarize
from lm_eval_run import run_lm_eval

TOLERANCE = 1e-5  # log-likelihoods: the same model on the same device; any prompt change moves them far more


@pytest.mark.slow  # ~4 CPU-minutes: 22 three-shot questions on the default model
@pytest.mark.timeout(3600)  # minutes of wall time on a busy shared machine
def test_prompts_and_scores_match_the_pre_refactor_suite(default_model, shared_data, tmp_path):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    run = run_lm_eval(default_model, TASKS, tmp_path / "out", store=tmp_path / "store", data=shared_data,
                      limit=LIMIT, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    now = summarize(tmp_path / "out")
    assert sorted(now["tasks"]) == sorted(golden["tasks"])
    for task, questions in golden["tasks"].items():
        assert [q["id"] for q in now["tasks"][task]] == [q["id"] for q in questions], task
        for before, after in zip(questions, now["tasks"][task]):
            where = f"{task} {before['id']}"
            assert after["prompt_sha256"] == before["prompt_sha256"], f"{where}: the prompt changed"
            assert after["continuations_sha256"] == before["continuations_sha256"], f"{where}: the choices changed"
            assert len(after["loglikelihoods"]) == len(before["loglikelihoods"])
            for old, new in zip(before["loglikelihoods"], after["loglikelihoods"]):
                assert math.isclose(new, old, rel_tol=0, abs_tol=TOLERANCE), f"{where}: {new} vs {old}"
            assert (after["is_greedy"], after["acc"], after["strict_acc"]) == (
                before["is_greedy"], before["acc"], before["strict_acc"]), where
    assert now["scores"] == golden["scores"]


def test_the_golden_file_is_what_its_generator_writes():
    """The committed file covers the ten suite tasks and one translated task, 2 questions each, and says how
    it was made (a hand-edited or truncated file fails here, before the slow comparison)."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert (golden["commit"], golden["tasks_arg"], golden["limit"]) == ("214e29f", TASKS, LIMIT)
    assert len(golden["tasks"]) == 11 and all(len(q) == LIMIT for q in golden["tasks"].values())
    for questions in golden["tasks"].values():
        for q in questions:
            assert len(q["prompt_sha256"]) == 64 and len(q["loglikelihoods"]) == len(q["continuations_sha256"]) >= 3
