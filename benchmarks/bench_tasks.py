"""Issue-2 performance figures, measured side by side in one run on the default model.

    MEDTASKS_DATA=../shared/data .venv/bin/python benchmarks/bench_tasks.py [--limit 20]

Prints:
  1. forward passes per question for letter tasks (counted with a forward hook; target = 1);
  2. harness wall time / a raw torch forward loop over the SAME prompts (target <= 1.3);
  3. extra start-up time our task discovery adds to lm-eval (target <= 1 s): the .pth hook at
     interpreter start, plus indexing our 90 YAMLs on top of lm-eval's built-in index.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

TASKS = ["medmcqa_en", "mmlu_medical_genetics_en", "mmlu_anatomy_en", "pubmedqa_en"]


def evaluate_with_counter(model_dir: str, tasks: list[str], limit: int):
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model_dir, device="cpu", batch_size=1)
    manager = TaskManager()  # index built outside the timed part (it is start-up, measured in 3.)
    calls = []
    hook = lm.model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[-1] if args else 0))
    started = time.perf_counter()
    with torch.no_grad():
        out = simple_evaluate(model=lm, tasks=tasks, limit=limit, task_manager=manager, log_samples=True)
    harness_s = time.perf_counter() - started
    hook.remove()
    questions = sum(len(v) for v in out["samples"].values())
    prompts = [context_of(s) for v in out["samples"].values() for s in v]
    return lm, calls, questions, prompts, harness_s


def context_of(sample: dict) -> str:
    """The scored prompt of a sample: (context, continuation) pairs in memory, a dict once saved."""
    args = sample["arguments"]
    return args[0][0] if isinstance(args, (list, tuple)) else args["gen_args_0"]["arg_0"]


def raw_loop(lm, prompts: list[str]) -> float:
    """What the harness must at least do: tokenize each prompt, one forward, log-softmax of the last position."""
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        for prompt in prompts:
            ids = lm.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
            torch.log_softmax(lm.model(ids).logits[0, -1], dim=-1)
    return time.perf_counter() - started


def startup_overhead(repeats: int = 5) -> tuple[float, float]:
    """(.pth hook import cost at interpreter start, extra TaskManager time for our folders), seconds."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
    hook = re.search(r"\|\s+(\d+) \|\s+medtasks\._discovery\s*$", out, re.M)
    if hook is None:
        raise RuntimeError("medtasks._discovery is not imported at start-up: is the .pth file installed?")
    # One process: warm the index once, then alternate built-ins-only and patched builds.
    code = ("import time, statistics; from lm_eval.tasks import TaskManager; init = TaskManager.__init__; "
            "raw = init.__wrapped__; raw(TaskManager.__new__(TaskManager)); a, b = [], []\n"
            f"for _ in range({repeats}):\n"
            "    t = time.perf_counter(); raw(TaskManager.__new__(TaskManager)); a.append(time.perf_counter() - t)\n"
            "    t = time.perf_counter(); TaskManager(); b.append(time.perf_counter() - t)\n"
            "print(statistics.median(b) - statistics.median(a))")
    extra = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    return int(hook.group(1)) / 1e6, extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=10, help="questions per task (default 10)")
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    args = parser.parse_args()
    os.environ.setdefault("MEDTASKS_STORE", tempfile.mkdtemp(prefix="bench_store_"))
    from medtasks.default_model import ensure_default_model

    model_dir = args.model or str(ensure_default_model())
    lm, calls, questions, prompts, harness_s = evaluate_with_counter(model_dir, TASKS, args.limit)
    raw_s = raw_loop(lm, prompts)
    hook_s, index_s = startup_overhead()
    print(f"model: {model_dir}\ntasks: {', '.join(TASKS)} (--limit {args.limit}, 3-shot)")
    print(f"1. forward passes per question: {len(calls)} / {questions} = {len(calls) / questions:.2f} (target 1)")
    print(f"2. harness {harness_s:.1f} s vs raw torch loop {raw_s:.1f} s on the same {len(prompts)} prompts: "
          f"ratio {harness_s / raw_s:.2f} (target <= 1.3)")
    print(f"3. start-up added by our discovery: .pth hook {hook_s * 1000:.1f} ms + indexing our YAMLs "
          f"{index_s * 1000:.0f} ms = {hook_s + index_s:.2f} s (target <= 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
