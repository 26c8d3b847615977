"""The common layout of users' spec files (medtasks/spec/user.py): one question per JSONL line, per
CSV row (first line: the header) or per element of a JSON list, read through the spec's field mapping.

    data:
      format: csv                        # jsonl | csv | json
      test: exam/test.csv                # relative to the spec file
      fields: {question: q, options: [a, b, c, d], answer: gold, context: passage, id: qid, category: topic}
      answer_format: letter              # letter | index0 | index1 | text

- question: the field with the question text. context, id, category: optional; the id defaults to
  `<benchmark>-<split>-<row>` (row = line, or element of a JSON list), the category goes to provenance.
- options: a list of fields, one per option in letter order (empty trailing ones are dropped where the
  benchmark allows fewer options: `min_options`), or one field holding a list of texts or a
  {letter: text} mapping (in a CSV cell, as JSON).
- answer: the correct option as a letter (A or a), a 0- or 1-based index, or the option's exact text.
  Multi-answer benchmarks (`answers: multi`): a list of those, or for letters and indices one string
  "A,C", "A C", "AC" or "0,2" (text answers must be a list: option texts may hold commas).

Every problem is a DataError naming the file (as the spec file names it), the line or element, and the
field. Provenance: importer "table", the file, its sha256, the row, the spec file, the category.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterator

from medtasks.common import UsageError, sha256_file
from medtasks.records import DataError, Record, join_letters, split_name
from medtasks.sources.common import (
    check_unique,
    checked,
    iter_jsonl,
    load_json,
    provenance,
    utf8_only,
)
from medtasks.spec import DataSource, get_benchmark

NAME = "table"
STORE_TO_SPEC_SPLIT = {"validation": "dev"}  # the spec files' split names


def _rows(path: Path, fmt: str, source: str) -> Iterator[tuple[int | str, dict]]:
    """(line or "record N", row) for each question of the file."""
    if fmt == "jsonl":
        yield from iter_jsonl(path, source)
    elif fmt == "json":
        rows = load_json(path, source)
        if not isinstance(rows, list):
            raise DataError(source, None, None, f"expected a JSON list of objects, got {type(rows).__name__}")
        for index, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise DataError(source, f"record {index}", None, f"expected an object, got {type(row).__name__}")
            yield f"record {index}", row
    else:
        with utf8_only(path, source), open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise DataError(source, 1, None, "expected a header line naming the columns")
            line = reader.line_num + 1
            for cells in reader:
                if cells:  # a blank line
                    if len(cells) != len(header):
                        raise DataError(source, line, "columns", f"expected {len(header)} columns as in the "
                                        f"header, got {len(cells)}")
                    yield line, dict(zip(header, cells))
                line = reader.line_num + 1


def _value(row: dict, name: str, role: str, source: str, where) -> Any:
    if name not in row:
        raise DataError(source, where, name, f"missing (the spec's fields.{role})")
    return row[name]


def _text(value: Any) -> str | None:
    """Option or question text: strings, and numbers written as text; None for anything else or empty."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value)
    return text if text.strip() else None


def _maybe_json(value: Any, fmt: str) -> Any:
    """A CSV cell holding a list or mapping as JSON."""
    if fmt == "csv" and isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _options(row: dict, mapping: Any, bench, fmt: str, source: str, where) -> dict[str, str]:
    letters = bench.letters
    if isinstance(mapping, list):
        values = [(name, _value(row, name, "options", source, where)) for name in mapping]
        while bench.min_options and len(values) > bench.min_options and _text(values[-1][1]) is None:
            values.pop()  # a question with fewer options than columns, where the benchmark allows it
        texts = []
        for name, value in values:
            if _text(value) is None:
                raise DataError(source, where, name, f"empty option text ({value!r:.40})")
            texts.append(str(value))
        return dict(zip(letters, texts))
    value = _maybe_json(_value(row, mapping, "options", source, where), fmt)
    if isinstance(value, list):
        for i, text in enumerate(value):
            if _text(text) is None:
                raise DataError(source, where, f"{mapping}[{i}]", f"empty option text ({text!r:.40})")
        if len(value) > len(letters):
            raise DataError(source, where, mapping, f"{len(value)} options; this benchmark has at most {len(letters)}")
        return dict(zip(letters, map(str, value)))
    if isinstance(value, dict):
        options = {str(key).strip().upper(): text for key, text in value.items()}
        expected = list(letters[: len(options)])
        if sorted(options) != expected:
            raise DataError(source, where, mapping, f"expected the letters {expected}, got {list(value)}")
        for letter in expected:
            if _text(options[letter]) is None:
                raise DataError(source, where, f"{mapping}.{letter}", "empty option text")
        return {letter: str(options[letter]) for letter in expected}
    raise DataError(source, where, mapping, f"expected a list of option texts or {{letter: text}}, got {value!r:.60}")


