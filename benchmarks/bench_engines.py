"""Time the suite with each lm-eval engine: `hf`, `hf-prefix` and `vllm`, and print questions/s and the ratios.

    # on a GPU node, the full 8-language suite (data for every language in the store or $MEDTASKS_DATA):
    .venv/bin/python benchmarks/bench_engines.py --model DIR --tasks medeval --device cuda --batch-size 16
    # CPU smoke check (no vllm): English suite, 5 questions per task, the default model
    .venv/bin/python benchmarks/bench_engines.py --limit 5 --engines hf hf-prefix

Each engine runs in its own process (one `simple_evaluate`, BioMistral's 3-shot regime, few-shot seed 1).
Timed: the engine's loglikelihood call, i.e. the model work on every question of the run (questions/s
= questions / those seconds), and the whole simple_evaluate call (model loading and prompt building
included) beside it. The numbers themselves are compared with `hf`: the largest |log-likelihood
difference| over every choice, and acc per engine. vllm is skipped with the reason when it is not
installed or there is no CUDA device. Data: $MEDTASKS_DATA (default ../shared/data), imported once
into a temporary store before the first engine starts, so no engine pays for it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENGINES = ("hf", "hf-prefix", "vllm")


def worker(args) -> None:
    """One engine, one simple_evaluate; writes its figures as JSON to args.out."""
    from lm_eval import simple_evaluate
    from lm_eval.api.registry import get_model

    model_args = f"pretrained={args.model},dtype={args.dtype}"
    if args.worker == "vllm":
        model_args += f",{args.vllm_args}"
    lm = get_model(args.worker).create_from_arg_string(model_args, {"batch_size": args.batch_size, "device": args.device})
    timed = {"seconds": 0.0, "requests": 0}
    loglikelihood = lm.loglikelihood

    def timed_loglikelihood(requests, *a, **k):
        started = time.perf_counter()
        try:
            return loglikelihood(requests, *a, **k)
        finally:
            timed["seconds"] += time.perf_counter() - started
            timed["requests"] += len(requests)

    lm.loglikelihood = timed_loglikelihood
    started = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=args.tasks.split(","), limit=args.limit, log_samples=True,
                          metadata={"fewshot_seed": 1})
    total = time.perf_counter() - started
    samples = out["samples"]
    Path(args.out).write_text(json.dumps({
        "questions": sum(len(s) for s in samples.values()), "requests": timed["requests"],
        "loglikelihood_seconds": timed["seconds"], "total_seconds": total,
        "acc": {t: r["acc,none"] for t, r in out["results"].items() if "acc,none" in r and t in samples},
        "lls": {t: {str(s["doc_id"]): [float(r[0][0]) for r in s["resps"]] for s in rows} for t, rows in samples.items()},
    }))


def vllm_unavailable() -> str | None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install vllm)"
    import torch

    return None if torch.cuda.is_available() else "no CUDA device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model folder (default: the embedded default model)")
    parser.add_argument("--tasks", default="medeval_en", help="tasks or groups (default medeval_en; the suite: medeval)")
    parser.add_argument("--limit", type=float, help="questions per task (default: all)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--batch-size", default="8")
    parser.add_argument("--device", help="cuda, cuda:0, cpu ... (default: cuda when available)")
    parser.add_argument("--dtype", default="auto", help="model dtype for every engine (default auto)")
    parser.add_argument("--vllm-args", default="gpu_memory_utilization=0.85",
                        help="extra vllm model args (default gpu_memory_utilization=0.85)")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from medtasks.cli_tasks import check_data, expand_tasks, resolve_tasks
    from medtasks.default_model import ensure_default_model
    from medtasks.sources import import_folder

    args.tasks = resolve_tasks(args.tasks)
    args.model = args.model or str(ensure_default_model())
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    engines = list(args.engines)
    if "vllm" in engines and (why := vllm_unavailable()):
        print(f"vllm: skipped ({why})")
        engines.remove("vllm")
    store = Path(tempfile.mkdtemp(prefix="bench_engines_store_"))
    env = {**os.environ, "MEDTASKS_STORE": str(store), "HF_HUB_OFFLINE": "1"}
    data = Path(os.environ.get("MEDTASKS_DATA", ROOT.parent / "shared" / "data"))
    if data.is_dir():
        import_folder(data, store)
        env["MEDTASKS_DATA"] = str(data)
    os.environ.update(env)
    check_data(expand_tasks(args.tasks), 1)  # every task has its data, or one line saying how to get it
    figures = {}
    for engine in engines:
        out = store / f"{engine}.json"
        command = [sys.executable, __file__, "--worker", engine, "--out", str(out), "--model", args.model,
                   "--tasks", args.tasks, "--batch-size", args.batch_size, "--device", args.device,
                   "--dtype", args.dtype, "--vllm-args", args.vllm_args]
        if args.limit is not None:
            command += ["--limit", str(args.limit)]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        figures[engine] = {**json.loads(out.read_text()), "process_seconds": time.perf_counter() - started}
    report(args, figures)


def report(args, figures: dict) -> None:
    hf = figures.get("hf")
    print(f"model {args.model} · tasks {args.tasks} · limit {args.limit} · device {args.device} · dtype {args.dtype} "
          f"· batch {args.batch_size} · 3-shot, few-shot seed 1")
    print(f"{'engine':10s} {'questions':>9s} {'requests':>8s} {'loglik s':>9s} {'q/s':>8s} {'x hf':>6s} "
          f"{'eval s':>8s} {'process s':>9s} {'mean acc':>8s} {'max |dLL| vs hf':>16s}")
    for engine, f in figures.items():
        rate = f["questions"] / f["loglikelihood_seconds"]
        ratio = rate / (hf["questions"] / hf["loglikelihood_seconds"]) if hf else float("nan")
        worst = max((abs(a - b) for t, docs in f["lls"].items() for d, lls in docs.items()
                     for a, b in zip(lls, hf["lls"][t][d])), default=float("nan")) if hf else float("nan")
        acc = sum(f["acc"].values()) / max(1, len(f["acc"]))
        print(f"{engine:10s} {f['questions']:9d} {f['requests']:8d} {f['loglikelihood_seconds']:9.2f} {rate:8.2f} "
              f"{ratio:6.2f} {f['total_seconds']:8.1f} {f['process_seconds']:9.1f} {acc:8.4f} {worst:16.2e}")


if __name__ == "__main__":
    main()
