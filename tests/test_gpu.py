"""GPU readiness: run where CUDA is (skipped here, with that reason). The default model, BioMistral's 3-shot
regime, English tasks and the French MMLU (the data this repository's tests have), 20 questions each.

- `hf-prefix` on CUDA gives the log-likelihoods of `hf` within 1e-4 (float32), acc and strict_acc equal.
- lm-eval's `vllm` backend scores the same runs like `hf` within the tolerances below (float32 both;
  vLLM's attention kernels and prefill differ from torch's): every choice's log-likelihood within
  VLLM_LL_TOL nats, acc and strict_acc of a task within one question (a near-tie may flip). Our
  letters are single tokens, and lm-eval's vllm backend sends one prompt-logprobs request per choice
  (a full prefill each: it does not group the letters of a question as `hf` does); both are checked.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu

TASKS = ["medqa_en", "mmlu_anatomy_en", "pubmedqa_en", "mmlu_anatomy_fr"]
LIMIT = 20
TOL = 1e-4
VLLM_LL_TOL = 0.02


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()


def evaluate(lm, task_manager, shared_data, monkeypatch):
    from lm_eval import simple_evaluate

    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    return simple_evaluate(model=lm, tasks=TASKS, limit=LIMIT, log_samples=True, metadata={"fewshot_seed": 1},
                           task_manager=task_manager)


def make_lm(backend: str, model_dir, **extra):
    from lm_eval.api.registry import get_model

    args = ",".join([f"pretrained={model_dir}", "dtype=float32", *(f"{k}={v}" for k, v in extra.items())])
    return get_model(backend).create_from_arg_string(args, {"batch_size": 8, "device": "cuda"})


def choices(run) -> dict:
    """(task, doc_id) -> [(log-likelihood, is_greedy) per choice]."""
    return {(task, s["doc_id"]): [(float(r[0][0]), r[0][1] in (True, "True")) for r in s["resps"]]
            for task, samples in run["samples"].items() for s in samples}


def release(lm) -> None:
    import gc

    import torch

    del lm
    gc.collect()
    torch.cuda.empty_cache()


@pytest.fixture(scope="module")
def hf_run(default_model, task_manager, shared_data):
    with pytest.MonkeyPatch.context() as mp:
        lm = make_lm("hf", default_model)
        assert lm.device.type == "cuda"
        run = evaluate(lm, task_manager, shared_data, mp)
    release(lm)
    return run


def test_hf_prefix_on_cuda_equals_hf(default_model, task_manager, shared_data, hf_run, monkeypatch):
    lm = make_lm("hf-prefix", default_model)
    assert lm.device.type == "cuda"
    ours = evaluate(lm, task_manager, shared_data, monkeypatch)
    assert lm.prefix_stats["groups"] > 0 and lm.prefix_stats["fallback_calls"] == 0  # the prefix path ran
    release(lm)
    stock, mine = choices(hf_run), choices(ours)
    assert stock.keys() == mine.keys() and len(stock) == LIMIT * len(TASKS)
    worst = max(abs(a[0] - b[0]) for key in stock for a, b in zip(stock[key], mine[key]))
    assert worst <= TOL, f"log-likelihoods differ by {worst}"
    assert all([g for _, g in stock[k]] == [g for _, g in mine[k]] for k in stock)
    for task in TASKS:
        for metric in ("acc,none", "strict_acc,none"):
            assert ours["results"][task][metric] == hf_run["results"][task][metric], (task, metric)


def test_vllm_scores_the_suite_like_hf(default_model, task_manager, shared_data, hf_run, monkeypatch):
    pytest.importorskip("vllm", reason="vllm is not installed (pip install vllm)")
    lm = make_lm("vllm", default_model, gpu_memory_utilization=0.5)
    prompts, single_token = [], []
    generate, loglikelihood_tokens = lm._model_generate, lm._loglikelihood_tokens

    def counted_generate(requests, *args, **kwargs):
        prompts.extend(requests)
        return generate(requests, *args, **kwargs)

    def checked(requests, *args, **kwargs):
        single_token.extend(len(continuation) == 1 for _, _, continuation in requests)
        return loglikelihood_tokens(requests, *args, **kwargs)

    lm._model_generate, lm._loglikelihood_tokens = counted_generate, checked
    theirs = evaluate(lm, task_manager, shared_data, monkeypatch)
    release(lm)
    stock, vllm = choices(hf_run), choices(theirs)
    assert stock.keys() == vllm.keys()
    assert single_token and all(single_token)  # the letters are one token each
    assert len(prompts) == sum(len(c) for c in stock.values())  # one prompt-logprobs request per choice
    worst = max(abs(a[0] - b[0]) for key in stock for a, b in zip(stock[key], vllm[key]))
    assert worst <= VLLM_LL_TOL, f"log-likelihoods differ by {worst}"
    for task in TASKS:
        for metric in ("acc,none", "strict_acc,none"):
            assert abs(theirs["results"][task][metric] - hf_run["results"][task][metric]) <= 1 / LIMIT + 1e-9
