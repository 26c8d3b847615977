"""Benchmark the `hf-prefix` backend against stock `hf` on the same run: tokens forwarded, wall time,
peak memory, and the numbers themselves (max |delta log-likelihood|, acc / strict_acc / ECE per task).

    .venv/bin/python benchmarks/bench_prefix_lm.py                     # English suite, --limit 10, 3-shot
    .venv/bin/python benchmarks/bench_prefix_lm.py --all-languages     # + every translated task the data has
    .venv/bin/python benchmarks/bench_prefix_lm.py --model DIR --limit 50 --batch-size 8

Each backend runs in its own process (peak RSS = that process's VmHWM; on CUDA also the allocator's
peak), one after the other. Tokens are counted by a forward pre-hook on the model (input_ids.numel(),
padding included: what the model computes). Wall time is that of lm.loglikelihood (the model work);
the whole simple_evaluate call is reported beside it. Data come from $MEDTASKS_DATA (default
../shared/data) imported once into a temporary store; the default model is `medeval model path`.
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
BACKENDS = ("hf", "hf-prefix")
TARGETS = {"tokens": 0.4, "wall": 0.5}  # ours / stock, from issue 8


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(args) -> None:
    """One backend, one simple_evaluate; writes its figures as JSON to args.out."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.api.registry import get_model

    lm = get_model(args.worker).create_from_arg_string(
        f"pretrained={args.model}", {"batch_size": args.batch_size, "device": args.device})
    counts = {"tokens": 0, "forwards": 0, "seconds": 0.0}

    def count(_module, fargs, fkwargs):
        ids = fkwargs.get("input_ids", fargs[0] if fargs else None)
        counts["tokens"] += int(ids.numel())
        counts["forwards"] += 1

    lm.model.register_forward_pre_hook(count, with_kwargs=True)
    loglikelihood = lm.loglikelihood

    def timed(requests, *a, **k):
        start = time.perf_counter()
        try:
            return loglikelihood(requests, *a, **k)
        finally:
            counts["seconds"] += time.perf_counter() - start

    lm.loglikelihood = timed
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=args.tasks.split(","), limit=args.limit, log_samples=True,
                          metadata={"fewshot_seed": args.fewshot_seed})
    total = time.perf_counter() - start
    logliks = {task: {str(s["doc_id"]): [float(r[0][0]) for r in s["resps"]] for s in samples}
               for task, samples in out["samples"].items()}
    metrics = {task: {m: out["results"][task].get(f"{m},none") for m in ("acc", "strict_acc", "ece")}
               for task in out["samples"]}
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    Path(args.out).write_text(json.dumps({
        **counts, "total_seconds": total, "peak_rss_mb": peak_rss_mb(), "cuda_peak_mb": cuda_peak,
        "questions": sum(map(len, logliks.values())), "logliks": logliks, "metrics": metrics,
        "prefix_stats": getattr(lm, "prefix_stats", None)}))


def available_tasks(all_languages: bool, store: Path) -> list[str]:
    """English suite, plus (all_languages) every non-English task whose test data is in the store."""
    from medtasks.benchmarks import BENCHMARKS
    from medtasks.languages import LANGUAGES
    from medtasks.store import has_split

    tasks = [f"{b}_en" for b in BENCHMARKS]
    if all_languages:
        tasks += [f"{b}_{lang}" for lang in LANGUAGES if lang != "en" for b in BENCHMARKS
                  if has_split(store, b, lang, "test")]
    return tasks


def run_backend(backend: str, tasks: list[str], args, env: dict) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, __file__, "--worker", backend, "--tasks", ",".join(tasks), "--out", out.name,
               "--model", str(args.model), "--limit", str(args.limit), "--batch-size", str(args.batch_size),
               "--device", args.device, "--fewshot-seed", str(args.fewshot_seed)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{backend} worker failed:\n{proc.stderr[-4000:]}")
        return json.loads(Path(out.name).read_text())


