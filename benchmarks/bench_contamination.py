"""Contamination scan: throughput per core, and peak memory for a corpus of S and 2S MB (must not grow).

    .venv/bin/python benchmarks/bench_contamination.py [--mb 48] [--workers 2] [--data ../shared/data]

Test set: the ten English tasks of the real data (8,318 questions, their options and PubMedQA's contexts),
imported into a temporary store. Corpus: JSONL parts of ~1,000-word chunks made of real medical prose
(PubMedQA's 500 non-test abstracts, words shuffled within each sentence so nothing matches by chance),
plus five planted test questions per part so the hit path runs too. Each size is scanned in a fresh
process (index build timed apart from the scan): MB/s per core = corpus MB / CPU seconds of the scan
(CPU time is the stable figure on a shared machine; wall time is printed beside it); peak memory =
that process's max RSS. Then the 2S corpus over --workers processes. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

TASKS = ("medqa_en,medqa5_en,pubmedqa_en,medmcqa_en,mmlu_clinical_knowledge_en,mmlu_medical_genetics_en,"
         "mmlu_anatomy_en,mmlu_professional_medicine_en,mmlu_college_biology_en,mmlu_college_medicine_en")
PART_MB = 16

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from training.contamination import TestSet, parse_tasks, scan
from training.ngrams import Settings
from training.textfiles import discover
store, corpus, workers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cpu = lambda: sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
test = TestSet.load(store, parse_tasks([sys.argv[4]]), Settings())
index_s, index_rss = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu0, wall0 = cpu(), time.perf_counter()
found, totals = scan(test, discover([corpus]), workers=workers, progress_bar=False)
print(json.dumps({"index_s": index_s, "index_rss_mb": index_rss / 1024, "base_rss_mb": base_rss / 1024,
                  "index_mb": test.index.nbytes() / 2**20, "scan_cpu_s": cpu() - cpu0,
                  "scan_wall_s": time.perf_counter() - wall0, "bytes": totals["bytes"],
                  "contaminated": len({test.refs[f][:2] for f in found.hits}),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def prose(store: Path) -> list[list[str]]:
    """Sentences (as word lists) of PubMedQA's non-test abstracts: real medical prose, not test data."""
    from medtasks.store import read_records

    sentences = []
    for record in read_records(store, "pubmedqa", "en", "fewshot"):
        sentences += [s.split() for s in record.context.split(". ") if len(s.split()) > 4]
    return sentences


def write_corpus(folder: Path, megabytes: int, sentences: list[list[str]], planted: list[str], seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for part in range(max(1, megabytes // PART_MB)):
        with open(folder / f"part-{part:05d}.jsonl", "w", encoding="utf-8") as handle:
            size, chunk = 0, 0
            while size < PART_MB << 20:
                words = []
                while len(words) < 1000:
                    sentence = list(rng.choice(sentences))
                    rng.shuffle(sentence)
                    words += sentence + ["."]
                text = " ".join(words)
                if chunk % 2000 == 1:
                    text += " " + planted[(chunk // 2000) % len(planted)]
                line = json.dumps({"id": f"p{part}-{chunk}", "text": text}) + "\n"
                handle.write(line)
                size, chunk = size + len(line.encode()), chunk + 1


def measure(store: Path, corpus: Path, workers: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(store), str(corpus), str(workers), TASKS],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=48, help="S: the smaller corpus, in MB (multiple of 16)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel run on 2S")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    from medtasks.sources import import_folder
    from medtasks.store import read_records

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import_folder(args.data, tmp / "store")
        planted = [r.question for r in read_records(tmp / "store", "medqa", "en", "test")[:5]]
        sentences = prose(tmp / "store")
        for name, mb in (("S", args.mb), ("2S", 2 * args.mb)):
            write_corpus(tmp / name, mb, sentences, planted, seed=mb)
        print(f"test set: {TASKS.count(',') + 1} English tasks; corpus S = {args.mb} MB, 2S = {2 * args.mb} MB "
              f"of {PART_MB} MB JSONL parts")
        print(f"{'run':14} {'corpus MB':>9} {'index s':>8} {'RSS after imports / index MB':>28} {'scan CPU s':>10} "
              f"{'wall s':>7} {'MB/s/core':>9} {'peak RSS MB':>11} {'contaminated':>12}")
        for name, workers in (("S", 1), ("2S", 1), ("2S", args.workers)):
            r = measure(tmp / "store", tmp / name, workers)
            rss = max(r["peak_rss_mb"], r["children_peak_rss_mb"])
            memory = f"{r['base_rss_mb']:.0f} / {r['index_rss_mb']:.0f} (arrays {r['index_mb']:.0f})"
            print(f"{name + f', {workers} proc':14} {r['bytes'] / 1e6:9.0f} {r['index_s']:8.1f} {memory:>28} "
                  f"{r['scan_cpu_s']:10.1f} {r['scan_wall_s']:7.1f} "
                  f"{r['bytes'] / 1e6 / r['scan_cpu_s']:9.1f} {rss:11.0f} {r['contaminated']:12}")
        print("peak RSS of a multi-process run is the largest single process (each holds the index).")


if __name__ == "__main__":
    main()
