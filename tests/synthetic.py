"""Test fixture: writes lm-eval-format output folders from KNOWN per-question outcomes, for the results
tests that need a controlled effect (a 10-point drop) that random tiny models cannot give, and for
benchmarks/bench_results.py.

The files have the keys and layout lm-eval 0.4.13 writes for our tasks (results_<stamp>.json,
samples_<task>_<stamp>.jsonl), and their aggregate numbers are computed from the samples with
medtasks.metrics, so the loader's cross-checks hold. Real evaluations never pass through here.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from medtasks import spec
from medtasks.metrics import expected_calibration_error


@dataclass
class Question:
    id: str
    correct: bool  # acc (single answer) or emr (multi answer)
    confidence: float = 0.6  # largest letter probability
    strict: bool = False
    brier: float = 0.5
    options: int = 0  # options offered (TruthfulQA varies); 0: all the benchmark's letters
    category: str = ""
    hamming: float | None = None  # multi-answer questions: the Hamming score (default: 1 if correct else 0.5)


def data_sha256(task: str) -> str:
    """The default data checksum of a synthetic task (a stand-in for the store file's sha256)."""
    return hashlib.sha256(f"synthetic {task}".encode()).hexdigest()


def _sanitize(name: str) -> str:
    return name.replace("/", "__")


def hamming_of(q: Question) -> float:
    return q.hamming if q.hamming is not None else (1.0 if q.correct else 0.5)


def _sample_line(doc_id: int, bench: spec.Benchmark, q: Question, prompt: str, sha: str) -> str:
    letters = bench.letters[:q.options or None]
    gold = letters[0]
    arguments = {f"gen_args_{i}": {"arg_0": prompt, "arg_1": letter} for i, letter in enumerate(letters)}
    resps = [[[str(math.log(max(q.confidence, 1e-9))), str(q.strict and i == 0)]] for i in range(len(letters))]
    scores = ({"hamming": hamming_of(q), "emr": float(q.correct)} if bench.answers == "multi" else
              {"acc": float(q.correct), "strict_acc": float(q.strict), "ece": [q.confidence, q.correct], "brier": q.brier})
    return json.dumps({
        "doc_id": doc_id, "doc": {"id": q.id, "question": "synthetic", "context": None,
                                  "options": [f"option {x}" for x in letters], "answer": gold,
                                  "category": q.category, "data_sha256": sha},
        "target": gold, "arguments": arguments, "resps": resps, "filtered_resps": [r[0] for r in resps],
        "filter": "none", "metrics": list(scores),
        "doc_hash": f"h{q.id}", "prompt_hash": "p", "target_hash": "t", **scores,
    })


def _aggregates(bench: spec.Benchmark, questions: list[Question]) -> dict:
    """The task's results entry, computed from the questions as medtasks.metrics does."""
    n = len(questions)
    if bench.answers == "multi":
        hamming, emr = sum(map(hamming_of, questions)) / n, sum(q.correct for q in questions) / n
        return {"hamming,none": hamming, "hamming_stderr,none": 0.0, "emr,none": emr, "emr_stderr,none": 0.0}
    acc = sum(q.correct for q in questions) / n
    strict = sum(q.strict for q in questions) / n
    return {"acc,none": acc, "acc_stderr,none": math.sqrt(acc * (1 - acc) / max(1, n - 1)),
            "strict_acc,none": strict, "strict_acc_stderr,none": math.sqrt(strict * (1 - strict) / max(1, n - 1)),
            "ece,none": expected_calibration_error([q.confidence for q in questions], [q.correct for q in questions]),
            "ece_stderr,none": "N/A", "brier,none": sum(q.brier for q in questions) / n, "brier_stderr,none": 0.0}


def write_run(output: Path, model: str, tasks: dict[str, list[Question]], fewshot_seed: int = 1,
              stamp: str = "2026-01-01T00-00-00.000000", date: float = 1767225600.0, version: str = "1.0",
              n_shot: int | None = None, samples: bool = True, prompt_chars: int = 0, config_chars: int = 0,
              lm_eval_version: str = "0.4.13", split_sizes: dict[str, int] | None = None,
              regime: str | None = None, regime_version: int | None = 1,
              data: dict[str, str] | None = None) -> Path:
    """One lm-eval run of `model` over `tasks`; returns the results file. `split_sizes` {task: questions
    in the split} makes it a run with --limit (default: the questions given are the whole split).
    `prompt_chars` and `config_chars` pad prompts and task configs to the sizes real files have.
    The task configs record the benchmark and language (dataset_kwargs) and, in `metadata`, the regime
    (default: the spec's for the benchmark; `regime_version=None` leaves both out, as outputs made before
    the YAMLs recorded them); `n_shot` defaults to the regime's shots; every doc carries the data checksum
    (`data` {task: sha256}, default data_sha256(task))."""
    split_sizes, data = split_sizes or {}, data or {}
    folder = Path(output) / _sanitize(model)
    folder.mkdir(parents=True, exist_ok=True)
    prompt = "x" * prompt_chars
    results, configs = {}, {}
    shots = {}
    for task, questions in tasks.items():
        bench, lang = spec.parse_task(task)
        named = spec.get_regime(regime or bench.regime)
        shots[task] = named.num_fewshot if n_shot is None else n_shot
        results[task] = {"name": task, "alias": f"{bench.title} [{spec.get_language(lang).name}]",
                         "sample_len": len(questions), **_aggregates(bench, questions)}
        metadata = {"version": float(version), "pretrained": model, "fewshot_seed": fewshot_seed}
        if regime_version is not None:
            metadata.update(regime=named.name, regime_version=regime_version)
        configs[task] = {"task": task, "num_fewshot": shots[task], "output_type": "multiple_choice",
                         "custom_dataset": "x" * config_chars, "dataset_kwargs": {"benchmark": bench.key, "language": lang},
                         "metadata": metadata}
        if samples:
            with open(folder / f"samples_{task}_{stamp}.jsonl", "w", encoding="utf-8") as fh:
                for i, q in enumerate(questions):
                    fh.write(_sample_line(i, bench, q, prompt, data.get(task, data_sha256(task))) + "\n")
    data = {
        "results": results, "group_subtasks": {}, "configs": configs,
        "versions": {t: float(version) for t in tasks}, "n-shot": shots,
        "higher_is_better": {t: {m.name: m.higher_is_better for m in spec.METRICS.values()
                                 if f"{m.name},none" in results[t]} for t in tasks},
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
