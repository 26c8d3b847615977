"""The public English dev pool (fewshot_pool/en/dev_en.json): a JSON list of
{question, options "(A) text\\n(B) text", answer "(D)", source, context}.

It feeds the `fewshot` split of MedQA (source medqa-usmle, only items whose option count fits the
benchmark) and MedMCQA (source medmcqa). Its MMLU items carry no subject and PubMedQA has its own
pool (the non-test PQA-L questions), so those items are counted as skipped and logged, not used.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    answer_letter,
    check_unique,
    checked,
    field,
    load_json,
    log,
    provenance,
    require_rows,
    source_name,
    text_field,
)
from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE

NAME = "fewshot_pool"
POOL_FAMILIES = {"medqa-usmle": "medqa", "medmcqa": "medmcqa"}  # pool source -> benchmark family
SKIP_REASONS = {"mmlu-medical": "MMLU item without a subject", "pubmedqa": "PubMedQA uses its PQA-L pool"}
_OPTION = re.compile(r"^\(([A-Z])\)\s?(.*)$")
_ANSWER = re.compile(r"^\(?([A-Z])\)?$")


def parse_options(text: str, source: str, where: str) -> dict[str, str]:
    """'(A) x\\n(B) y' -> {'A': 'x', 'B': 'y'}; a line without a marker continues the option before it."""
    options: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        match = _OPTION.match(line.strip())
        if match:
            last = match.group(1)
            if last in options:
                raise DataError(source, where, "options", f"option ({last}) appears twice")
            options[last] = match.group(2).strip()
        elif line.strip():
            if last is None:
                raise DataError(source, where, "options", f"text before the first '(A)' marker: {line!r:.40}")
            options[last] += "\n" + line.strip()
    if not options:
        raise DataError(source, where, "options", "no '(A) text' options found")
    return options


def parse_answer(text, source: str, where: str) -> str:
    match = _ANSWER.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise DataError(source, where, "answer", f"expected '(A)'-style letter, got {text!r}")
    return match.group(1)


def convert_items(items: list, source: str, sha: str, benchmarks=None) -> tuple[list[Record], Counter]:
    """Pool items -> records for the wanted benchmarks (pure), plus a count of skipped items by reason."""
    wanted = set(benchmarks) if benchmarks is not None else set(BENCHMARKS)
    records, skipped = [], Counter()
    for number, item in enumerate(items, 1):
        where = f"item {number}"
        origin = text_field(item, "source", source, where)
        if origin in SKIP_REASONS:
            skipped[SKIP_REASONS[origin]] += 1
            continue
        if origin not in POOL_FAMILIES:
            raise DataError(source, where, "source", f"unknown source {origin!r}; known: "
                            f"{sorted([*POOL_FAMILIES, *SKIP_REASONS])}")
        question = text_field(item, "question", source, where)
        options = parse_options(text_field(item, "options", source, where), source, where)
        answer = answer_letter(parse_answer(field(item, "answer", source, where), source, where),
                               options, source, where, "answer")
        context = item.get("context") or None
        fits = [b.key for b in BENCHMARKS.values()
                if b.family == POOL_FAMILIES[origin] and list(b.letters) == list(options)]
        if not fits:
            skipped[f"{origin} item with {len(options)} options"] += 1
        for key in fits:
            if key not in wanted:
                continue
            prov = provenance(NAME, source, sha, number, pool_source=origin)
            records.append(checked(Record(f"{key}-pool-{number:04d}", key, SOURCE_LANGUAGE, "fewshot", question,
                                          dict(options), answer, context, prov), where))
    check_unique(records)
    return records, skipped


def read(path, benchmarks=None, root=None) -> list[Record]:
    """Read the pool; items not used are counted by reason and logged."""
    path = Path(path)
    source = source_name(path, root)
    items = load_json(path, source)
    if not isinstance(items, list):
        raise DataError(source, None, None, "expected one JSON list of items")
    require_rows(items, source, "no items: the file holds an empty list")
    records, skipped = convert_items(items, source, sha256_file(path), benchmarks)
    kept = Counter(r.benchmark for r in records)
    log.info("%s: kept %s; skipped %s", source, dict(sorted(kept.items())), dict(sorted(skipped.items())) or "none")
    return records
