"""Spec files: users add benchmarks and languages without editing the package.

`MEDEVAL_SPEC_PATH` lists spec files or folders of `*.yaml` spec files (separated like PATH).
A spec file (documented in medtasks/spec/README.md):

    languages:
      - {code: hi, name: Hindi, script: "[\\u0900-\\u097F]"}
    benchmarks:
      - key: my_exam
        title: My medical exam
        languages: [hi]
        letters: ABCD
        regime: zero_shot
        data:
          format: jsonl                 # jsonl | csv | json (a list of objects)
          test: exam/test.jsonl         # relative to the spec file; or {hi: ..., en: ...} per language
          fields: {question: q, options: [a, b, c, d], answer: gold}
          answer_format: letter         # letter | index0 | index1 | text

Every problem is a SpecError naming the file and the field.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtasks.common import UsageError
from medtasks.spec.benchmarks import Benchmark
from medtasks.spec.languages import Language
from medtasks.spec.regimes import REGIMES

SPEC_PATH_ENV = "MEDEVAL_SPEC_PATH"
FORMATS = ("jsonl", "csv", "json")
ANSWER_FORMATS = ("letter", "index0", "index1", "text")
SPLITS = ("test", "train", "dev")
GROUPS = {"native": "native", "none": "extra"}  # spec `group:` -> Benchmark.kind
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]")
CODE_PATTERN = re.compile(r"[a-z]{2,3}(-[a-z0-9]+)*")
LETTERS = "ABCDEFGHIJKLM"


class SpecError(UsageError):
    """A spec file that cannot be used: names the file, the entry and the field."""

    def __init__(self, path: Path, where: str, problem: str):
        super().__init__(f"spec file {path}, {where}: {problem}")


@dataclass(frozen=True)
class DataSource:
    """Where a user benchmark's questions are, and how to read them."""
    spec_file: Path
    files: dict[tuple[str, str], Path]  # (language, split) -> file
    format: str = "jsonl"  # or "csv", "json"; ignored when `importer` is set
    fields: dict[str, Any] = field(default_factory=dict)  # question, options, answer[, context, id, category]
    answer_format: str = "letter"
    importer: str = ""  # one of medtasks.sources.IMPORTERS instead of the common layout


def spec_files(value: str | None = None) -> list[Path]:
    """The spec files named by $MEDEVAL_SPEC_PATH (folders contribute their *.yaml, sorted)."""
    value = os.environ.get(SPEC_PATH_ENV, "") if value is None else value
    files: list[Path] = []
    for entry in filter(None, value.split(os.pathsep)):
        path = Path(entry).expanduser()
        if path.is_dir():
            files += sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{SPEC_PATH_ENV} names {path}, which does not exist")
    return files


