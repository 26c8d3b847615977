"""Plain `lm_eval` (a subprocess, no --include_path) on our tasks, on a tiny model and the default model,
and an independent re-computation of the default model's letter log-probabilities with transformers."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medtasks.metrics import expected_calibration_error

LM_EVAL = [sys.executable, "-m", "lm_eval", "run"]


def run_lm_eval(model, tasks, out, store, data, limit, extra=(), env_extra=None):
    env = {**os.environ, "MEDTASKS_STORE": str(store), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    if data:
        env["MEDTASKS_DATA"] = str(data)
    else:
        env.pop("MEDTASKS_DATA", None)
    command = [*LM_EVAL, "--model", "hf", "--model_args", f"pretrained={model}", "--device", "cpu",
               "--tasks", tasks, "--limit", str(limit), "--log_samples", "--output_path", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def load_run(out: Path):
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return results, samples


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_run")
    proc = run_lm_eval(tiny_llama, "medeval_en,mmlu_anatomy_fr", out, tmp_path_factory.mktemp("store"),
                       shared_data, 2, ["--metadata", json.dumps({"fewshot_seed": 2})])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_run(out)


def test_lm_eval_runs_our_tasks_with_all_metrics(tiny_run):
    results, samples = tiny_run
    scores = results["results"]
    for task in ("medqa_en", "pubmedqa_en", "mmlu_anatomy_fr", "medqa5_en"):
        for metric in ("acc", "strict_acc", "ece", "brier"):
            assert 0.0 <= scores[task][f"{metric},none"] <= 2.0
        assert results["n-shot"][task] == 3 and results["configs"][task]["metadata"]["version"] == 1.0
        assert len(samples[task]) == 2
    group = scores["medeval_en"]
    task_accs = [scores[f"{b}_en"]["acc,none"] for b in __import__("medtasks.benchmarks").benchmarks.BENCHMARKS]
    assert group["acc,none"] == pytest.approx(sum(task_accs) / 10)  # macro mean of the ten tasks


def test_every_question_of_a_run_gets_the_same_three_english_examples(tiny_run):
    _, samples = tiny_run
    for task in ("medqa_en", "mmlu_anatomy_fr"):
        prompts = [s["arguments"]["gen_args_0"]["arg_0"] for s in samples[task]]
        prefixes = {p[: p.rindex("**Question:**")] for p in prompts}
        assert len(prefixes) == 1 and prefixes.pop().count("**Answer:**(") == 3
    fr_prompt = samples["mmlu_anatomy_fr"][0]["arguments"]["gen_args_0"]["arg_0"]
    assert fr_prompt.startswith("The following are multiple choice questions")
    assert "Une lésion" in fr_prompt or "**Question:**" in fr_prompt.rsplit(" \n **Question:**", 1)[1]


def test_missing_language_fails_with_instructions(tiny_llama, tmp_path):
    proc = run_lm_eval(tiny_llama, "medmcqa_de", tmp_path / "out", tmp_path / "store", None, 1)
    assert proc.returncode != 0
    assert "medeval translate --benchmarks medmcqa --languages de" in proc.stderr


@pytest.fixture(scope="module")
def default_run(default_model, shared_data, tmp_path_factory):
    """The default model through `medeval eval` (the README's main job, smaller)."""
    out = tmp_path_factory.mktemp("default_run")
    env = {**os.environ, "MEDTASKS_STORE": str(tmp_path_factory.mktemp("store")),
           "MEDTASKS_DATA": str(shared_data), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "medtasks.cli", "eval", "--tasks", "medmcqa_en,mmlu_anatomy_en",
                           "--limit", "4", "--device", "cpu", "--output", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "medmcqa_en" in proc.stdout or "MedMCQA" in proc.stdout  # lm-eval's score table is printed
    # ... followed by where lm-eval wrote its files
    tail = proc.stdout[proc.stdout.rindex("|"):]
    results = Path(re.search(r"^results: (\S+)$", tail, re.M).group(1))
    assert results.is_file() and results == next(out.rglob("results_*.json"))
    samples = re.search(r"^samples: 2 files in (\S+) \((samples_\S+), (samples_\S+)\)$", tail, re.M)
    assert samples and Path(samples.group(1)) == results.parent
    assert {(results.parent / name).is_file() for name in samples.groups()[1:]} == {True}
    return load_run(out)


def test_harness_agrees_with_an_independent_transformers_computation(default_run, default_model):
    """Recompute each question's letter log-probabilities from the prompt text with plain transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    results, samples = default_run
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    model = AutoModelForCausalLM.from_pretrained(default_model, dtype=torch.float32).eval()
    for task, rows in samples.items():
        confidences, correct, strict = [], [], []
        for row in rows:
            prompt = row["arguments"]["gen_args_0"]["arg_0"]
            letters = [args["arg_1"] for args in row["arguments"].values()]
            ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
            with torch.no_grad():
                logprobs = torch.log_softmax(model(ids).logits[0, -1].float(), dim=-1)
            letter_ids = [tokenizer.convert_tokens_to_ids(letter) for letter in letters]
            mine = [logprobs[i].item() for i in letter_ids]
            theirs = [float(r[0][0]) for r in row["resps"]]
            assert mine == pytest.approx(theirs, abs=1e-3)
            gold = "ABCDE".index(row["doc"]["answer"])
            pred = max(range(len(mine)), key=mine.__getitem__)
            assert row["acc"] == float(pred == gold)
            strict.append(float(logprobs.argmax().item() == letter_ids[gold]))
            assert row["strict_acc"] == strict[-1]
            confidences.append(max(math.exp(x) for x in mine))
            correct.append(pred == gold)
        scores = results["results"][task]
        assert scores["strict_acc,none"] == pytest.approx(sum(strict) / len(strict))
        assert scores["ece,none"] == pytest.approx(expected_calibration_error(confidences, correct), abs=1e-4)
