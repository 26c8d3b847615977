"""How fast the results package reads a realistic pile of lm-eval outputs, and compares two full runs.

    .venv/bin/python benchmarks/bench_results.py [--work DIR] [--prompt-chars 1500] [--keep]

1. Loading: 10 models x 3 few-shot seeds = 30 lm-eval runs of the full suite (80 tasks each, task
   configs padded to the ~3 kB a real results file holds per task), into the tidy table; then the
   summary leaderboard rendered in three formats.
2. Compare: two runs over the 8-language suite at the real test sizes (8 x 8,318 = 66,544 paired
   questions), samples files with prompts padded to --prompt-chars per choice (real files repeat
   the few-shot prompt once per letter, 5-20 kB a line); load both, read and check every sample,
   pair by id, 10,000 bootstrap resamples and McNemar per task, language and overall.
The files are written by the test fixture tests/synthetic.py in lm-eval 0.4.13's layout (not timed).
Figures are printed (wall and CPU time: on a shared machine the CPU figure is the stable one);
nothing is asserted.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the fixture that writes lm-eval outputs

from synthetic import Question, write_run  # noqa: E402

from medtasks.spec import (
    BENCHMARKS,  # noqa: E402
    LANGUAGES,  # noqa: E402
)
from results.compare import Gate, compare_tables  # noqa: E402
from results.leaderboard import summary_view  # noqa: E402
from results.load import load_table  # noqa: E402
from results.render import FORMATS, render  # noqa: E402

TASKS = [f"{b}_{lang}" for lang in LANGUAGES for b in BENCHMARKS]


def _questions(task: str, n: int, accuracy: float, rng: random.Random) -> list[Question]:
    return [Question(f"{task}-{i}", rng.random() < accuracy, 0.25 + 0.7 * rng.random(), brier=0.6) for i in range(n)]


def _dir_size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def bench_loading(work: Path) -> None:
    rng = random.Random(0)
    out = work / "many"
    for m in range(10):
        for seed in (1, 2, 3):
            tasks = {t: _questions(t, 20, 0.3 + 0.03 * m, rng) for t in TASKS}  # small: samples not written
            write_run(out, f"org/model-{m}", tasks, fewshot_seed=seed, stamp=f"2026-01-0{seed}T00-00-00.000000",
                      samples=False, config_chars=3000)
    files = len(list(out.rglob("results_*.json")))
    start, cpu = time.perf_counter(), time.process_time()
    table = load_table([out], hash_models=False)
    loaded, loaded_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    grid = summary_view(table)
    texts = [render(grid, fmt) for fmt in FORMATS]
    board = time.perf_counter() - start
    print(f"loading: {files} results files ({_dir_size(out):.0f} MB), {len(table)} table rows "
          f"(10 models x 80 tasks x 3 seeds x 4 metrics) in {loaded:.2f} s wall, {loaded_cpu:.2f} s CPU")
    print(f"leaderboard: summary view + Markdown/CSV/LaTeX ({sum(map(len, texts))} chars) in {board:.2f} s")


def bench_compare(work: Path, prompt_chars: int) -> None:
    rng = random.Random(1)
    base_tasks, cand_tasks = {}, {}
    for lang in LANGUAGES:
        for key, bench in BENCHMARKS.items():
            task = f"{key}_{lang}"
            base_tasks[task] = _questions(task, bench.test_size, 0.5, rng)
            cand_tasks[task] = [Question(q.id, q.correct if rng.random() > 0.1 else not q.correct, q.confidence,
                                         brier=q.brier) for q in base_tasks[task]]
    pairs = sum(len(q) for q in base_tasks.values())
    write_run(work / "base", "org/base", base_tasks, prompt_chars=prompt_chars, config_chars=3000)
    write_run(work / "cand", "org/cand", cand_tasks, prompt_chars=prompt_chars, config_chars=3000)
    size = _dir_size(work / "base") + _dir_size(work / "cand")
    start, cpu = time.perf_counter(), time.process_time()
    base, cand = load_table([work / "base"], hash_models=False), load_table([work / "cand"], hash_models=False)
    result = compare_tables(base, cand, Gate(n_boot=10_000, seed=0))
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"compare: {pairs} paired questions over {len(base_tasks)} tasks ({size:.0f} MB of samples), "
          f"{len(result.rows)} rows (tasks + languages + overall), 10,000 bootstrap resamples each, "
          f"in {elapsed:.2f} s wall, {elapsed_cpu:.2f} s CPU")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder, removed)")
    parser.add_argument("--prompt-chars", type=int, default=1500, help="prompt padding per choice (default 1500)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_results_"))
    try:
        bench_loading(work)
        bench_compare(work, args.prompt_chars)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
