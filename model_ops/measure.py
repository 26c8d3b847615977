"""Measure ONE model in a fresh process: its memory, its generation speed, its task accuracy.

Run as `python -m model_ops.measure MODEL_DIR --spec JSON`; prints one JSON line. A fresh process
per model keeps memory figures honest (no allocator reuse between variants).

- Memory (`peak_memory_mb`): what the model costs a user while it runs. CPU: the growth of this
  process's resident memory from just before loading to its peak (VmHWM) over loading AND generating,
  so weights touched only by the first forward pass (memory-mapped safetensors) are counted. GPU:
  `torch.cuda.max_memory_allocated` over the same span. `weights_mb` is the parameter + buffer
  bytes of the loaded model (`get_memory_footprint`): the peak is at least this, plus activations,
  the KV cache and the libraries' working memory.
- Speed: greedy generation, one prompt at a time (the latency a single user sees), exactly
  `new_tokens` per prompt. One untimed warm-up pass over the prompts (kernel selection, caches,
  bitsandbytes' weight repacking), then `repeats` timed passes: the median and the min-max of the
  passes' tokens per second.
- Accuracy last, through lm-eval on the already loaded model: acc and strict_acc per task.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

from medtasks import spec


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM). Not ru_maxrss: that survives fork+exec and would
    report the parent's size when the parent is larger."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed_summary(rates: list[float]) -> dict:
    """Median and spread of tokens/s over timed passes."""
    return {"tokens_per_s": round(statistics.median(rates), 2), "tokens_per_s_min": round(min(rates), 2),
            "tokens_per_s_max": round(max(rates), 2), "speed_repeats": len(rates)}


def _generate_all(model, tokenizer, prompts: list[str], new_tokens: int) -> int:
    import torch

    generated = 0
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").to(model.device)
            out = model.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            generated += out.shape[1] - ids["input_ids"].shape[1]
    return generated


def measure(model_dir: str, prompts: list[str], new_tokens: int, tasks: list[str], limit: int | None,
            device: str, include_path: str | None = None, repeats: int = 3) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model_ops.quantize import load_kwargs

    cuda = device.startswith("cuda")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)  # GGUF dirs carry tokenizer files beside the .gguf
    before = _rss_mb()
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, device_map=device, trust_remote_code=False,
                                                 **load_kwargs(model_dir))
    model.eval()
    result = {"load_s": round(time.perf_counter() - t0, 3),
              "weights_mb": round(model.get_memory_footprint() / 2**20, 1)}

    _generate_all(model, tokenizer, prompts, new_tokens)  # warm-up, untimed
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        generated = _generate_all(model, tokenizer, prompts, new_tokens)
        rates.append(generated / (time.perf_counter() - start))
    result.update(speed_summary(rates), generated_tokens=int(generated))
    result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20 if cuda
                                     else peak_rss_mb() - before, 1)
    result["memory_kind"] = ("cuda max_memory_allocated, load + generation" if cuda
                             else "peak RSS growth from before loading, load + generation")

    if tasks:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        lm = HFLM(pretrained=model, tokenizer=tokenizer, device=device, batch_size=1)
        manager = TaskManager(include_path=include_path) if include_path else None
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, task_manager=manager,
                                      log_samples=False)
        accuracy = [m for m in spec.metrics_for("single") if spec.METRICS[m].higher_is_better]  # acc, strict_acc
        result["accuracy"] = {task: {k.split(",")[0]: v for k, v in metrics.items()
                                     if k.split(",")[0] in accuracy and isinstance(v, float)}
                              for task, metrics in out["results"].items()}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--spec", required=True, help="JSON: prompts, new_tokens, tasks, limit, device, repeats")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    print(json.dumps(measure(args.model_dir, **spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
