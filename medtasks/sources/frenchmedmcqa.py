"""FrenchMedMCQA (Labrak et al., 2022): French pharmacy-degree exams, 1 to 5 correct options of 5.

One JSON list per split (`train.json`, `dev.json` -> validation, `test.json`) of {id, question,
answers {a..e}, correct_answers [letters], subject_name, nbr_correct_answers[, type]}.

- `frenchmedmcqa`: every question; the answer is its correct letters in option order, concatenated
  ("AC"; medtasks.records). `frenchmedmcqa_single`: the questions with exactly one correct answer;
  the others are Exclusions "several correct answers (in frenchmedmcqa)".
- id: the release's own id (a sha256 hex), the same in both benchmarks.
- a row repeated whole (train.json has one: the same id and content twice) is kept once; the repeat
  is an Exclusion "repeated row". The same id with other content is an error.
- `nbr_correct_answers` must equal the number of `correct_answers`.
- provenance: subject_name, and the release's `type` (simple / multiple) where it has one.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import (
    DataError,
    Exclusion,
    Record,
    join_letters,
    split_name,
    subset_reason,
)
from medtasks.sources.common import (
    check_unique,
    checked,
    field,
    load_json,
    ordered_options,
    provenance,
    source_name,
    text_field,
)
from medtasks.spec import get_benchmark

NAME = "frenchmedmcqa"
LANGUAGE = "fr"
REPEATED = "repeated row"


def _split_of(path: Path, source: str) -> str:
    if path.stem not in ("train", "dev", "test"):
        raise DataError(source, None, None, "cannot tell the split from the file name (expected train.json, "
                        "dev.json or test.json); pass split=")
    return split_name(path.stem)


def correct_letters(row: dict, options: dict[str, str], source: str, where: str) -> str:
    """The row's correct answers as stored: upper-case letters in option order, concatenated."""
    listed = field(row, "correct_answers", source, where)
    if not isinstance(listed, list) or not listed:
        raise DataError(source, where, "correct_answers", f"expected a non-empty list of letters, got {listed!r:.60}")
    letters = [str(letter).upper() for letter in listed]
    for letter in letters:
        if letter not in options:
            raise DataError(source, where, "correct_answers", f"{letter!r} is not one of the options {list(options)}")
    if len(set(letters)) != len(letters):
        raise DataError(source, where, "correct_answers", f"{listed} repeats a letter")
    count = row.get("nbr_correct_answers", len(letters))
    if count != len(letters):
        raise DataError(source, where, "nbr_correct_answers", f"{count!r} but {len(letters)} correct_answers")
    return join_letters(letters, options)


def read(path, benchmark: str = "frenchmedmcqa", split: str | None = None, root=None,
         excluded: list | None = None) -> list[Record]:
    """One FrenchMedMCQA split -> Records of `benchmark` (frenchmedmcqa or frenchmedmcqa_single)."""
    path = Path(path)
    bench = get_benchmark(benchmark)
    if bench.family != NAME:
        raise KeyError(f"{benchmark!r} is not a FrenchMedMCQA benchmark")
    source, sha = source_name(path, root), sha256_file(path)
    split = split_name(split) if split else _split_of(path, source)
    rows = load_json(path, source)
    if not isinstance(rows, list):
        raise DataError(source, None, None, f"expected a JSON list of questions, got {type(rows).__name__}")
    excluded = [] if excluded is None else excluded
    records, seen = [], {}
    for index, row in enumerate(rows, 1):
        where = f"record {index}"
        row_id = text_field(row, "id", source, where)
        if row_id in seen:
            first_index, first_row = seen[row_id]
            if row != first_row:
                raise DataError(source, where, "id", f"id {row_id} also at record {first_index} with other content")
            excluded.append(Exclusion(row_id, REPEATED, benchmark, LANGUAGE, split, source, index,
                                      f"same as record {first_index}"))
            continue
        seen[row_id] = index, row
        question = text_field(row, "question", source, where)
        answers = field(row, "answers", source, where)
        if not isinstance(answers, dict):
            raise DataError(source, where, "answers", f"expected {{letter: text}}, got {type(answers).__name__}")
        options = ordered_options({str(k).upper(): v for k, v in answers.items()}, bench.letters, source, where,
                                  "answers")
        for letter, text in options.items():
            if not isinstance(text, str) or not text.strip():
                raise DataError(source, where, f"answers.{letter.lower()}", "empty option text")
        answer = correct_letters(row, options, source, where)
        reason = subset_reason(benchmark, len(answer))
        if reason:
            excluded.append(Exclusion(row_id, reason, benchmark, LANGUAGE, split, source, index, f"answer {answer}"))
            continue
        extra = {"subject_name": text_field(row, "subject_name", source, where)}
        if "type" in row:
            extra["type"] = row["type"]
        records.append(checked(Record(row_id, benchmark, LANGUAGE, split, question, options, answer, None,
                                      provenance(NAME, source, sha, index, **extra)), where))
    check_unique(records)
    return records
