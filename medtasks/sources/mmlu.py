"""MMLU CSV: question, four choices, answer. Two shapes exist and both are read by sniffing:
the final English release (header `question,choice0..choice3,answer`, answer 0-3) and the
third-party French/Spanish machine translation (no header, answer A-D).

A translated file is aligned 1:1 with the English one: it takes the English ids, and a row count
or answer that differs from English is an error (the rows would be misaligned).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    check_unique,
    checked,
    provenance,
    require_rows,
    source_name,
    utf8_only,
)
from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS

NAME = "mmlu"
LETTERS = BUILTIN_BENCHMARKS["mmlu_anatomy"].letters  # every MMLU subject has four options
COLUMNS = 6  # question, A, B, C, D, answer
_SUBJECT = re.compile(r"(?:^|_)(%s)_(test|dev)\.csv$" % "|".join(
    sorted((b.mmlu_subject for b in BENCHMARKS.values() if b.family == "mmlu"), key=len, reverse=True)))
SPLITS = {"test": "test", "dev": "fewshot"}  # file suffix -> store split
PRETRANSLATED = "third-party machine translation (system unknown)"


def is_header(cells: list[str]) -> bool:
    return bool(cells) and cells[0].strip().lower() == "question" and cells[-1].strip().lower() == "answer"


def parse_answer(value: str, source: str, where: int) -> str:
    """'0'-'3' (English release) or 'A'-'D' (translations) -> letter."""
    value = value.strip()
    if value in ("0", "1", "2", "3"):
        return LETTERS[int(value)]
    if value.upper() in LETTERS and len(value) == 1:
        return value.upper()
    raise DataError(source, where, "answer", f"expected 0-3 or A-D, got {value!r}")


def convert_row(cells: list[str], benchmark: str, language: str, split: str, record_id: str,
                prov: dict) -> Record:
    """One CSV row -> Record (pure)."""
    source, where = prov["source"], prov["row"]
    if len(cells) != COLUMNS:
        raise DataError(source, where, "columns",
                        f"expected {COLUMNS} columns (question, 4 choices, answer), got {len(cells)}")
    options = dict(zip(LETTERS, cells[1:5]))
    return checked(Record(record_id, benchmark, language, split, cells[0], options,
                          parse_answer(cells[5], source, where), None, prov), where)


def file_key(path: Path) -> tuple[str, str]:
    """(benchmark, original split) from names like anatomy_test.csv or mmlu_French_test_anatomy_test.csv."""
    match = _SUBJECT.search(Path(path).name)
    if not match:
        subjects = sorted(b.mmlu_subject for b in BENCHMARKS.values() if b.family == "mmlu")
        raise DataError(Path(path).name, None, None, f"no MMLU medical subject in the name; valid: {subjects}")
    return f"mmlu_{match.group(1)}", match.group(2)


def read_rows(path: Path, source: str) -> list[tuple[int, list[str]]]:
    """(first line of the row, cells) for each data row; the header, when present, is skipped."""
    rows, header = [], False
    with utf8_only(path, source), open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        line = 1
        try:
            for cells in reader:
                if line == 1 and is_header(cells):
                    header = True
                elif cells:
                    rows.append((line, cells))
                line = reader.line_num + 1
        except csv.Error as err:
            raise DataError(source, reader.line_num, None, f"bad CSV: {err}") from None
    return require_rows(rows, source, "no questions: the file holds only a header" if header
                        else "no questions: the file is empty")


def read(path, benchmark: str | None = None, language: str = SOURCE_LANGUAGE, split: str | None = None,
         english: list[Record] | None = None, root=None) -> list[Record]:
    """Read one MMLU CSV. Benchmark and split default from the file name (`_dev` -> fewshot).
    For another language pass `english` (the English records of the same file): ids are copied
    from them and provenance kind is "pretranslated"."""
    path = Path(path)
    source, sha = source_name(path, root), sha256_file(path)
    name_benchmark, original_split = file_key(path)
    benchmark, split = benchmark or name_benchmark, split or SPLITS[original_split]
    rows = read_rows(path, source)
    if language != SOURCE_LANGUAGE and english is None:
        raise ValueError(f"{source}: a {language} MMLU file needs the English records to align ids with")
    if english is not None and len(english) != len(rows):
        raise DataError(source, rows[-1][0] if rows else None, "rows",
                        f"{len(rows)} rows but the English file has {len(english)}: rows must align 1:1")
    records = []
    for index, (line, cells) in enumerate(rows):
        if english is None:
            prov = provenance(NAME, source, sha, line)
            record_id = f"{benchmark}-{original_split}-{index + 1:04d}"
        else:
            twin = english[index]
            prov = provenance(NAME, source, sha, line, kind="pretranslated", translation=PRETRANSLATED,
                              aligned_to=twin.provenance.get("source"))
            record_id = twin.id
        record = convert_row(cells, benchmark, language, split, record_id, prov)
        if english is not None and record.answer != english[index].answer:
            raise DataError(source, line, "answer", f"answer {record.answer} but the English row "
                            f"{english[index].id} says {english[index].answer}: rows misaligned")
        records.append(record)
    check_unique(records)
    return records
