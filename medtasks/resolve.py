"""One way from a task to its records: the store, else an import from where the data lives.

    resolve("medqa", "zh", "test")          -> Resolved(records, sha256 of the store file, ...)
    resolve_fewshot("medqa", "zh", seed=2)  -> the examples of that run, in the order they are shown

Order of the sources: the store; then the files of a user's spec (benchmarks defined by spec files);
then $MEDTASKS_DATA (a folder laid out like the original releases); then the hub (English: each
benchmark's own dataset; other languages of the suite: BioMistral's BioInstructQA). Whatever is
imported lands in the store first, and the records are always read back from it, so a run's checksum
is the checksum of the store file it used. Nothing else imports on behalf of a task.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

from medtasks import spec
from medtasks.common import sha256_file
from medtasks.records import Record
from medtasks.store import MissingData, default_store, has_split, read_records, split_path

log = logging.getLogger(__name__)

DATA_ENV = "MEDTASKS_DATA"
NATIVE_POOL_SPLITS = ("train", "validation")  # native_3shot: the exam's own examples, train first
ENGLISH_POOL_SPLITS = ("fewshot", "train")  # biomistral_3shot: the pool, else the train split


@dataclass(frozen=True)
class Resolved:
    benchmark: str
    language: str
    split: str
    records: list[Record]
    sha256: str  # of the store file the records were read from


def data_dir() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def ensure(benchmark: str, language: str, split: str = "test", store: Path | None = None) -> None:
    """Import benchmark/language/split into the store unless it is there; MissingData says how otherwise."""
    store = Path(store) if store is not None else default_store()
    if not has_split(store, benchmark, language, split):
        _import(store, spec.get_benchmark(benchmark), language, split)


def resolve(benchmark: str, language: str, split: str = "test", store: Path | None = None) -> Resolved:
    """The records of one split, imported into the store first if they are not there yet."""
    store = Path(store) if store is not None else default_store()
    ensure(benchmark, language, split, store)
    return _read(store, benchmark, language, split)


def fewshot_source(benchmark: str, language: str, seed: int, store: Path | None = None) -> tuple[str, str, str] | None:
    """(benchmark, language, split) the examples of a run come from, imported first if needed; None for
    zero-shot. BioMistral's regime: a fixed set `fewshot<seed>` (BioInstructQA's) wins; otherwise the
    English pool (split `fewshot`, else `train`) of the first benchmark of `shots_from` that has one.
    Native regime: the exam's own train (else validation) split in the task's language. Splits already
    in the store come first, so a fallback (MedQA-5 -> MedQA) never re-imports or probes the hub."""
    store = Path(store) if store is not None else default_store()
    bench = spec.get_benchmark(benchmark)
    shots = spec.regime_of(bench).shots
    if shots == "none":
        return None
    if shots == "native":
        candidates = [(bench.key, language, split) for split in NATIVE_POOL_SPLITS]
    else:
        for name in bench.shots_from:
            if has_split(store, name, spec.SOURCE_LANGUAGE, f"fewshot{seed}"):
                return name, spec.SOURCE_LANGUAGE, f"fewshot{seed}"
        candidates = [(name, spec.SOURCE_LANGUAGE, split) for name in bench.shots_from for split in ENGLISH_POOL_SPLITS]
    for candidate in candidates:
        if has_split(store, *candidate):
            return candidate
    for candidate in candidates:
        try:
            ensure(*candidate, store)
            return candidate
        except MissingData:
            continue
    raise MissingData(f"{spec.task_name(benchmark, language)}: no few-shot examples for regime {bench.regime} "
                      f"in the store ({store}); {how_to_prepare(candidates[0][0], candidates[0][1])}",
                      benchmark, language, "fewshot")


def resolve_fewshot(benchmark: str, language: str, seed: int, store: Path | None = None) -> Resolved | None:
    """The examples of a run in the order lm-eval's first_n sampler takes them (see fewshot_source); None
    for zero-shot. A fixed set is shown as it is; a pool is sorted by id and shuffled with the seed, so
    every question of a run gets the same examples."""
    store = Path(store) if store is not None else default_store()
    source = fewshot_source(benchmark, language, seed, store)
    if source is None:
        return None
    found = _read(store, *source)
    if source[2] == f"fewshot{seed}":
        return found
    records = sorted(found.records, key=lambda r: r.id)
    random.Random(int(seed)).shuffle(records)
    return Resolved(found.benchmark, found.language, found.split, records, found.sha256)


def _read(store: Path, benchmark: str, language: str, split: str) -> Resolved:
    return Resolved(benchmark, language, split, read_records(store, benchmark, language, split),
                    sha256_file(split_path(store, benchmark, language, split)))


def _import(store: Path, bench: spec.Benchmark, language: str, split: str) -> None:
    """Import what provides bench/language/split into the store, or raise MissingData saying how."""
    from medtasks import sources

    task = spec.task_name(bench.key, language)
    where = f"no {spec.get_language(language).name} {split} data in the store ({store})"
    if bench.data is not None:  # a user's spec file names its files
        sources.import_spec_benchmark(bench, store)
        if has_split(store, bench.key, language, split):
            return
        raise MissingData(f"{task}: {where}, and its spec file {bench.data.spec_file} names no {split} file "
                          f"for {language}", bench.key, language, split)
    folder = data_dir()
    if folder is not None:
        log.info("importing %s from %s=%s into %s", bench.key, DATA_ENV, folder, store)
        sources.import_folder(folder, store, benchmarks=[bench.key], keep_existing=True)  # the store comes first
        if has_split(store, bench.key, language, split):
            return
        where += f" nor in {DATA_ENV}={folder}"
    if not sources.on_hub(bench.key, language):
        raise MissingData(f"{task}: {where}; {how_to_prepare(bench.key, language)}", bench.key, language, split)
    try:
        sources.import_hub(bench.key, store, language)
    except sources.HubUnavailable as err:
        raise MissingData(f"{task}: {where}; {how_to_prepare(bench.key, language)} "
                          f"(the hub cannot be used: {err.reason})", bench.key, language, split) from None
    if not has_split(store, bench.key, language, split):
        raise MissingData(f"{task}: the hub import did not provide split {split!r}; "
                          f"{how_to_prepare(bench.key, language)}", bench.key, language, split)


def how_to_prepare(benchmark: str, language: str) -> str:
    """What produces benchmark/language: the original files, translation, or BioInstructQA. The
    commands come from medtasks.sources.hints (a test parses each one with the real CLI)."""
    from medtasks.sources import hints

    bench = spec.get_benchmark(benchmark)
    if bench.data is not None:
        return f"check the files named by its spec file {bench.data.spec_file}"
    original = (f"set {DATA_ENV} to a folder laid out like the original releases (tasks import it on first "
                f"use), or run {hints.quoted(hints.import_data([benchmark], [language]))}")
    if language in bench.native_languages or (bench.languages and language in bench.languages):
        hub = (f", or, online, {hints.quoted(hints.import_hub([benchmark]))}"
               if language == spec.SOURCE_LANGUAGE and bench.kind != "native" else "")
        return original + hub
    translate = hints.quoted(hints.translate([benchmark], [language]))
    if bench.kind != "suite":  # BioInstructQA holds the suite only
        return f"translate it: {translate}, or import your own translation: {hints.quoted(hints.import_data([benchmark], [language]))}"
    mmlu = (f", or import the third-party MMLU translation: {hints.quoted(hints.import_data([benchmark], [language]))}"
            if bench.family == "mmlu" else "")
    return (f"translate it: {translate}, or import BioMistral's BioInstructQA: "
            f"{hints.quoted(hints.import_bioinstructqa([benchmark], [language]))}{mmlu}")
