"""Plain `lm_eval` (a subprocess, no --include_path) on our tasks, on a tiny model and the default model:
every score lm-eval reports equals a recomputation from the per-question samples it logged, and the
default model's logged letter log-likelihoods equal an independent transformers computation."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lm_eval_run import letter_scores, load_run, recomputed, run_lm_eval
from medtasks.spec import BENCHMARKS, task_name

METRICS = ("acc", "strict_acc", "ece", "brier")


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_run")
    proc = run_lm_eval(tiny_llama, "medeval_en,mmlu_anatomy_fr", out, store=tmp_path_factory.mktemp("store"),
                       data=shared_data, limit=2, extra=["--metadata", '{"fewshot_seed": 2}'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_run(out)


def test_lm_eval_runs_our_tasks_with_all_metrics(tiny_run):
    """Each task's acc, strict_acc, ece and brier equal their recomputation from its two logged
    questions; the medeval_en group is the macro mean of its ten tasks for each metric."""
    results, samples = tiny_run
    scores = results["results"]
    suite = [task_name(benchmark, "en") for benchmark in BENCHMARKS]
    mine = {}
    for task in [*suite, "mmlu_anatomy_fr"]:
        assert results["n-shot"][task] == 3 and results["configs"][task]["metadata"]["version"] == 1.0
        assert len(samples[task]) == 2
        mine[task] = recomputed(samples[task])
        assert {m: scores[task][f"{m},none"] for m in METRICS} == pytest.approx(mine[task], abs=1e-12), task
    group = scores["medeval_en"]
    assert {m: group[f"{m},none"] for m in METRICS} == pytest.approx(
        {m: sum(mine[task][m] for task in suite) / len(suite) for m in METRICS}, abs=1e-12)
    assert len({round(mine[task]["brier"], 9) for task in suite}) > 1  # the numbers vary: not a constant


def test_every_question_of_a_run_gets_the_same_three_english_examples(tiny_run):
    """One few-shot prefix per task (3 examples), the same English one for the French MMLU task as for the
    English, followed by the logged question itself (French for the French task)."""
    _, samples = tiny_run
    prefixes = {}
    for task in ("medqa_en", "mmlu_anatomy_en", "mmlu_anatomy_fr"):
        prompts = [s["arguments"]["gen_args_0"]["arg_0"] for s in samples[task]]
        prefixes[task] = {p[: p.rindex("**Question:**")] for p in prompts}
        assert len(prefixes[task]) == 1 and next(iter(prefixes[task])).count("**Answer:**(") == 3
        for sample, prompt in zip(samples[task], prompts):
            assert sample["doc"]["question"] in prompt[prompt.rindex("**Question:**"):]
    assert prefixes["mmlu_anatomy_fr"] == prefixes["mmlu_anatomy_en"]
    assert next(iter(prefixes["mmlu_anatomy_fr"])).startswith("The following are multiple choice questions")
    english = {s["doc"]["id"]: s["doc"]["question"] for s in samples["mmlu_anatomy_en"]}
    french = {s["doc"]["id"]: s["doc"]["question"] for s in samples["mmlu_anatomy_fr"]}
    assert english.keys() == french.keys() and all(english[i] != french[i] for i in english)


def test_missing_language_fails_with_instructions(tiny_llama, tmp_path):
    proc = run_lm_eval(tiny_llama, "medmcqa_de", tmp_path / "out", store=tmp_path / "store", limit=1)
    assert proc.returncode != 0
    assert "medeval translate --benchmarks medmcqa --languages de" in proc.stderr


@pytest.fixture(scope="module")
def default_run(default_model, shared_data, tmp_path_factory):
    """The default model through `medeval eval` (the README's main job, smaller)."""
    out = tmp_path_factory.mktemp("default_run")
    env = {**os.environ, "MEDTASKS_STORE": str(tmp_path_factory.mktemp("store")),
           "MEDTASKS_DATA": str(shared_data), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "medtasks.cli", "eval", "--tasks", "medmcqa_en,mmlu_anatomy_en",
                           "--limit", "3", "--device", "cpu", "--output", str(out)],
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
    """For every logged question, the letter log-likelihoods lm-eval logged equal the log-softmax over the
    whole vocabulary at the answer position, computed with plain transformers from the prompt text (within
    1e-4); its is-greedy flags are that position's argmax; its reported scores follow from them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    results, samples = default_run
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    model = AutoModelForCausalLM.from_pretrained(default_model, dtype=torch.float32).eval()
    assert set(samples) == {"medmcqa_en", "mmlu_anatomy_en"}
    for task, rows in samples.items():
        assert len(rows) == 3
        for row in rows:
            prompt = row["arguments"]["gen_args_0"]["arg_0"]
            assert {args["arg_0"] for args in row["arguments"].values()} == {prompt}
            ids = tokenizer(prompt, add_special_tokens=False).input_ids
            letter_ids = []
            for args in row["arguments"].values():  # each letter is one token after the prompt's, as lm-eval splits it
                whole = tokenizer(prompt + args["arg_1"], add_special_tokens=False).input_ids
                assert whole[:-1] == ids
                letter_ids.append(whole[-1])
            with torch.no_grad():
                logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            logged, greedy = letter_scores(row)
            assert [logprobs[i].item() for i in letter_ids] == pytest.approx(logged, abs=1e-4)
            assert greedy == [logprobs.argmax().item() == i for i in letter_ids]
        reported = {m: results["results"][task][f"{m},none"] for m in METRICS}
        assert reported == pytest.approx(recomputed(rows), abs=1e-12)