def _answer_items(value: Any, answer_format: str, multi: bool) -> list:
    """The answer value split into one item per correct option."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and answer_format != "text":
        items = [item for item in re.split(r"[\s,;]+", value.strip()) if item]
        if multi and answer_format == "letter" and len(items) == 1 and items[0].isalpha():
            return list(items[0])  # "AC"
        return items
    return [value]


def _letter(item: Any, options: dict[str, str], answer_format: str) -> str | None:
    letters = list(options)
    if answer_format == "letter":
        letter = item.strip().upper() if isinstance(item, str) else None
        return letter if letter in options else None
    if answer_format in ("index0", "index1"):
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            return None
        index = item - (answer_format == "index1")
        return letters[index] if 0 <= index < len(letters) else None
    matches = [letter for letter, text in options.items() if isinstance(item, str) and text.strip() == item.strip()]
    return matches[0] if len(matches) == 1 else None


def _answer(value: Any, options: dict[str, str], answer_format: str, multi: bool, name: str, source: str,
            where) -> str:
    value = _maybe_json(value, "csv") if isinstance(value, str) and value.strip().startswith("[") else value
    items = _answer_items(value, answer_format, multi)
    if not items:
        raise DataError(source, where, name, "empty answer")
    if len(items) > 1 and not multi:
        raise DataError(source, where, name, f"{len(items)} answers ({value!r:.60}) for a single-answer benchmark")
    letters = []
    for item in items:
        letter = _letter(item, options, answer_format)
        if letter is None:
            if answer_format == "text":
                count = sum(isinstance(item, str) and t.strip() == item.strip() for t in options.values())
                why = "is the text of several options" if count else "is not the text of any option"
            else:
                why = f"is not a{'n' if answer_format != 'letter' else ''} {answer_format} of the options " \
                      f"{list(options)}"
            raise DataError(source, where, name, f"{item!r:.60} {why} (answer_format {answer_format})")
        if letter in letters:
            raise DataError(source, where, name, f"{value!r:.60} names option {letter} twice")
        letters.append(letter)
    return join_letters(letters, options)


def read(source: DataSource, benchmark: str, language: str, split: str) -> list[Record]:
    """The questions of `benchmark` in `language` and `split` ("test", "train", "dev"/"validation")
    from the user's file, as validated Records."""
    bench = get_benchmark(benchmark)
    if source.importer:
        raise UsageError(f"spec file {source.spec_file}: {benchmark} is read by importer {source.importer!r}, "
                         "not the common layout")
    spec_split = STORE_TO_SPEC_SPLIT.get(split, split)
    path = source.files.get((language, spec_split))
    if path is None:
        have = ", ".join(f"{lang}/{s}" for lang, s in source.files) or "none"
        raise UsageError(f"spec file {source.spec_file}: {benchmark} has no {spec_split} file in {language} "
                         f"(files: {have})")
    path = Path(path)
    try:
        name = path.resolve().relative_to(Path(source.spec_file).resolve().parent).as_posix()
    except ValueError:
        name = str(path)
    fields, answer_format, multi = source.fields, source.answer_format, bench.answers == "multi"
    store_split, sha = split_name(spec_split), sha256_file(path)
    kind = "import" if language in bench.native_languages else "pretranslated"
    records = []
    for where, row in _rows(path, source.format, name):
        question = _text(_value(row, fields["question"], "question", name, where))
        if question is None:
            raise DataError(name, where, fields["question"], "empty question")
        options = _options(row, fields["options"], bench, source.format, name, where)
        answer = _answer(_value(row, fields["answer"], "answer", name, where), options, answer_format, multi,
                         fields["answer"], name, where)
        context = _text(_value(row, fields["context"], "context", name, where)) if "context" in fields else None
        number = where if isinstance(where, int) else int(where.split()[-1])
        if "id" in fields:
            record_id = _text(_value(row, fields["id"], "id", name, where))
            if record_id is None:
                raise DataError(name, where, fields["id"], "empty id")
        else:
            record_id = f"{benchmark}-{store_split}-{number:04d}"
        extra = {"spec": Path(source.spec_file).name}
        if "category" in fields:
            extra["category"] = _value(row, fields["category"], "category", name, where)
        prov = provenance(NAME, name, sha, where, kind, **extra)
        records.append(checked(Record(record_id.strip(), benchmark, language, store_split, str(question), options,
                                      answer, context, prov), where))
    check_unique(records)
    return records
