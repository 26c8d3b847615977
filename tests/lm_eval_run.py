"""The one way tests run plain `lm_eval` (a subprocess, no --include_path) and read what it wrote."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from medtasks.metrics import brier_score, expected_calibration_error, softmax
from medtasks.prompts import LETTERS

LM_EVAL = [sys.executable, "-m", "lm_eval", "run"]


def run_lm_eval(model, tasks: str, out: Path, *, store: Path, data: Path | None = None, limit=None,
                backend: str = "hf", extra=(), env=None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`lm_eval run` on CPU with samples logged, our store, and MEDTASKS_DATA only when `data` is given.
    `model`: a model folder or hub id, optionally with more model_args (`DIR,peft=ADAPTER`), or whole
    model_args starting with `pretrained=` (model_ops.quantize.eval_model_args for a GGUF folder)."""
    model_args = str(model) if str(model).startswith("pretrained=") else f"pretrained={model}"
    environment = {**os.environ, "MEDTASKS_STORE": str(store), "HF_HUB_OFFLINE": "1", **(env or {})}
    environment.pop("MEDTASKS_DATA", None)
    if data:
        environment["MEDTASKS_DATA"] = str(data)
    command = [*LM_EVAL, "--model", backend, "--model_args", model_args, "--device", "cpu",
               "--tasks", tasks, "--log_samples", "--output_path", str(out), *extra]
    if limit is not None:
        command += ["--limit", str(limit)]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)


def load_run(out: Path) -> tuple[dict, dict[str, list[dict]]]:
    """(results_*.json, {task: samples}) of one lm-eval output folder."""
    results = json.loads(next(Path(out).rglob("results_*.json")).read_text())
    samples = {}
    for path in Path(out).rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return results, samples


def letter_scores(sample: dict) -> tuple[list[float], list[bool]]:
    """One logged question's (log-likelihood, is-greedy) per choice, in choice order (lm-eval logs strings)."""
    return ([float(resp[0][0]) for resp in sample["resps"]],
            [str(resp[0][1]) == "True" for resp in sample["resps"]])


def recomputed(rows: list[dict]) -> dict[str, float]:
    """A task's four scores from its logged samples alone: acc from the letter log-likelihoods (first
    letter wins a tie), strict_acc from lm-eval's is-greedy flag of the gold letter, brier and ece
    with medtasks.metrics on the same numbers."""
    correct, strict, brier, confidence = [], [], [], []
    for row in rows:
        logliks, greedy = letter_scores(row)
        gold = LETTERS.index(row["doc"]["answer"])
        correct.append(logliks.index(max(logliks)) == gold)
        strict.append(greedy[gold])
        brier.append(brier_score(softmax(logliks), gold))
        confidence.append(math.exp(max(logliks)))
    n = len(rows)
    return {"acc": sum(correct) / n, "strict_acc": sum(strict) / n, "brier": sum(brier) / n,
            "ece": expected_calibration_error(confidence, correct)}
