"""BioMistral's BioInstructQA data.zip: all ten corpora, eight languages, three few-shot sets.

Layout: base/overall_{train,validation,test}+prompt.json (English, every corpus in one list) and
langs_processed/<Language>-full.json (the machine-translated test sets, with question_translated,
options_translated, context_translated). Each member is one JSON list; members are streamed one
element at a time because the real archive is ~485 MB.

Every record carries three fixed sets of three English examples under the literal keys
`few_shot_samples[1..3]`; they become the English splits fewshot1..3 of each benchmark. Records are
expected to agree; when they do not, the first set is kept and provenance counts the variants.
"""
from __future__ import annotations

import io
import json
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    answer_letter,
    check_unique,
    checked,
    field,
    iter_json_array,
    log,
    ordered_options,
    provenance,
    text_field,
    utf8_only,
)
from medtasks.spec import BENCHMARKS, LANGUAGES, SOURCE_LANGUAGE

NAME = "bioinstructqa"
BASE_SPLITS = ("test", "train", "validation")
FEWSHOT_SETS = (1, 2, 3)
BY_CORPUS = {b.corpus_name: b.key for b in BENCHMARKS.values()}
TRANSLATION = "BioMistral's machine translation (system not stated)"


def base_member(split: str) -> str:
    return f"base/overall_{split}+prompt.json"


def language_member(code: str) -> str:
    return f"langs_processed/{LANGUAGES[code].name}-full.json"


def benchmark_of(row: dict, source: str, where: str) -> str:
    corpus = field(row, "corpus_name", source, where)
    if corpus not in BY_CORPUS:
        raise DataError(source, where, "corpus_name", f"unknown corpus {corpus!r}; valid: {sorted(BY_CORPUS)}")
    return BY_CORPUS[corpus]


def convert_row(row: dict, benchmark: str, language: str, split: str, prov: dict, where: str) -> Record:
    """One archive record -> Record (pure); other languages read the *_translated fields."""
    source = prov["source"]
    suffix = "" if language == SOURCE_LANGUAGE else "_translated"
    identifier = field(row, "identifier", source, where)
    if not isinstance(identifier, (str, int)) or str(identifier).strip() == "":
        raise DataError(source, where, "identifier", f"expected a non-empty identifier, got {identifier!r}")
    letters = BENCHMARKS[benchmark].letters
    question = text_field(row, "question" + suffix, source, where)
    options = ordered_options(field(row, "options" + suffix, source, where), letters, source, where,
                              "options" + suffix)
    answer = answer_letter(field(row, "correct_answer_letter", source, where), options, source, where,
                           "correct_answer_letter")
    context = None
    if row.get("context") is not None:  # only PubMedQA has one; its translation sits beside it
        context = text_field(row, "context" + suffix, source, where)
    return checked(Record(f"{NAME}-{identifier}", benchmark, language, split, question, options, answer,
                          context, prov), where)


def convert_example(example: dict, benchmark: str, set_number: int, number: int, prov: dict,
                    where: str) -> Record:
    """One few-shot example {context, question, options, correct_answer_letter} -> Record (pure)."""
    source = prov["source"]
    options = ordered_options(field(example, "options", source, where), BENCHMARKS[benchmark].letters,
                              source, where)
    answer = answer_letter(field(example, "correct_answer_letter", source, where), options, source, where,
                           "correct_answer_letter")
    context = example.get("context")
    return checked(Record(f"{NAME}-{benchmark}-fewshot{set_number}-{number}", benchmark, SOURCE_LANGUAGE,
                          f"fewshot{set_number}", text_field(example, "question", source, where), options,
                          answer, context if context else None, prov), where)


def _member(archive: zipfile.ZipFile, suffix: str, zip_name: str) -> str:
    """The member ending with `suffix` (the archive may wrap everything in one top folder)."""
    names = [n for n in archive.namelist() if n == suffix or n.endswith("/" + suffix)]
    if len(names) != 1:
        found = "none" if not names else ", ".join(names)
        raise DataError(zip_name, None, None, f"expected one member {suffix!r} in the archive, found {found}")
    return names[0]


