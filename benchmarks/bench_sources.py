"""Importer speed and memory, printed side by side.

    .venv/bin/python benchmarks/bench_sources.py [--data ../shared/data] [--records 20000]

1. The whole MEDTASKS_DATA folder into a fresh store, then again (idempotent re-import).
2. One large BioInstructQA-style member (records with their three few-shot sets), parsed by
   the streaming reader vs `json.load` of the whole member: time and peak Python memory.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medtasks.sources import import_folder  # noqa: E402
from medtasks.sources.common import iter_json_array  # noqa: E402


def synthetic_member(count: int) -> bytes:
    """A JSON list shaped like base/overall_test+prompt.json (sizes chosen to resemble MedQA)."""
    shot = {"context": None, "question": "A 45-year-old man presents with chest pain. " * 6,
            "options": {l: f"Option {l} text" for l in "ABCD"}, "correct_answer_letter": "B"}
    rows = [{"identifier": f"id{i}", "corpus_name": "MedQA", "task_type": "mcqa", "classes": list("ABCD"),
             "question": f"Question {i}: " + "A patient presents with a finding. " * 12,
             "options": {l: f"Option {l} of {i}" for l in "ABCD"}, "correct_answer_letter": "A", "context": None,
             **{f"few_shot_samples[{n}]": [shot] * 3 for n in (1, 2, 3)}} for i in range(count)]
    return json.dumps(rows).encode()


def measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--records", type=int, default=20000, help="records in the synthetic member")
    args = parser.parse_args()

    if (args.data / "medqa").is_dir():
        with tempfile.TemporaryDirectory() as store:
            start = time.perf_counter()
            counts = import_folder(args.data, store)
            first = time.perf_counter() - start
            start = time.perf_counter()
            import_folder(args.data, store)
            again = time.perf_counter() - start
        total = sum(counts.values())
        print(f"folder import: {total} records in {len(counts)} splits: {first:.2f} s "
              f"({total / first:,.0f} records/s); re-import {again:.2f} s")
    else:
        print(f"folder import: skipped, no data at {args.data}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("base/overall_test+prompt.json", synthetic_member(args.records))
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo("base/overall_test+prompt.json").file_size / 2**20

            def streamed():
                with archive.open("base/overall_test+prompt.json") as raw:
                    return sum(1 for _ in iter_json_array(io.TextIOWrapper(raw, encoding="utf-8"), "m"))

            def whole():
                with archive.open("base/overall_test+prompt.json") as raw:
                    return len(json.load(raw))

            n1, t1, m1 = measure(streamed)
            n2, t2, m2 = measure(whole)
    assert n1 == n2 == args.records
    print(f"member of {args.records} records, {size:.0f} MiB of JSON:")
    print(f"  streamed : {t1:6.2f} s, peak {m1:7.1f} MiB")
    print(f"  json.load: {t2:6.2f} s, peak {m2:7.1f} MiB")
    print(f"  ratio    : time x{t1 / t2:.2f}, peak memory x{m1 / m2:.3f} (streamed / whole)")


if __name__ == "__main__":
    main()
