"""MedQA-USMLE JSONL (jind11 release): question, options {A..}, answer_idx letter.

The 4- and 5-option files hold the same questions line for line, so ids are built from the
1-based line number (`medqa-test-0001`, `medqa5-test-0001`) and a question keeps its number
across the two benchmarks.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    answer_letter,
    check_unique,
    checked,
    field,
    iter_jsonl,
    ordered_options,
    provenance,
    require_rows,
    source_name,
    text_field,
)
from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE, get_benchmark

NAME = "medqa"
_BY_OPTION_COUNT = {len(b.letters): b.key for b in BENCHMARKS.values() if b.family == "medqa"}


def convert_row(row: dict, benchmark: str, split: str, number: int, prov: dict) -> Record:
    """One JSONL object -> Record (pure). `number` is the 1-based line, used in the id."""
    source, where = prov["source"], prov["row"]
    letters = get_benchmark(benchmark).letters
    question = text_field(row, "question", source, where)
    options = ordered_options(field(row, "options", source, where), letters, source, where)
    answer = answer_letter(field(row, "answer_idx", source, where), options, source, where, "answer_idx")
    return checked(Record(f"{benchmark}-{split}-{number:04d}", benchmark, SOURCE_LANGUAGE, split, question, options,
                          answer, None, prov))


def read(path, benchmark: str | None = None, split: str = "test", root=None) -> list[Record]:
    """Read a MedQA JSONL file. `benchmark` defaults from the first row's option count (4 -> medqa,
    5 -> medqa5); `root` is the data folder provenance names the file relative to."""
    path = Path(path)
    source, sha = source_name(path, root), sha256_file(path)
    records = []
    for line_no, row in iter_jsonl(path, source):
        if benchmark is None:
            count = len(field(row, "options", source, line_no) or {})
            if count not in _BY_OPTION_COUNT:
                raise DataError(source, line_no, "options", f"{count} options: no MedQA benchmark has that many")
            benchmark = _BY_OPTION_COUNT[count]
        records.append(convert_row(row, benchmark, split, line_no, provenance(NAME, source, sha, line_no)))
    check_unique(require_rows(records, source))
    return records
