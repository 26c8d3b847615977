"""MedMCQA JSONL (official release): id, question, opa..opd, cop.

The official file numbers the correct option 1-4; the hub copy numbers it 0-3, hence `cop_base`.
Everyone scores the dev split (test labels are not public), so dev is stored as split `test`.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    check_unique,
    checked,
    field,
    iter_jsonl,
    provenance,
    require_rows,
    source_name,
    text_field,
)
from medtasks.spec import SOURCE_LANGUAGE
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS

NAME = "medmcqa"
OPTION_FIELDS = ("opa", "opb", "opc", "opd")
LETTERS = BUILTIN_BENCHMARKS["medmcqa"].letters


def convert_row(row: dict, split: str, prov: dict, cop_base: int = 1) -> Record:
    """One MedMCQA object -> Record (pure); the id is the row's own `id`."""
    source, where = prov["source"], prov["row"]
    row_id = text_field(row, "id", source, where)
    question = text_field(row, "question", source, where)
    options = {letter: text_field(row, key, source, where) for letter, key in zip(LETTERS, OPTION_FIELDS)}
    cop = field(row, "cop", source, where)
    if isinstance(cop, bool) or not isinstance(cop, int) or not cop_base <= cop < cop_base + 4:
        raise DataError(source, where, "cop", f"expected an integer {cop_base}-{cop_base + 3}, got {cop!r}")
    return checked(Record(row_id, "medmcqa", SOURCE_LANGUAGE, split, question, options, LETTERS[cop - cop_base], None, prov))


def read(path, split: str = "test", root=None) -> list[Record]:
    """Read MedMCQA dev.jsonl (cop 1-4) into `split` (default test: dev is what everyone scores)."""
    path = Path(path)
    source, sha = source_name(path, root), sha256_file(path)
    records = [convert_row(row, split, provenance(NAME, source, sha, line_no))
               for line_no, row in iter_jsonl(path, source)]
    check_unique(require_rows(records, source))
    return records
