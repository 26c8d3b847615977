"""TruthfulQA (original CSV release, or the hub's `generation` config) -> `truthfulqa_med` records.

Only the medical categories are kept (default Health, Nutrition, Psychology; configurable). Each
question becomes a multiple-choice item: the CSV's Best Answer among its Incorrect Answers.

Option order (deterministic, documented, recorded): the candidates are numbered 0 = best answer,
1..k = the incorrect answers in CSV order; candidate i gets the key
sha256(f"{seed}|{record id}|{i}") (hex) and the options are sorted by that key. It depends on
nothing but the seed, the id and the position: the same on every run, machine and Python version
(Python's `hash()` and `random` are not used). The record's provenance stores the seed and the
permutation (`option_order.positions[j]` = candidate shown at letter j).

Ids are `truthfulqa-0001` ... by position among ALL rows of the release (817), so they do not
change with the category selection and the hub copy (same rows, same order) gives the same ids.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Iterable

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    check_unique,
    checked,
    log,
    provenance,
    require_rows,
    source_name,
    utf8_only,
)
from medtasks.spec import EXTRA_BENCHMARKS, SOURCE_LANGUAGE

NAME = "truthfulqa"
BENCHMARK = "truthfulqa_med"
DEFAULT_CATEGORIES = ("Health", "Nutrition", "Psychology")
CATEGORIES_ENV = "MEDTASKS_TRUTHFULQA_CATEGORIES"  # comma-separated; overrides the default
ORDER_SEED = 0
MAX_OPTIONS = len(EXTRA_BENCHMARKS[BENCHMARK].letters)  # 13: the release's largest row fits whole
HEADER = ("Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source")
SEPARATOR = ";"  # answers are "; "-separated; some rows end with a stray ";"


def default_categories() -> tuple[str, ...]:
    value = os.environ.get(CATEGORIES_ENV, "").strip()
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else DEFAULT_CATEGORIES


def option_keys(seed: int, record_id: str, count: int) -> list[str]:
    return [hashlib.sha256(f"{seed}|{record_id}|{i}".encode()).hexdigest() for i in range(count)]


def option_order(seed: int, record_id: str, count: int) -> list[int]:
    """The candidate positions in display order (pure): letter j shows candidate order[j]."""
    keys = option_keys(seed, record_id, count)
    return sorted(range(count), key=lambda i: keys[i])


def split_answers(value: str) -> list[str]:
    """'a; b; c;' -> ['a', 'b', 'c']; an empty piece inside the list is left in for the caller to reject."""
    pieces = [p.strip() for p in value.split(SEPARATOR)]
    while pieces and not pieces[-1]:
        pieces.pop()  # trailing separator
    return pieces


def convert_row(row: dict, record_id: str, prov: dict, seed: int = ORDER_SEED) -> Record:
    """One row {question, best_answer, incorrect_answers: [..], category, type} -> Record (pure).

    Bad rows raise DataError at prov's source and row: an empty question or best answer, no or an
    empty incorrect answer, or the best answer listed as incorrect. Repeated incorrect answers are
    kept once and counted in provenance (`duplicates_dropped`); beyond MAX_OPTIONS - 1 incorrect
    answers the first ones in CSV order are kept and the rest counted (`incorrect_dropped`)."""
    source, where = prov["source"], prov["row"]
    question, best = (row.get("question") or "").strip(), (row.get("best_answer") or "").strip()
    if not question:
        raise DataError(source, where, "Question", "empty question")
    if not best:
        raise DataError(source, where, "Best Answer", "empty best answer")
    incorrect = row.get("incorrect_answers") or []
    if not incorrect:
        raise DataError(source, where, "Incorrect Answers", "no incorrect answer: a multiple-choice item needs two options")
    seen, unique = {best.casefold()}, []
    for position, text in enumerate(incorrect, 1):
        text = (text or "").strip()
        if not text:
            raise DataError(source, where, "Incorrect Answers", f"incorrect answer {position} is empty")
        if text.casefold() == best.casefold():
            raise DataError(source, where, "Incorrect Answers", f"the best answer {best!r} is also listed as incorrect")
        if text.casefold() not in seen:
            seen.add(text.casefold())
            unique.append(text)
    extra = {}
    if len(unique) < len(incorrect):
        extra["duplicates_dropped"] = len(incorrect) - len(unique)
    if len(unique) > MAX_OPTIONS - 1:
        extra["incorrect_dropped"] = len(unique) - (MAX_OPTIONS - 1)
        unique = unique[: MAX_OPTIONS - 1]
    candidates = [best, *unique]
    order = option_order(seed, record_id, len(candidates))
    letters = EXTRA_BENCHMARKS[BENCHMARK].letters
    options = {letters[j]: candidates[i] for j, i in enumerate(order)}
    answer = letters[order.index(0)]
    prov = {**prov, "category": row.get("category"), "type": row.get("type"), **extra,
            "option_order": {"method": "sha256(seed|id|position)", "seed": seed, "positions": order}}
    return checked(Record(record_id, BENCHMARK, SOURCE_LANGUAGE, "test", question, options, answer, None, prov), where)


def record_id(index: int) -> str:
    return f"truthfulqa-{index:04d}"


def select(rows: Iterable[tuple[int, int | str, dict]], categories: Iterable[str], source: str, sha: str,
           seed: int, importer: str = NAME) -> list[Record]:
    """(1-based row index, line or row label, normalized row) -> the records of the chosen categories."""
    wanted = tuple(categories)
    if not wanted:
        raise ValueError("no TruthfulQA category selected")
    records, found = [], set()
    for index, where, row in rows:
        category = (row.get("category") or "").strip()
        if not category:
            raise DataError(source, where, "Category", "empty category")
        found.add(category)
        if category in wanted:
            prov = provenance(importer, source, sha, where)
            records.append(convert_row(row, record_id(index), prov, seed))
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise DataError(source, None, "Category", f"no TruthfulQA category {', '.join(map(repr, unknown))}; "
                        f"valid: {', '.join(sorted(found))}")
    check_unique(records)
    log.info("%s: %d questions in categories %s", source, len(records), ", ".join(wanted))
    return records


def read_rows(path: Path, source: str) -> list[tuple[int, int, dict]]:
    """(row index, first line of the row, normalized row) for each data row of the CSV."""
    rows = []
    with utf8_only(path, source), open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(source, None, None, "no questions: the file is empty")
            if tuple(h.strip() for h in header) != HEADER:
                raise DataError(source, 1, None, f"expected the header {','.join(HEADER)}, got {header}")
            line = reader.line_num + 1
            for cells in reader:
                if cells:
                    if len(cells) != len(HEADER):
                        raise DataError(source, line, "columns", f"expected {len(HEADER)} columns, got {len(cells)}")
                    cell = dict(zip(HEADER, cells))
                    rows.append((len(rows) + 1, line, {
                        "type": cell["Type"].strip(), "category": cell["Category"], "question": cell["Question"],
                        "best_answer": cell["Best Answer"],
                        "incorrect_answers": split_answers(cell["Incorrect Answers"])}))
                line = reader.line_num + 1
        except csv.Error as err:
            raise DataError(source, reader.line_num, None, f"bad CSV: {err}") from None
    return require_rows(rows, source, "no questions: the file holds only a header")


def read(path, categories: Iterable[str] | None = None, seed: int = ORDER_SEED, root=None) -> list[Record]:
    """Read TruthfulQA.csv; `categories` default: $MEDTASKS_TRUTHFULQA_CATEGORIES, else DEFAULT_CATEGORIES."""
    path = Path(path)
    source = source_name(path, root)
    chosen = tuple(categories) if categories is not None else default_categories()
    return select(read_rows(path, source), chosen, source, sha256_file(path), seed)
