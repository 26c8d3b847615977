"""Benchmark the `hf-prefix` backend against stock `hf` on the same run: tokens forwarded (and their ratio
to the floor), wall time, peak memory, and the numbers themselves (max |delta log-likelihood|, every
metric of the spec per task).

    .venv/bin/python benchmarks/bench_prefix_lm.py                     # English suite, --limit 10, 3-shot
    .venv/bin/python benchmarks/bench_prefix_lm.py --all-languages     # + every translated task the data has
    .venv/bin/python benchmarks/bench_prefix_lm.py --model DIR --limit 50 --batch-size 8 --repeat 5

The floor is what any backend must forward: each task's shared prefix once per run (only past what
another task's prefix already covers: languages share the English examples) plus each question's own
tokens. It is computed from the requests lm-eval sends (`medtasks.prefix_lm.token_floor`, which knows
nothing of the backend's plan). Tokens forwarded are counted by a forward pre-hook on the model
(input_ids.numel(), padding included: what the model computes), so the floor ratio is deterministic.

Wall time is noisy on a shared machine: the backends run alternately, each in its own process (hf,
hf-prefix, then hf-prefix, hf, ...), --repeat pairs; the wall ratio is the median of the pairs'
ratios, their range beside it. With several torch threads per process and the cores oversubscribed,
each of a forward pass's ~500 operations also waits for all its threads to be scheduled, a cost per
forward pass rather than per token: --threads 1 keeps wall time close to compute time there. Wall
time is that of lm.loglikelihood (the model work); its CPU time (all threads) and the whole
simple_evaluate call are reported beside it. Peak RSS = the process's VmHWM (on CUDA also the
allocator's peak). Data come from $MEDTASKS_DATA (default ../shared/data) imported once into a
temporary store; the default model is `medeval model path`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BACKENDS = ("hf", "hf-prefix")
TARGETS = {"floor": 1.05, "wall": 0.40}  # hf-prefix tokens / floor, hf-prefix wall / hf wall (issue 14)


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

    from medtasks.prefix_lm import request_floor
    from medtasks.spec import metrics_for

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = get_model(args.worker).create_from_arg_string(
        f"pretrained={args.model}", {"batch_size": args.batch_size, "device": args.device})
    counts = {"tokens": 0, "forwards": 0, "seconds": 0.0, "cpu_seconds": 0.0}
    floor = {"prefix": 0, "suffix": 0, "total": 0}

    def count(_module, fargs, fkwargs):
        ids = fkwargs.get("input_ids", fargs[0] if fargs else None)
        counts["tokens"] += int(ids.numel())
        counts["forwards"] += 1

    lm.model.register_forward_pre_hook(count, with_kwargs=True)
    loglikelihood = lm.loglikelihood

    def timed(requests, *a, **k):
        for key, value in request_floor(lm, requests).items():  # outside the timed span
            floor[key] += value
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return loglikelihood(requests, *a, **k)
        finally:
            counts["seconds"] += time.perf_counter() - start
            counts["cpu_seconds"] += time.process_time() - cpu

    lm.loglikelihood = timed
    start = time.perf_counter()
    out = simple_evaluate(model=lm, tasks=args.tasks.split(","), limit=args.limit, log_samples=True,
                          metadata={"fewshot_seed": args.fewshot_seed})
    total = time.perf_counter() - start
    logliks = {task: {str(s["doc_id"]): [float(r[0][0]) for r in s["resps"]] for s in samples}
               for task, samples in out["samples"].items()}
    metrics = {task: {m: out["results"][task].get(f"{m},none") for m in metrics_for("single")}
               for task in out["samples"]}
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    Path(args.out).write_text(json.dumps({
        **counts, "floor": floor, "total_seconds": total, "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": cuda_peak, "questions": sum(map(len, logliks.values())), "logliks": logliks,
        "metrics": metrics, "prefix_stats": getattr(lm, "prefix_stats", None)}))


def available_tasks(all_languages: bool, store: Path) -> list[str]:
    """English suite, plus (all_languages) every non-English task whose test data is in the store."""
    from medtasks.spec import BENCHMARKS, LANGUAGES
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
               "--device", args.device, "--fewshot-seed", str(args.fewshot_seed), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{backend} worker failed:\n{proc.stderr[-4000:]}")
        return json.loads(Path(out.name).read_text())


def run_pairs(tasks: list[str], args, env: dict) -> list[tuple[dict, dict]]:
    """--repeat (stock, ours) pairs, run alternately: hf first in even pairs, hf-prefix first in odd ones."""
    pairs = []
    for k in range(args.repeat):
        order = BACKENDS if k % 2 == 0 else BACKENDS[::-1]
        runs = {}
        for backend in order:
            runs[backend] = run_backend(backend, tasks, args, env)
            seconds = runs[backend]["seconds"]
            print(f"  pair {k + 1}/{args.repeat}: {backend:9} loglikelihood {seconds:.1f} s", flush=True)
        pairs.append((runs["hf"], runs["hf-prefix"]))
    return pairs


def compare(stock: dict, ours: dict) -> tuple[float, list[str]]:
    """Largest |delta log-likelihood| and the tasks where any metric moves by more than 1e-4."""
    worst, differ = 0.0, []
    for task, docs in stock["logliks"].items():
        for doc, values in docs.items():
            worst = max(worst, max(abs(a - b) for a, b in zip(values, ours["logliks"][task][doc])))
        a, b = stock["metrics"][task], ours["metrics"][task]
        if any(abs(a[m] - b[m]) > 1e-4 for m in a if a[m] is not None and b[m] is not None):
            differ.append(task)
    return worst, differ


def report(name: str, tasks: list[str], pairs: list[tuple[dict, dict]]) -> None:
    stock, ours = pairs[0]  # tokens, numbers and plan are the same in every pair; times are not
    floor = ours["floor"]
    assert floor == stock["floor"], "both backends see the same requests"
    print(f"\n== {name}: {len(tasks)} tasks, {stock['questions']} questions, {len(pairs)} alternating pair(s) ==")
    print(f"{'':26}{'hf (stock)':>14}{'hf-prefix':>14}{'ours/stock':>12}")

    def line(label, a, b, fmt):
        r = f"{b / a:.3f}" if a else "-"
        print(f"{label:26}{fmt.format(a):>14}{fmt.format(b):>14}{r:>12}")

    line("tokens forwarded", stock["tokens"], ours["tokens"], "{:,.0f}")
    line("  / floor", stock["tokens"] / floor["total"], ours["tokens"] / floor["total"], "{:.3f}x")
    line("model forwards", stock["forwards"], ours["forwards"], "{:,.0f}")
    median = {}
    for key, label in (("seconds", "loglikelihood wall s"), ("cpu_seconds", "loglikelihood CPU s"),
                       ("total_seconds", "simple_evaluate wall s")):
        a = statistics.median(s[key] for s, _ in pairs)
        b = statistics.median(o[key] for _, o in pairs)
        line(label + " (median)", a, b, "{:.1f}")
        ratios = sorted(o[key] / s[key] for s, o in pairs)
        median[key] = statistics.median(ratios)
        print(f"{'  pair ratios':26}{'':28}{median[key]:>12.3f}  (median; range {ratios[0]:.3f}-{ratios[-1]:.3f})")
    line("peak RSS MB", max(s["peak_rss_mb"] for s, _ in pairs), max(o["peak_rss_mb"] for _, o in pairs), "{:.0f}")
    if stock["cuda_peak_mb"]:
        line("CUDA peak MB", stock["cuda_peak_mb"], ours["cuda_peak_mb"], "{:.0f}")
    print(f"floor: {floor['total']:,} tokens = distinct prefixes {floor['prefix']:,} "
          f"+ questions' own {floor['suffix']:,}")
    floor_ratio = ours["tokens"] / floor["total"]
    print(f"targets: tokens / floor <= {TARGETS['floor']}: {'met' if floor_ratio <= TARGETS['floor'] else 'MISSED'} "
          f"({floor_ratio:.3f}); loglikelihood wall / stock <= {TARGETS['wall']}: "
          f"{'met' if median['seconds'] <= TARGETS['wall'] else 'MISSED'} ({median['seconds']:.3f}, median of pairs)")
    worst, differ = compare(stock, ours)
    print(f"max |delta loglik| = {worst:.2e}; tasks where a metric moves > 1e-4: "
          f"{differ or 'none'}")
    print(f"hf-prefix plan: {ours['prefix_stats']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    parser.add_argument("--limit", type=int, default=10, help="questions per task (default 10)")
    parser.add_argument("--batch-size", type=int, default=4, help="batch size for both backends (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating (hf, hf-prefix) pairs (default 3)")
    parser.add_argument("--device", default=None, help="cuda if available, else cpu")
    parser.add_argument("--fewshot-seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads in both workers (default: torch's own choice); 1 keeps wall time "
                             "close to compute time when other jobs share the cores")
    parser.add_argument("--all-languages", action="store_true",
                        help="also run every non-English task whose data is available (English examples shared)")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
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
        threads = args.threads or "torch default"
        print(f"model {args.model}, device {args.device}, 3-shot, --limit {args.limit}, batch size {args.batch_size}, "
              f"few-shot seed {args.fewshot_seed}, {args.repeat} pair(s), threads: {threads}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        suites = [("English suite (medeval_en)", available_tasks(False, Path(store)))]
        if args.all_languages:
            suites.append(("all languages with data", available_tasks(True, Path(store))))
        for name, tasks in suites:
            report(name, tasks, run_pairs(tasks, args, env))


if __name__ == "__main__":
    main()
