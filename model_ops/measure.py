"""Measure ONE model in a fresh process: peak memory of loading it, generation speed, task accuracy.

Run as `python -m model_ops.measure MODEL_DIR --spec JSON`; prints one JSON line. A fresh process
per model keeps peak-memory figures honest (no allocator reuse between variants). Memory is
measured before anything else runs; accuracy last, on the already loaded model.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time


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


def measure(model_dir: str, prompts: list[str], new_tokens: int, tasks: list[str], limit: int | None,
            device: str, include_path: str | None = None) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model_ops.quantize import load_kwargs

    cuda = device.startswith("cuda")
    before = _rss_mb()
    t0 = time.perf_counter()
    kwargs = load_kwargs(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, device_map=device, trust_remote_code=False, **kwargs)
    model.eval()
    load_s = time.perf_counter() - t0
    tokenizer = AutoTokenizer.from_pretrained(model_dir)  # GGUF dirs carry tokenizer files beside the .gguf
    result = {"load_s": round(load_s, 3),
              "peak_load_mb": round((torch.cuda.max_memory_allocated() / 2**20) if cuda
                                    else peak_rss_mb() - before, 1),
              "memory_kind": "cuda max_memory_allocated" if cuda else "peak RSS increase over the process"}

    generated, start = 0, time.perf_counter()
    with torch.no_grad():
        for prompt in prompts:  # one prompt at a time: the latency a single user sees
            ids = tokenizer(prompt, return_tensors="pt").to(model.device)
            out = model.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            generated += out.shape[1] - ids["input_ids"].shape[1]
    result["tokens_per_s"] = round(generated / (time.perf_counter() - start), 2)
    result["generated_tokens"] = int(generated)

    if tasks:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        lm = HFLM(pretrained=model, tokenizer=tokenizer, device=device, batch_size=1)
        manager = TaskManager(include_path=include_path) if include_path else None
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, task_manager=manager,
                                      log_samples=False)
        result["accuracy"] = {task: {k.split(",")[0]: v for k, v in metrics.items()
                                     if k.split(",")[0] in ("acc", "strict_acc") and isinstance(v, float)}
                              for task, metrics in out["results"].items()}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--spec", required=True, help="JSON: prompts, new_tokens, tasks, limit, device")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    print(json.dumps(measure(args.model_dir, **spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
