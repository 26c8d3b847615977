"""Real lm-eval runs shared by the submission, verify and site tests, made once per test session.

  default   the default model (SmolLM2-135M) on two English MMLU tasks, --limit 3, few-shot seeds 1 and 2
  tiny      a tiny random model on the same tasks, one Spanish task, HEAD-QA (a native exam, 4 or 5 options) and
            FrenchMedMCQA (a native multi-answer exam: 31 letter sets per question), seed 1
Through tests/lm_eval_run.py, the one way tests run `lm_eval run` (a subprocess, offline, with its own store
importing the real data). Each test module calls these from a session fixture; the
cache below makes the runs happen once whichever module asks first.
"""
from __future__ import annotations

import json
from pathlib import Path

from lm_eval_run import run_lm_eval

TASKS = ("mmlu_anatomy_en", "mmlu_medical_genetics_en")
TINY_TASKS = TASKS + ("mmlu_anatomy_es", "head_qa_es", "frenchmedmcqa_fr")
LIMIT = 3
SEEDS = (1, 2)
BENCHMARKS = ("mmlu_anatomy", "mmlu_medical_genetics", "head_qa", "frenchmedmcqa")  # what the maintainer's store holds
_CACHE: dict[str, dict] = {}


def _run(model, tasks, out: Path, store: Path, data: Path, seed: int) -> Path:
    # One torch thread: on a CPU shared with other jobs, more threads per process spin against each other.
    proc = run_lm_eval(model, ",".join(tasks), out, store=store, data=data, limit=LIMIT,
                       extra=["--metadata", json.dumps({"fewshot_seed": seed})],
                       env={"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"lm_eval failed on {model}:\n{proc.stderr[-3000:]}")
    return out


def default_runs(default_model, shared_data, tmp_path_factory) -> dict:
    """{"folders": [seed 1 folder, seed 2 folder], "store": the runs' store, "model": the model folder}."""
    if "default" not in _CACHE:
        root = tmp_path_factory.mktemp("default_runs")
        folders = [_run(default_model, TASKS, root / f"seed{seed}", root / "store", shared_data, seed)
                   for seed in SEEDS]
        _CACHE["default"] = {"folders": folders, "store": root / "store", "model": Path(default_model)}
    return _CACHE["default"]


def tiny_runs(tiny_model, shared_data, tmp_path_factory) -> dict:
    if "tiny" not in _CACHE:
        root = tmp_path_factory.mktemp("tiny_runs")
        folder = _run(tiny_model, TINY_TASKS, root / "seed1", root / "store", shared_data, 1)
        _CACHE["tiny"] = {"folders": [folder], "store": root / "store", "model": Path(tiny_model)}
    return _CACHE["tiny"]


def maintainer_store(shared_data, tmp_path_factory) -> Path:
    """The maintainer's own store: the real data imported afresh (not the submitter's)."""
    if "maintainer" not in _CACHE:
        from medtasks.sources import import_folder

        store = tmp_path_factory.mktemp("maintainer_store")
        import_folder(shared_data, store, benchmarks=list(BENCHMARKS))
        _CACHE["maintainer"] = {"store": store}
    return _CACHE["maintainer"]["store"]


def results_of(folder: Path) -> dict:
    return json.loads(next(Path(folder).rglob("results_*.json")).read_text(encoding="utf-8"))


def samples_of(folder: Path, task: str) -> list[dict]:
    path = next(Path(folder).rglob(f"samples_{task}_*.jsonl"))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def site(default_model, tiny_model, shared_data, tmp_path_factory) -> dict:
    """A site built by `medeval site` from a verified --partial bundle of the default runs and the tiny runs'
    lm-eval folder: {"site", "bundle", "report", "default", "tiny"}."""
    if "site" not in _CACHE:
        from medtasks.cli import main as medeval

        default = default_runs(default_model, shared_data, tmp_path_factory)
        tiny = tiny_runs(tiny_model, shared_data, tmp_path_factory)
        store = maintainer_store(shared_data, tmp_path_factory)
        root = tmp_path_factory.mktemp("site_build")
        bundle, report, out = root / "bundle", root / "report.json", root / "site"
        if medeval(["submit", *map(str, default["folders"]), "-o", str(bundle), "--partial"]) != 0:
            raise RuntimeError("medeval submit failed")
        if medeval(["verify", str(bundle), "--store", str(store), "--report", str(report)]) != 0:
            raise RuntimeError("medeval verify failed on the honest bundle")
        if medeval(["site", str(bundle), *map(str, tiny["folders"]), "-o", str(out), "--verified", str(report)]) != 0:
            raise RuntimeError("medeval site failed")
        _CACHE["site"] = {"site": out, "bundle": bundle, "report": report, "default": default, "tiny": tiny}
    return _CACHE["site"]


def expected_cell(folders, tasks, metric: str) -> float:
    """A leaderboard number straight from the results files: per run (seed) the mean over `tasks` of lm-eval's
    value, then the mean over the runs."""
    per_seed = []
    for folder in folders:
        results = results_of(folder)["results"]
        per_seed.append(sum(results[t][f"{metric},none"] for t in tasks) / len(tasks))
    return sum(per_seed) / len(per_seed)
