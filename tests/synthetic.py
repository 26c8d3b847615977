"""Test fixture: writes lm-eval-format output folders from KNOWN per-question outcomes, for the results
tests that need a controlled effect (a 10-point drop) that random tiny models cannot give, and for
benchmarks/bench_results.py.

The files have the keys and layout lm-eval 0.4.13 writes for our tasks (results_<stamp>.json,
samples_<task>_<stamp>.jsonl), and their aggregate numbers are computed from the samples with
medtasks.metrics, so the loader's cross-checks hold. Real evaluations never pass through here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from medtasks.metrics import expected_calibration_error
from medtasks.spec import (
    ALL_BENCHMARKS as BENCHMARKS,  # the suite and the extra benchmarks
)
from medtasks.spec import LANGUAGES


@dataclass
class Question:
    id: str
    correct: bool
    confidence: float  # largest letter probability
    strict: bool = False
    brier: float = 0.5
    options: int = 0  # options offered (TruthfulQA varies); 0: all the benchmark's letters


def _sanitize(name: str) -> str:
    return name.replace("/", "__")


def _sample_line(doc_id: int, task: str, q: Question, prompt: str) -> str:
    letters = BENCHMARKS[task.rpartition("_")[0]].letters[:q.options or None]
    gold = letters[0]
    arguments = {f"gen_args_{i}": {"arg_0": prompt, "arg_1": letter} for i, letter in enumerate(letters)}
    resps = [[[str(math.log(max(q.confidence, 1e-9))), str(q.strict and i == 0)]] for i in range(len(letters))]
    return json.dumps({
        "doc_id": doc_id, "doc": {"id": q.id, "question": "synthetic", "context": None,
                                  "options": [f"option {x}" for x in letters], "answer": gold},
        "target": gold, "arguments": arguments, "resps": resps, "filtered_resps": [r[0] for r in resps],
        "filter": "none", "metrics": ["acc", "strict_acc", "ece", "brier"],
        "doc_hash": f"h{q.id}", "prompt_hash": "p", "target_hash": "t",
        "acc": float(q.correct), "strict_acc": float(q.strict), "ece": [q.confidence, q.correct],
        "brier": q.brier,
    })


def write_run(output: Path, model: str, tasks: dict[str, list[Question]], fewshot_seed: int = 1,
              stamp: str = "2026-01-01T00-00-00.000000", date: float = 1767225600.0, version: str = "1.0",
              n_shot: int = 3, samples: bool = True, prompt_chars: int = 0, config_chars: int = 0,
              lm_eval_version: str = "0.4.13", split_sizes: dict[str, int] | None = None) -> Path:
    """One lm-eval run of `model` over `tasks`; returns the results file. `split_sizes` {task: questions
    in the split} makes it a run with --limit (default: the questions given are the whole split).
    `prompt_chars` and `config_chars` pad prompts and task configs to the sizes real files have."""
    split_sizes = split_sizes or {}
    folder = Path(output) / _sanitize(model)
    folder.mkdir(parents=True, exist_ok=True)
    prompt = "x" * prompt_chars
    results, configs = {}, {}
    for task, questions in tasks.items():
        n = len(questions)
        acc = sum(q.correct for q in questions) / n
        strict = sum(q.strict for q in questions) / n
        brier = sum(q.brier for q in questions) / n
        ece = expected_calibration_error([q.confidence for q in questions], [q.correct for q in questions])
        bench, _, lang = task.rpartition("_")
        results[task] = {
            "name": task, "alias": f"{BENCHMARKS[bench].title} [{LANGUAGES[lang].name}]", "sample_len": n,
            "acc,none": acc, "acc_stderr,none": math.sqrt(acc * (1 - acc) / max(1, n - 1)),
            "strict_acc,none": strict, "strict_acc_stderr,none": math.sqrt(strict * (1 - strict) / max(1, n - 1)),
            "ece,none": ece, "ece_stderr,none": "N/A", "brier,none": brier, "brier_stderr,none": 0.0,
        }
        configs[task] = {"task": task, "num_fewshot": n_shot, "output_type": "multiple_choice",
                         "custom_dataset": "x" * config_chars,
                         "metadata": {"version": float(version), "pretrained": model, "fewshot_seed": fewshot_seed}}
        if samples:
            with open(folder / f"samples_{task}_{stamp}.jsonl", "w", encoding="utf-8") as fh:
                for i, q in enumerate(questions):
                    fh.write(_sample_line(i, task, q, prompt) + "\n")
    data = {
        "results": results, "group_subtasks": {}, "configs": configs,
        "versions": {t: float(version) for t in tasks}, "n-shot": {t: n_shot for t in tasks},
        "higher_is_better": {t: {"acc": True, "strict_acc": True, "ece": False, "brier": False} for t in tasks},
        "n-samples": {t: {"original": split_sizes.get(t, len(q)), "effective": len(q)} for t, q in tasks.items()},
        "config": {"model": "hf", "model_args": {"pretrained": model}, "model_revision": "main", "model_sha": "",
                   "batch_size": 1, "device": "cpu", "limit": max(map(len, tasks.values())) if split_sizes else None},
        "git_hash": "synthetic", "date": date, "lm_eval_version": lm_eval_version,
        "model_source": "hf", "model_name": model, "model_name_sanitized": _sanitize(model),
        "chat_template": None, "chat_template_sha": None, "system_instruction": None,
        "system_instruction_sha": None, "fewshot_as_multiturn": None,
        "task_hashes": {}, "total_evaluation_time_seconds": "0",
    }
    path = folder / f"results_{stamp}.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