def _rows(archive: zipfile.ZipFile, member: str, source: str):
    with utf8_only(Path(archive.filename), source, lambda: archive.open(member)), archive.open(member) as raw:
        yield from iter_json_array(io.TextIOWrapper(raw, encoding="utf-8"), source)


def read(path, benchmarks=None, languages=None) -> list[Record]:
    """Read data.zip for the given benchmark keys and language codes (None = all).

    The English base files are always streamed: they say which split each translated record
    belongs to and hold the few-shot sets (written as English fewshot1..3 whatever `languages`).
    """
    path = Path(path)
    wanted = set(benchmarks) if benchmarks is not None else set(BENCHMARKS)
    codes = list(languages) if languages is not None else list(LANGUAGES)
    for code in codes:
        if code not in LANGUAGES:
            raise KeyError(f"unknown language {code!r}; valid: {', '.join(LANGUAGES)}")
    sha = sha256_file(path)
    records: list[Record] = []
    split_of: dict[tuple[str, str], str] = {}
    sets: dict[tuple[str, int], Counter] = defaultdict(Counter)  # (benchmark, set) -> JSON text -> records
    first_set: dict[tuple[str, int], tuple[list, str]] = {}
    skipped = Counter()
    with zipfile.ZipFile(path) as archive:
        for split in BASE_SPLITS:
            member = _member(archive, base_member(split), path.name)
            source = f"{path.name}:{member}"
            for index, row in _rows(archive, member, source):
                where = f"record {index}"
                benchmark = benchmark_of(row, source, where)
                if benchmark not in wanted:
                    skipped[benchmark] += 1
                    continue
                prov = provenance(NAME, source, sha, index)
                record = convert_row(row, benchmark, SOURCE_LANGUAGE, split, prov, where)
                split_of[(benchmark, record.id)] = split
                if SOURCE_LANGUAGE in codes:
                    records.append(record)
                if split == "test":
                    for number in FEWSHOT_SETS:
                        examples = field(row, f"few_shot_samples[{number}]", source, where)
                        sets[(benchmark, number)][json.dumps(examples, sort_keys=True)] += 1
                        first_set.setdefault((benchmark, number), (examples, where))
        for (benchmark, number), (examples, where) in sorted(first_set.items()):
            source = f"{path.name}:{base_member('test')}"
            if not isinstance(examples, list) or not examples:
                raise DataError(source, where, f"few_shot_samples[{number}]", "expected a non-empty list")
            variants = len(sets[(benchmark, number)])
            if variants > 1:
                log.warning("%s: %d different few_shot_samples[%d] sets among %s test records; kept the first",
                            source, variants, number, benchmark)
            for k, example in enumerate(examples, 1):
                prov = provenance(NAME, source, sha, f"{where}, few_shot_samples[{number}][{k}]",
                                  distinct_sets=variants)
                records.append(convert_example(example, benchmark, number, k, prov,
                                               f"{where}, few_shot_samples[{number}][{k - 1}]"))
        for code in codes:
            if code == SOURCE_LANGUAGE:
                continue
            member = _member(archive, language_member(code), path.name)
            source = f"{path.name}:{member}"
            for index, row in _rows(archive, member, source):
                where = f"record {index}"
                benchmark = benchmark_of(row, source, where)
                if benchmark not in wanted:
                    continue
                prov = provenance(NAME, source, sha, index, kind="pretranslated", translation=TRANSLATION)
                record = convert_row(row, benchmark, code, "test", prov, where)
                if (benchmark, record.id) not in split_of:
                    raise DataError(source, where, "identifier",
                                    f"{record.id} is in no English base split of the archive")
                record.split = split_of[(benchmark, record.id)]
                records.append(record)
    if skipped:
        log.info("%s: skipped records of benchmarks not asked for: %s", path.name, dict(sorted(skipped.items())))
    check_unique(records)
    return records