def read_spec_file(path: Path) -> tuple[list[Language], list[Benchmark]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SpecError(path, "file", f"cannot be read as YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict) or set(data) - {"languages", "benchmarks"}:
        raise SpecError(path, "top level", "expected a mapping with `languages` and/or `benchmarks`")
    languages = [_language(path, i, entry) for i, entry in enumerate(_list(path, data, "languages"))]
    benchmarks = [_benchmark(path, i, entry) for i, entry in enumerate(_list(path, data, "benchmarks"))]
    return languages, benchmarks


def _list(path: Path, data: dict, name: str) -> list[dict]:
    entries = data.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SpecError(path, name, "expected a list of mappings")
    return entries


def _take(path: Path, where: str, entry: dict, allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SpecError(path, where, f"unknown field {unknown[0]!r}; valid: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(entry))
    if missing:
        raise SpecError(path, where, f"missing field {missing[0]!r}")


def _language(path: Path, index: int, entry: dict) -> Language:
    where = f"languages[{index}]"
    optional = {"google_code", "mymemory_code", "microsoft_code", "nllb_code", "bleu_tokenize", "spaced",
                "legacy_encodings"}
    _take(path, where, entry, {"code", "name", "script"} | optional, {"code", "name", "script"})
    code = str(entry["code"])
    if not CODE_PATTERN.fullmatch(code):
        raise SpecError(path, f"{where}.code", f"{code!r} is not a language code like 'hi' or 'pt-br'")
    try:
        re.compile(str(entry["script"]))
    except re.error as err:
        raise SpecError(path, f"{where}.script", f"not a regular expression ({err})") from None
    return Language(code=code, name=str(entry["name"]), script=str(entry["script"]),
                    google_code=str(entry.get("google_code", code)),
                    mymemory_code=str(entry.get("mymemory_code", code)),
                    microsoft_code=str(entry.get("microsoft_code", code)), nllb_code=str(entry.get("nllb_code", "")),
                    bleu_tokenize=str(entry.get("bleu_tokenize", "13a")), spaced=bool(entry.get("spaced", True)),
                    legacy_encodings=tuple(map(str, entry.get("legacy_encodings", ()))), builtin=False)


def _benchmark(path: Path, index: int, entry: dict) -> Benchmark:
    where = f"benchmarks[{index}]"
    allowed = {"key", "title", "short", "languages", "native_languages", "letters", "min_options", "answers",
               "regime", "fewshot_from", "group", "data", "dataset"}
    _take(path, where, entry, allowed, {"key", "title", "languages", "letters", "data"})
    key = str(entry["key"])
    where = f"benchmark {key!r}"
    if not KEY_PATTERN.fullmatch(key):
        raise SpecError(path, f"{where}.key", "lowercase letters, digits and '_' only, starting with a letter")
    languages = entry["languages"]
    if isinstance(languages, str):
        languages = [languages]
    if not isinstance(languages, list) or not languages:
        raise SpecError(path, f"{where}.languages", "expected a list of language codes")
    letters = str(entry["letters"])
    if not 2 <= len(letters) <= len(LETTERS) or letters != LETTERS[: len(letters)]:
        raise SpecError(path, f"{where}.letters",
                        f"expected the first 2 to {len(LETTERS)} of {LETTERS}, got {letters!r}")
    regime = str(entry.get("regime", "zero_shot"))
    if regime not in REGIMES:
        raise SpecError(path, f"{where}.regime", f"unknown regime {regime!r}; valid: {', '.join(REGIMES)}")
    answers = str(entry.get("answers", "single"))
    if answers not in ("single", "multi"):
        raise SpecError(path, f"{where}.answers", "expected 'single' or 'multi'")
    group = str(entry.get("group", "native"))
    if group not in GROUPS:
        raise SpecError(path, f"{where}.group", f"expected one of {', '.join(GROUPS)}")
    data = _data_source(path, where, entry["data"], [str(l) for l in languages])
    if REGIMES[regime].shots == "native" and not any(split != "test" for _, split in data.files):
        raise SpecError(path, f"{where}.regime", "native_3shot needs a train or dev file for its examples")
    if REGIMES[regime].shots == "english" and not entry.get("fewshot_from"):
        raise SpecError(path, f"{where}.fewshot_from", f"regime {regime} needs the benchmark(s) whose English "
                        "examples to use, e.g. [medqa]")
    title = str(entry["title"])
    return Benchmark(
        key=key, title=title, short=str(entry.get("short", title)),
        family="table" if not data.importer else data.importer,
        letters=letters, test_size=0, kind=GROUPS[group], regime=regime, languages=tuple(map(str, languages)),
        native_languages=tuple(map(str, entry.get("native_languages", languages))), answers=answers,
        min_options=int(entry.get("min_options", 0)), fewshot_from=tuple(map(str, entry.get("fewshot_from", ()))),
        dataset=str(entry.get("dataset", f"{title} ({path.name})")), data=data, builtin=False,
    )


def _data_source(path: Path, where: str, data: Any, languages: list[str]) -> DataSource:
    where = f"{where}.data"
    if not isinstance(data, dict):
        raise SpecError(path, where, "expected a mapping with the files and, for the common layout, `fields`")
    _take(path, where, data, {"format", "fields", "answer_format", "importer", *SPLITS}, {"test"})
    files: dict[tuple[str, str], Path] = {}
    for split in SPLITS:
        value = data.get(split)
        if value is None:
            continue
        per_language = value if isinstance(value, dict) else ({languages[0]: value} if len(languages) == 1 else None)
        if per_language is None:
            raise SpecError(path, f"{where}.{split}", "several languages: give {language: file} for each")
        for language, file in per_language.items():
            if language not in languages:
                raise SpecError(path, f"{where}.{split}", f"language {language!r} is not in `languages`")
            resolved = (path.parent / str(file)).resolve()
            if not resolved.is_file():
                raise SpecError(path, f"{where}.{split}", f"file {resolved} does not exist")
            files[(str(language), split)] = resolved
    importer = str(data.get("importer", ""))
    if importer:
        return DataSource(path, files, importer=importer)
    fmt = str(data.get("format", "jsonl"))
    if fmt not in FORMATS:
        raise SpecError(path, f"{where}.format", f"expected one of {', '.join(FORMATS)}")
    fields = data.get("fields")
    if not isinstance(fields, dict) or not {"question", "options", "answer"} <= set(fields):
        raise SpecError(path, f"{where}.fields", "expected a mapping with at least question, options and answer")
    unknown = sorted(set(fields) - {"question", "options", "answer", "context", "id", "category"})
    if unknown:
        raise SpecError(path, f"{where}.fields", f"unknown field {unknown[0]!r}")
    answer_format = str(data.get("answer_format", "letter"))
    if answer_format not in ANSWER_FORMATS:
        raise SpecError(path, f"{where}.answer_format", f"expected one of {', '.join(ANSWER_FORMATS)}")
    return DataSource(path, files, fmt, dict(fields), answer_format)
