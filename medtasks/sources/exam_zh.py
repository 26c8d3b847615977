"""Chinese licensing exams in the JSONL layout of the aistairc/medLLM_QA_benchmark release: MedQA
Mainland (`medqa_zh_4op.jsonl` 4 options, `medqa_zh.jsonl` 5 options: the same 3426 questions) and
CMExam (`cmexam.jsonl`: 4 or 5 options, one or several correct).

Each line: {problem_id (int), problem_text, choices [texts], answer [lower-case letters], points,
text_only}.

- benchmarks: `medqa_mainland` (4 options), `medqa5_mainland` (5), `cmexam` (single-answer
  questions), `cmexam_multi` (the others; answer = the correct letters concatenated, "AC").
  A question outside the benchmark's subset is an Exclusion naming the benchmark that has it; a
  single-answer benchmark without subsets (MedQA Mainland) refuses a row with several answers.
- id `<family>-test-<problem_id>` (medqa_mainland-test-0042, cmexam-test-0042): the 4- and 5-option
  versions of a MedQA Mainland question share it, and so do the CMExam subsets.
- `text_only: false` (the question needs a figure) is an Exclusion "needs an image" (none in the
  release).
- a correct letter that the row has no choice for (CMExam line 5332: 4 choices, answer b, c, e: the
  release lost an option) makes the question unscorable: Exclusion "answer names an option the row
  lacks". A letter outside the benchmark's letters is an error.
- a few rows repeat an option text (MedQA Mainland 4 and 7 rows, CMExam 4); they are kept as released,
  the repeated letters recorded in provenance `repeated_options` and counted in the log.
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
    iter_jsonl,
    log,
    provenance,
    source_name,
    text_field,
)
from medtasks.spec import get_benchmark

FAMILIES = ("medqa_mainland", "cmexam")
LANGUAGE = "zh"
NEEDS_IMAGE = "needs an image"
MISSING_OPTION = "answer names an option the row lacks"


def _choices(row: dict, letters: str, source: str, where: int) -> dict[str, str]:
    choices = field(row, "choices", source, where)
    if not isinstance(choices, list) or not 2 <= len(choices) <= len(letters):
        raise DataError(source, where, "choices", f"expected a list of 2 to {len(letters)} option texts")
    for i, text in enumerate(choices):
        if not isinstance(text, str) or not text.strip():
            raise DataError(source, where, f"choices[{i}]", "empty option text")
    return dict(zip(letters, choices))


def _answer(row: dict, letters: str, source: str, where: int) -> list[str]:
    """The row's correct letters, upper-case; each must be one of the benchmark's letters, once."""
    listed = field(row, "answer", source, where)
    if not isinstance(listed, list) or not listed or not all(isinstance(a, str) for a in listed):
        raise DataError(source, where, "answer", f"expected a non-empty list of letters, got {listed!r:.60}")
    answer = [a.strip().upper() for a in listed]
    for letter in answer:
        if letter not in letters:
            raise DataError(source, where, "answer", f"{letter.lower()!r} is not an option letter ({letters.lower()})")
    if len(set(answer)) != len(answer):
        raise DataError(source, where, "answer", f"{listed} repeats a letter")
    return answer


def _repeated(options: dict[str, str]) -> list[str]:
    first: dict[str, str] = {}
    return [letter for letter, text in options.items() if first.setdefault(text.strip(), letter) != letter]


def read(path, benchmark: str, split: str = "test", root=None, excluded: list | None = None) -> list[Record]:
    """One JSONL file -> Records of `benchmark` (medqa_mainland, medqa5_mainland, cmexam, cmexam_multi)."""
    path = Path(path)
    bench = get_benchmark(benchmark)
    if bench.family not in FAMILIES:
        raise KeyError(f"{benchmark!r} is not read by exam_zh (families {', '.join(FAMILIES)})")
    source, sha, split = source_name(path, root), sha256_file(path), split_name(split)
    excluded = [] if excluded is None else excluded
    records, seen, repeats = [], {}, 0
    for line_no, row in iter_jsonl(path, source):
        number = field(row, "problem_id", source, line_no)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise DataError(source, line_no, "problem_id", f"expected a non-negative integer, got {number!r:.60}")
        if number in seen:
            raise DataError(source, line_no, "problem_id", f"problem_id {number} also on line {seen[number]}")
        seen[number] = line_no
        record_id = f"{bench.family}-{split}-{number:04d}"
        text_only = row.get("text_only", True)
        if text_only is not True:
            if text_only is not False:
                raise DataError(source, line_no, "text_only", f"expected true or false, got {text_only!r:.60}")
            excluded.append(Exclusion(record_id, NEEDS_IMAGE, benchmark, LANGUAGE, split, source, line_no))
            continue
        question = text_field(row, "problem_text", source, line_no)
        options = _choices(row, bench.letters, source, line_no)
        correct = _answer(row, bench.letters, source, line_no)
        reason = subset_reason(benchmark, len(correct))
        if not reason and not set(correct) <= set(options):
            reason = MISSING_OPTION
        if reason:
            excluded.append(Exclusion(record_id, reason, benchmark, LANGUAGE, split, source, line_no,
                                      f"answer {''.join(correct)} of {len(options)} options"))
            continue
        answer = join_letters(correct, options)
        if bench.answers == "single" and len(answer) > 1:
            raise DataError(source, line_no, "answer", f"{len(answer)} correct answers in single-answer {benchmark}")
        extra = {"points": row["points"]} if "points" in row else {}
        repeated = _repeated(options)
        if repeated:
            extra["repeated_options"] = repeated
            repeats += 1
        records.append(checked(Record(record_id, benchmark, LANGUAGE, split, question, options, answer, None,
                                      provenance(bench.family, source, sha, line_no, **extra)), line_no))
    if repeats:
        log.warning("%s: %d %s questions repeat an option text (kept as released; provenance "
                    "repeated_options)", source, repeats, benchmark)
    check_unique(records)
    return records