def compare(stock: dict, ours: dict) -> tuple[float, list[str]]:
    """Largest |delta log-likelihood| and the tasks whose acc / strict_acc differ or ECE moves > 1e-4."""
    worst, differ = 0.0, []
    for task, docs in stock["logliks"].items():
        for doc, values in docs.items():
            worst = max(worst, max(abs(a - b) for a, b in zip(values, ours["logliks"][task][doc])))
        a, b = stock["metrics"][task], ours["metrics"][task]
        if a["acc"] != b["acc"] or a["strict_acc"] != b["strict_acc"] or abs(a["ece"] - b["ece"]) > 1e-4:
            differ.append(task)
    return worst, differ


def report(name: str, tasks: list[str], stock: dict, ours: dict) -> None:
    ratio = {k: ours[k] / stock[k] for k in ("tokens", "seconds", "total_seconds", "peak_rss_mb")}
    worst, differ = compare(stock, ours)
    print(f"\n== {name}: {len(tasks)} tasks, {stock['questions']} questions ==")
    print(f"{'':24}{'hf (stock)':>14}{'hf-prefix':>14}{'ours/stock':>12}")
    rows = [("tokens forwarded", "tokens", "{:,.0f}"), ("model forwards", "forwards", "{:,.0f}"),
            ("loglikelihood wall s", "seconds", "{:.1f}"), ("simple_evaluate wall s", "total_seconds", "{:.1f}"),
            ("peak RSS MB", "peak_rss_mb", "{:.0f}")]
    for label, key, fmt in rows:
        r = f"{ours[key] / stock[key]:.3f}" if stock[key] else "-"
        print(f"{label:24}{fmt.format(stock[key]):>14}{fmt.format(ours[key]):>14}{r:>12}")
    if stock["cuda_peak_mb"]:
        print(f"{'CUDA peak MB':24}{stock['cuda_peak_mb']:>14.0f}{ours['cuda_peak_mb']:>14.0f}"
              f"{ours['cuda_peak_mb'] / stock['cuda_peak_mb']:>12.3f}")
    print(f"targets: tokens <= {TARGETS['tokens']}: {'met' if ratio['tokens'] <= TARGETS['tokens'] else 'MISSED'}; "
          f"wall <= {TARGETS['wall']}: {'met' if ratio['seconds'] <= TARGETS['wall'] else 'MISSED'}")
    print(f"max |delta loglik| = {worst:.2e}; tasks whose acc/strict_acc differ or ECE moves > 1e-4: "
          f"{differ or 'none'}")
    print(f"hf-prefix plan: {ours['prefix_stats']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    parser.add_argument("--limit", type=int, default=10, help="questions per task (default 10)")
    parser.add_argument("--batch-size", type=int, default=4, help="batch size for both backends (default 4)")
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--fewshot-seed", type=int, default=1)
    parser.add_argument("--all-languages", action="store_true",
                        help="also run every non-English task whose data is available (English examples shared)")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        return worker(args)

    if args.model is None:
        from medtasks.default_model import ensure_default_model

        args.model = ensure_default_model()
    from medtasks.sources import import_folder

    data = Path(os.environ.get("MEDTASKS_DATA", ROOT.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory() as store:
        print(f"importing {data} into a temporary store ...", flush=True)
        import_folder(data, Path(store))
        env = {**os.environ, "MEDTASKS_STORE": store, "MEDTASKS_DATA": str(data)}
        print(f"model {args.model}, device {args.device}, 3-shot, --limit {args.limit}, "
              f"batch size {args.batch_size}, few-shot seed {args.fewshot_seed}")
        suites = [("English suite (medeval_en)", available_tasks(False, Path(store)))]
        if args.all_languages:
            suites.append(("all languages with data", available_tasks(True, Path(store))))
        for name, tasks in suites:
            stock, ours = (run_backend(b, tasks, args, env) for b in BACKENDS)
            report(name, tasks, stock, ours)


if __name__ == "__main__":
    main()
