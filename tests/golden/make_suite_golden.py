"""Make tests/golden/suite_214e29f.json: what the ten-task suite looked like before the spec refactor.

    .venv/bin/python tests/golden/make_suite_golden.py        # ~4 CPU-minutes (22 questions, default model)

Issue 12 requires the suite's prompts and scores to be byte-for-byte unchanged by the spec work;
tests/test_suite_unchanged.py runs today's code the same way and compares with this file.

How the file is made, exactly:
1. `git archive 214e29f` (the last commit before the spec work) is unpacked into a temp folder.
2. `lm_eval run --model hf --model_args pretrained=<default model> --device cpu --tasks
   medeval_en,mmlu_anatomy_fr --limit 2 --log_samples` runs as the tests run it (tests/lm_eval_run.py:
   a fresh store, MEDTASKS_DATA = the real data, HF_HUB_OFFLINE=1), with PYTHONPATH = that folder.
   PYTHONPATH comes before the editable install, so the installed discovery hook
   (medtasks-lm-eval.pth) imports the OLD `medtasks._discovery`, and the `lm_eval.tasks` entry point
   resolves `medtasks.tasks` to the OLD task folder: no --include_path is needed.
3. Checks that the old code really ran, or nothing is written: the child's `medtasks` is the
   unpacked one; every task config lm-eval records came from a YAML of the unpacked folder; no doc
   carries `data_sha256` (today's loader adds it to every doc).
4. Per task and question it keeps: the doc id, the question id, the sha256 of the prompt (arg_0,
   the same for every choice), the sha256 of each continuation (arg_1), each choice's log-likelihood
   and greedy flag, acc and strict_acc; per task the aggregated acc and strict_acc.

The default model is today's `medeval model path` (the model is not under test).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from lm_eval_run import load_run, run_lm_eval  # after sys.path has tests/

COMMIT = "214e29f"
TASKS = "medeval_en,mmlu_anatomy_fr"  # the ten English tasks and one translated one
LIMIT = 2
GOLDEN = Path(__file__).resolve().parent / f"suite_{COMMIT}.json"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summarize(out: Path) -> dict:
    """{"tasks": {task: [question, ...]}, "scores": {task: {acc, strict_acc}}} of one lm-eval output folder."""
    results, samples = load_run(out)
    tasks = {}
    for task, rows in sorted(samples.items()):
        questions = []
        for row in sorted(rows, key=lambda r: r["doc_id"]):
            args = [row["arguments"][f"gen_args_{i}"] for i in range(len(row["arguments"]))]
            prompts = {a["arg_0"] for a in args}
            assert len(prompts) == 1, f"{task} doc {row['doc_id']}: choices with different prompts"
            questions.append({
                "doc_id": row["doc_id"], "id": row["doc"]["id"], "prompt_sha256": sha256(prompts.pop()),
                "continuations_sha256": [sha256(a["arg_1"]) for a in args],
                "loglikelihoods": [float(resp[0]) for resp in row["filtered_resps"]],
                "is_greedy": [resp[1] in (True, "True") for resp in row["filtered_resps"]],
                "acc": row["acc"], "strict_acc": row["strict_acc"]})
        tasks[task] = questions
    scores = {task: {m: results["results"][task][f"{m},none"] for m in ("acc", "strict_acc")} for task in tasks}
    return {"tasks": tasks, "scores": scores}


def check_old_code_ran(out: Path, source: Path, env: dict) -> None:
    child = subprocess.run([sys.executable, "-c", "import medtasks; print(medtasks.__file__)"],
                           env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(child).is_relative_to(source):
        raise SystemExit(f"the child imported medtasks from {child}, not from {source}")
    results, samples = load_run(out)
    for task, config in results["configs"].items():
        origin = config.get("metadata", {}).get("config_source", "")
        if not Path(origin).is_relative_to(source):
            raise SystemExit(f"{task}: lm-eval read its YAML from {origin!r}, not from {source}")
    if any("data_sha256" in row["doc"] for rows in samples.values() for row in rows):
        raise SystemExit("docs carry data_sha256: today's loader ran, not the old one")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MEDTASKS_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args(argv)
    model = subprocess.run([sys.executable, "-m", "medtasks.cli", "model", "path"], capture_output=True, text=True,
                           check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "src", Path(tmp) / "out"
        source.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", COMMIT], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        env = {"PYTHONPATH": str(source)}
        run = run_lm_eval(model, TASKS, out, store=Path(tmp) / "store", data=args.data, limit=LIMIT, env=env,
                          timeout=3600)
        if run.returncode != 0:
            raise SystemExit(f"lm_eval failed:\n{run.stderr[-3000:]}")
        check_old_code_ran(out, source, env)
        golden = {"commit": COMMIT, "tasks_arg": TASKS, "limit": LIMIT, "model": Path(model).name, **summarize(out)}
    args.out.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(map(len, golden["tasks"].values()))
    print(f"wrote {args.out}: {len(golden['tasks'])} tasks, {count} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
