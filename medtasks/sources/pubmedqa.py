"""PubMedQA PQA-L: ori_pqal.json (1000 expert-labelled questions keyed by PubMed id) plus
test_ground_truth.json (the official 500 test ids and labels).

Test ids -> split `test`; the other 500 -> split `fewshot`, the offline few-shot pool. The labels
yes/no/maybe are shown as options A/B/C. A test label that disagrees with the question's
`final_decision` is an error: the two files would not be the same release.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.common import sha256_file
from medtasks.records import DataError, Record
from medtasks.sources.common import (
    check_unique,
    checked,
    field,
    load_json,
    provenance,
    require_rows,
    source_name,
    text_field,
)
from medtasks.spec import PUBMEDQA_LABELS, SOURCE_LANGUAGE
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS

NAME = "pubmedqa"
LETTERS = BUILTIN_BENCHMARKS["pubmedqa"].letters
OPTIONS = dict(zip(LETTERS, PUBMEDQA_LABELS))


def label_letter(label, source: str, where: str, key: str) -> str:
    if label not in PUBMEDQA_LABELS:
        raise DataError(source, where, key, f"expected one of {list(PUBMEDQA_LABELS)}, got {label!r}")
    return LETTERS[PUBMEDQA_LABELS.index(label)]


def convert_item(pmid: str, item: dict, split: str, prov: dict) -> Record:
    """One ori_pqal entry -> Record (pure). Context = the abstract's CONTEXTS joined by spaces."""
    source, where = prov["source"], f"key {pmid!r}"
    question = text_field(item, "QUESTION", source, where)
    contexts = field(item, "CONTEXTS", source, where)
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        raise DataError(source, where, "CONTEXTS", "expected a non-empty list of texts")
    answer = label_letter(field(item, "final_decision", source, where), source, where, "final_decision")
    return checked(Record(f"pubmedqa-{pmid}", "pubmedqa", SOURCE_LANGUAGE, split, question, dict(OPTIONS), answer,
                          " ".join(contexts), prov), where)


def read(path, ground_truth=None, root=None) -> list[Record]:
    """Read ori_pqal.json; `ground_truth` defaults to test_ground_truth.json beside it."""
    path = Path(path)
    truth_path = Path(ground_truth) if ground_truth else path.with_name("test_ground_truth.json")
    source, truth_source = source_name(path, root), source_name(truth_path, root)
    if not truth_path.exists():
        raise DataError(source, None, None, f"needs the test ids of {truth_path.name} beside it (not found)")
    items, truth = load_json(path, source), load_json(truth_path, truth_source)
    for name, data in ((source, items), (truth_source, truth)):
        if not isinstance(data, dict):
            raise DataError(name, None, None, "expected one JSON object keyed by PubMed id")
    require_rows(list(items), source, "no questions: the file holds an empty object")
    require_rows(list(truth), truth_source, "no test ids: the file holds an empty object")
    for pmid, label in truth.items():
        where = f"key {pmid!r}"
        if pmid not in items:
            raise DataError(truth_source, where, None, f"test id not in {source}")
        if label_letter(label, truth_source, where, pmid) != label_letter(
                field(items[pmid], "final_decision", source, where), source, where, "final_decision"):
            raise DataError(truth_source, where, pmid,
                            f"test label {label!r} disagrees with final_decision in {source}")
    sha, truth_sha = sha256_file(path), sha256_file(truth_path)
    records = []
    for pmid, item in items.items():
        if pmid in truth:
            prov = provenance(NAME, source, sha, pmid, split_source=truth_source, split_sha256=truth_sha)
        else:
            prov = provenance(NAME, source, sha, pmid)
        records.append(convert_item(pmid, item, "test" if pmid in truth else "fewshot", prov))
    check_unique(records)
    return records
