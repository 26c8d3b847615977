"""The normalized question record, and the validation every importer goes through.

`answer` is one option letter, except for multi-answer benchmarks (spec `answers == "multi"`:
FrenchMedMCQA, CMExam's multi-answer questions), where it is every correct letter, in option order,
concatenated: "AC". Benchmarks come from medtasks.spec (suite, extra, native and users' own).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from medtasks.common import UsageError
from medtasks.spec import ALL_BENCHMARKS, LANGUAGES

SPLITS = ("test", "train", "validation", "fewshot", "fewshot1", "fewshot2", "fewshot3")
# "fewshot" is a pool sampled by the few-shot seed; "fewshotN" is a fixed set N (BioInstructQA's).
SPLIT_ALIASES = {"dev": "validation"}  # releases' names for our splits


def split_name(name: str) -> str:
    """A release's split name as the store names it ("dev" -> "validation"); unknown names fail."""
    split = SPLIT_ALIASES.get(name, name)
    if split not in SPLITS:
        raise UsageError(f"unknown split {name!r}; valid: {', '.join([*SPLITS, *SPLIT_ALIASES])}")
    return split


class DataError(UsageError, ValueError):
    """Bad input, located: names the file, the line (or row/key) and the field."""

    def __init__(self, source: str, where: str | int | None, field_name: str | None, problem: str):
        self.source, self.where, self.field, self.problem = source, where, field_name, problem
        loc = str(source)
        if where is not None:
            loc += f", line {where}" if isinstance(where, int) else f", {where}"
        if field_name:
            loc += f", field {field_name!r}"
        super().__init__(f"{loc}: {problem}")


@dataclass(frozen=True)
class Exclusion:
    """A question an importer read and did not keep, and why. Importers append these to the
    `excluded` list they are given; `reason` is a fixed phrase (counted per reason in the store
    manifest), `detail` what is specific to the question."""
    id: str
    reason: str
    benchmark: str
    language: str
    split: str
    source: str = ""
    row: int | str | None = None
    detail: str = ""

    @property
    def group(self) -> str:
        """The store group it was left out of: "benchmark/language/split"."""
        return f"{self.benchmark}/{self.language}/{self.split}"


@dataclass
class Record:
    id: str
    benchmark: str
    language: str
    split: str
    question: str
    options: dict[str, str]
    answer: str
    context: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>", where: str | int | None = None) -> "Record":
        missing = [k for k in ("id", "benchmark", "language", "split", "question", "options", "answer") if k not in data]
        if missing:
            raise DataError(source, where, missing[0], "missing")
        extra = set(data) - set(cls.__dataclass_fields__)
        if extra:
            raise DataError(source, where, sorted(extra)[0], "unexpected field")
        record = cls(**data)
        validate(record, source, where)
        return record


def validate(record: Record, source: str, where: str | int | None) -> Record:
    """Raise DataError at the first problem; return the record unchanged when it is sound."""

    def fail(field_name: str, problem: str):
        raise DataError(source, where, field_name, problem)

    if not isinstance(record.id, str) or not record.id.strip():
        fail("id", "empty id")
    if record.benchmark not in ALL_BENCHMARKS:
        fail("benchmark", f"unknown benchmark {record.benchmark!r}; valid: {', '.join(ALL_BENCHMARKS)}")
    if record.language not in LANGUAGES:
        fail("language", f"unknown language {record.language!r}; valid: {', '.join(LANGUAGES)}")
    if record.split not in SPLITS:
        fail("split", f"unknown split {record.split!r}; valid: {', '.join(SPLITS)}")
    if not isinstance(record.question, str) or not record.question.strip():
        fail("question", "empty question")
    bench = ALL_BENCHMARKS[record.benchmark]
    n = len(record.options) if isinstance(record.options, dict) else 0
    if not isinstance(record.options, dict) or not bench.allowed_letters(n) or list(record.options) != list(bench.letters[:n]):
        got = list(record.options) if isinstance(record.options, dict) else type(record.options).__name__
        expected = (f"the first {bench.min_options} to {len(bench.letters)} of {bench.letters}" if bench.min_options
                    else str(list(bench.letters)))
        fail("options", f"expected options {expected}, got {got}")
    for letter, text in record.options.items():
        if not isinstance(text, str) or not text.strip():
            fail(f"options.{letter}", "empty option text")
    if bench.answers == "multi":
        problem = multi_answer_problem(record.answer, record.options)
        if problem:
            fail("answer", problem)
    elif record.answer not in record.options:
        fail("answer", f"answer {record.answer!r} is not one of the options {list(record.options)}")
    if record.context is not None and not isinstance(record.context, str):
        fail("context", "context must be text or null")
    return record


def multi_answer_problem(answer, options: dict[str, str]) -> str | None:
    """Why `answer` is not a multi-answer gold (its correct letters, unique, in letter order,
    concatenated: "AC"), or None when it is one."""
    if not isinstance(answer, str) or not answer:
        return f"expected the correct letters concatenated (e.g. 'AC'), got {answer!r}"
    outside = [letter for letter in answer if letter not in options]
    if outside:
        return f"answer {answer!r}: {outside[0]!r} is not one of the options {list(options)}"
    if len(set(answer)) != len(answer):
        return f"answer {answer!r} repeats a letter"
    order = list(options)
    if sorted(answer, key=order.index) != list(answer):
        return f"answer {answer!r} is not in letter order"
    return None


def join_letters(letters, options: dict[str, str]) -> str:
    """The stored form of a multi-answer gold: the letters in option order, concatenated."""
    order = list(options)
    return "".join(sorted(letters, key=lambda letter: order.index(letter) if letter in order else len(order)))


def subset_reason(benchmark: str, correct: int) -> str | None:
    """Why a question with `correct` right options is not in `benchmark`'s subset (spec `subset`:
    "single" or "multi" questions of a family), naming the benchmark that holds it; None if it is in."""
    bench = ALL_BENCHMARKS[benchmark]
    if not bench.subset or (correct == 1) == (bench.subset == "single"):
        return None
    other = "multi" if bench.subset == "single" else "single"
    home = [b.key for b in ALL_BENCHMARKS.values()
            if b.family == bench.family and b.answers == other and b.subset in ("", other)]
    what = "several correct answers" if other == "multi" else "one correct answer"
    return f"{what} (in {home[0]})" if home else what
