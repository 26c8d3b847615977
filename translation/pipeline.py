"""English store -> translated store: same ids, provenance kind "translation", rejects kept aside.

For every (benchmark, split) the English records are read, every item is translated into every
target language in one engine run (so MedQA 4- and 5-option stems are paid for once), each
translation is checked against its English source, the passing ones are written with
`medtasks.store.write_records`, and the failing ones go to the rejected file with their reasons.
Few-shot splits are refused: BioMistral's protocol keeps the examples in English.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Collection

from medtasks.common import UsageError, sha256_bytes
from medtasks.records import SPLITS, Record
from medtasks.spec import SOURCE_LANGUAGE, get_language
from medtasks.store import (
    DatasetConflict,
    MissingData,
    atomic_write_bytes,
    has_split,
    read_records,
    write_records,
)
from translation.backends.base import Backend
from translation.cache import Cache
from translation.checks import check_item
from translation.engine import Engine, Job, Stats

AUDIT_DIR = "_translation"  # beside the benchmarks in the store: cache, rejected items, run stats
TRANSLATABLE_SPLITS = tuple(s for s in SPLITS if not s.startswith("fewshot"))


def audit_path(store: Path, benchmark: str, language: str, split: str, kind: str) -> Path:
    """<store>/_translation/<benchmark>/<language>/<split>.<kind> (kind: rejected.jsonl, stats.json)."""
    return Path(store) / AUDIT_DIR / benchmark / language / f"{split}.{kind}"


def default_cache(store: Path) -> Path:
    return Path(store) / AUDIT_DIR / "cache.sqlite"


def record_item(record: Record) -> dict:
    return {"question": record.question, "options": list(record.options.values()), "context": record.context}


def translated_record(english: Record, item: dict, target: str, backend: Backend, created: float,
                      passed: list[str]) -> Record:
    return Record(
        id=english.id, benchmark=english.benchmark, language=target, split=english.split,
        question=item["question"].strip(),
        options={letter: text.strip() for letter, text in zip(english.options, item["options"])},
        answer=english.answer,  # the key is copied, never translated
        context=item["context"].strip() if item.get("context") is not None else None,
        provenance={
            "kind": "translation",
            "engine": backend.name,
            "engine_version": backend.version(SOURCE_LANGUAGE, target),
            "source_language": SOURCE_LANGUAGE,
            "source_sha256": sha256_bytes(english.to_json().encode()),
            # the date the newest part was translated (from the cache), so re-runs write the same bytes
            "date": time.strftime("%Y-%m-%d", time.gmtime(created)),
            "checks": passed,
        },
    )


def check_request(splits: list[str], targets: list[str], limit: int | None = None) -> None:
    """UsageError naming the flag for a split that is not translated, a target that is no target or a
    limit under 1."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a whole number of at least 1, got {limit}")
    for split in splits:
        if split not in TRANSLATABLE_SPLITS:
            raise UsageError(f"--splits: {split!r} is not translated (few-shot examples stay English, as in "
                             f"BioMistral's protocol); valid: {', '.join(TRANSLATABLE_SPLITS)}")
    check_targets(targets)


def check_targets(targets: list[str]) -> None:
    """--languages: known codes, English excluded (it is the source)."""
    for target in targets:
        try:
            get_language(target)
        except KeyError as err:
            raise UsageError(f"--languages: {err.args[0]}") from None
        if target == SOURCE_LANGUAGE:
            raise UsageError(f"--languages: {SOURCE_LANGUAGE} is the source language; name the translated "
                             "languages (e.g. --languages fr es)")


def translate_store(store: Path, benchmarks: list[str], splits: list[str], targets: list[str], backend: Backend,
                    cache: Cache | Path | None = None, out_store: Path | None = None, progress: bool = True,
                    ids: Collection[str] | None = None, limit: int | None = None, replace: bool = False) -> dict:
    """Translate, check and write; returns {"<benchmark>/<lang>/<split>": counts} plus "_run" totals.

    `ids` and `limit` translate a slice: the records with those ids, then the first `limit` of each
    benchmark and split (store order). The rest of each group stays as it was.

    Arguments and the English records are checked before anything is written (the cache included).
    A target group that holds another dataset (none of its ids is an English source id, e.g. a
    third-party translation of other questions) stops the run before anything is translated, unless
    `replace`: then this run's translations take its place.
    The store and the rejected file never contradict each other: an item is in one or the other.
    When this run fails on an item that the store already holds a good translation of (same English
    source, passing the checks), that translation stays and no rejection is recorded beside it.
    """
    store = Path(store)
    out_store = Path(out_store or store)
    check_request(splits, targets, limit)
    try:
        sources = [(b, s, read_records(store, b, SOURCE_LANGUAGE, s)) for b in benchmarks for s in splits]
    except MissingData as err:
        raise MissingData(f"{err}; import the English records first (medeval import --data DIR)") from None
    if not replace:
        check_no_other_dataset(out_store, sources, targets)
    selected = select(sources, ids, limit)
    if not isinstance(cache, Cache):
        cache = Cache(cache or default_cache(out_store))

    jobs, owners = [], []
    for records in selected:
        for record in records:
            for target in targets:
                jobs.append(Job(record_item(record), SOURCE_LANGUAGE, target))
                owners.append((record, target))
    outcomes, stats = Engine(backend, cache, progress).run(jobs)
    results = {(english.benchmark, english.split, english.id, target): outcome
               for (english, target), outcome in zip(owners, outcomes)}

    summary = {}
    for benchmark, split, english in sources:
        for target in targets:
            outcome_of = {r.id: results[(benchmark, split, r.id, target)] for r in english
                          if (benchmark, split, r.id, target) in results}
            records, rejected, counts = _merge_group(out_store, benchmark, target, split, english, outcome_of, backend)
            if records:
                write_records(out_store, records, replace=replace)
            lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rejected)
            atomic_write_bytes(audit_path(out_store, benchmark, target, split, "rejected.jsonl"), lines.encode())
            atomic_write_bytes(audit_path(out_store, benchmark, target, split, "stats.json"),
                               (json.dumps({**counts, "engine": backend.name, "run": _run_stats(stats)},
                                           indent=1, sort_keys=True) + "\n").encode())
            summary[f"{benchmark}/{target}/{split}"] = counts
    summary["_run"] = _run_stats(stats)
    return summary


def check_no_other_dataset(store: Path, sources: list[tuple[str, str, list[Record]]], targets: list[str]) -> None:
    """Refuse (before paying for any translation) target groups holding none of the English ids."""
    others = []
    for benchmark, split, english in sources:
        source_ids = {r.id for r in english}
        for target in targets:
            stored = _stored(store, benchmark, target, split)
            if stored and not source_ids & stored.keys():
                others.append(f"{benchmark}/{target}/{split} holds {len(stored)} other questions "
                              f"(ids such as {next(iter(stored))!r})")
    if others:
        raise DatasetConflict(f"{'; '.join(others)}. A task name means one dataset: nothing was translated "
                              "(to replace them with this translation: medeval translate ... --replace; or "
                              "write it elsewhere with --out-store, or leave those groups out with "
                              "--benchmarks / --languages)")


def select(sources: list[tuple[str, str, list[Record]]], ids: Collection[str] | None,
           limit: int | None) -> list[list[Record]]:
    """The records of each (benchmark, split) to translate: those in `ids` (all when None), then the first `limit`."""
    if ids is not None:
        known = {r.id for _, _, records in sources for r in records}
        unknown = [i for i in dict.fromkeys(ids) if i not in known]
        if unknown:
            where = ", ".join(f"{b}/{s}" for b, s, _ in sources)
            shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise UsageError(f"--ids: not in the English records of {where}: {shown}")
    wanted = set(ids) if ids is not None else None
    return [[r for r in records if wanted is None or r.id in wanted][:limit] for _, _, records in sources]


def _stored(store: Path, benchmark: str, language: str, split: str) -> dict[str, Record]:
    return {r.id: r for r in read_records(store, benchmark, language, split)} if has_split(
        store, benchmark, language, split) else {}


def _rejected(store: Path, benchmark: str, language: str, split: str) -> dict[str, dict]:
    path = audit_path(store, benchmark, language, split, "rejected.jsonl")
    if not path.exists():
        return {}
    return {entry["id"]: entry for entry in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def _still_good(previous: Record | None, english: Record, target: str) -> bool:
    """A stored translation worth keeping: made from this English text, and passing today's checks."""
    if previous is None:
        return False
    prov = previous.provenance
    if prov.get("kind") == "translation" and prov.get("source_sha256") != sha256_bytes(english.to_json().encode()):
        return False
    return not check_item(record_item(english), record_item(previous), target)[1]


def _merge_group(store: Path, benchmark: str, target: str, split: str, english: list[Record],
                 outcome_of: dict, backend: Backend) -> tuple[list[Record], list[dict], dict]:
    """The group's records (English order) and rejected entries after this run, and its counts."""
    stored, old_rejected = _stored(store, benchmark, target, split), _rejected(store, benchmark, target, split)
    records, rejected = [], []
    counts = {"items": len(outcome_of), "translated": 0, "rejected": 0, "kept": 0, "cached": 0}
    for source in english:
        previous = stored.get(source.id)
        outcome = outcome_of.get(source.id)
        if outcome is None:  # not part of this run: the group stays as it was
            if previous is not None:
                records.append(previous)
            elif source.id in old_rejected:
                rejected.append(old_rejected[source.id])
            continue
        counts["cached"] += outcome.from_cache
        reasons, passed = list(outcome.errors), []
        if outcome.item is not None:
            passed, failed = check_item(record_item(source), outcome.item, target)
            reasons += failed
        if not reasons:
            records.append(translated_record(source, outcome.item, target, backend, outcome.created, passed))
            counts["translated"] += 1
        elif _still_good(previous, source, target):
            records.append(previous)
            counts["kept"] += 1
        else:
            rejected.append({"id": source.id, "reasons": reasons, "translation": outcome.item})
            counts["rejected"] += 1
    if not records and stored:  # the store cannot hold an empty group: what it has stays, unrejected
        records = [stored[r.id] for r in english if r.id in stored]
        rejected = [entry for entry in rejected if entry["id"] not in stored]
        counts["kept"] += sum(1 for r in english if r.id in stored and r.id in outcome_of)
        counts["rejected"] = sum(1 for entry in rejected if entry["id"] in outcome_of)
    return records, rejected, counts


def _run_stats(stats: Stats) -> dict:
    return {**asdict(stats), "saved_by_dedup": stats.saved_by_dedup}
