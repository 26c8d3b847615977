"""lm-eval's `custom_dataset` for every task: the store first, then $MEDTASKS_DATA, then the hub.

Each task YAML passes its benchmark and language (dataset_kwargs); lm-eval adds the task
metadata and `--metadata` (where `fewshot_seed` selects the few-shot examples of a run).
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

from medtasks.benchmarks import BENCHMARKS, get_benchmark
from medtasks.languages import LANGUAGES, SOURCE_LANGUAGE, get_language
from medtasks.records import Record
from medtasks.store import MissingData, default_store, has_split, read_records

log = logging.getLogger(__name__)

FEWSHOT_SEEDS = (1, 2, 3)  # BioMistral's "3 random seeds": report mean ± std over these
DEFAULT_FEWSHOT_SEED = 1
# MedQA-5 has no few-shot pool of its own offline (the pool's MedQA items have 4 options).
FEWSHOT_FALLBACK = {"medqa5": "medqa"}


def data_dir() -> Path | None:
    value = os.environ.get("MEDTASKS_DATA")
    return Path(value).expanduser() if value else None


def how_to_prepare(benchmark: str, language: str) -> str:
    """What produces benchmark/language: translation or BioInstructQA for another language, the original
    files for English. The commands come from medtasks.sources.hints (tested by parsing them)."""
    from medtasks.sources import hints

    translate = hints.quoted(hints.translate([benchmark], [language]))
    if language != SOURCE_LANGUAGE and benchmark not in BENCHMARKS:  # BioInstructQA holds the suite only
        return f"translate it: {translate}"
    if language == SOURCE_LANGUAGE:
        return (f"set MEDTASKS_DATA to a folder laid out like the original releases (tasks import it on first "
                f"use), or run {hints.quoted(hints.import_data([benchmark]))}, or, online, "
                f"{hints.quoted(hints.import_hub([benchmark]))}")
    mmlu = (f", or import the third-party MMLU translation: {hints.quoted(hints.import_data([benchmark], [language]))}"
            if get_benchmark(benchmark).family == "mmlu" else "")
    return (f"translate it: {translate}, or import BioMistral's BioInstructQA: "
            f"{hints.quoted(hints.import_bioinstructqa([benchmark], [language]))}{mmlu}")


def ensure_split(store: Path, benchmark: str, language: str, split: str) -> None:
    """Make sure store/<benchmark>/<language>/<split> exists, importing it if we know how."""
    if has_split(store, benchmark, language, split):
        return
    from medtasks import sources

    folder = data_dir()
    if folder is not None:
        log.info("importing %s from MEDTASKS_DATA=%s into %s", benchmark, folder, store)
        sources.import_folder(folder, store, benchmarks=[benchmark])
        if has_split(store, benchmark, language, split):
            return
    if language != SOURCE_LANGUAGE and benchmark not in BENCHMARKS:
        raise MissingData(f"{benchmark}_{language}: no {get_language(language).name} {split} data in the store "
                          f"({store}); {how_to_prepare(benchmark, language)}", benchmark, language, split)
    try:
        if language == SOURCE_LANGUAGE:
            sources.import_hub(benchmark, store)
        else:
            sources.import_bioinstructqa_from_hub(store, benchmarks=[benchmark], languages=[language])
    except sources.HubUnavailable as err:
        raise MissingData(
            f"{benchmark}_{language}: no {get_language(language).name} {split} data in the store ({store})"
            f"{' nor in MEDTASKS_DATA=' + str(folder) if folder else ''}; {how_to_prepare(benchmark, language)} "
            f"(the hub cannot be used: {err.reason})", benchmark, language, split
        ) from None
    if not has_split(store, benchmark, language, split):
        raise MissingData(f"{benchmark}_{language}: the hub import did not provide split {split!r}; "
                          f"{how_to_prepare(benchmark, language)}", benchmark, language, split)


def fewshot_examples(store: Path, benchmark: str, seed: int) -> list[Record]:
    """English examples for a run, in the order lm-eval's `first_n` sampler takes them.

    A fixed set `fewshot<seed>` (BioInstructQA's three sets) wins; otherwise the pool (split
    `fewshot`, else `train`) is shuffled with the seed: every question of a run gets the same
    examples, and each seed gives other ones.
    """
    names = [benchmark] + ([FEWSHOT_FALLBACK[benchmark]] if benchmark in FEWSHOT_FALLBACK else [])
    for name in names:
        if has_split(store, name, SOURCE_LANGUAGE, f"fewshot{seed}"):
            return read_records(store, name, SOURCE_LANGUAGE, f"fewshot{seed}")
    # Pools already in the store first: otherwise MedQA-5, which never has a pool of its own,
    # would re-import its folder and probe the hub at every load before falling back.
    for importing in (False, True):
        for name in names:
            if importing:
                try:
                    ensure_split(store, name, SOURCE_LANGUAGE, "fewshot")
                except MissingData:
                    pass
            for split in ("fewshot", "train"):
                if has_split(store, name, SOURCE_LANGUAGE, split):
                    pool = sorted(read_records(store, name, SOURCE_LANGUAGE, split), key=lambda r: r.id)
                    random.Random(seed).shuffle(pool)
                    return pool
    raise MissingData(f"{benchmark}: no English few-shot examples in the store ({store}); "
                      f"{how_to_prepare(benchmark, SOURCE_LANGUAGE)}", benchmark, SOURCE_LANGUAGE, "fewshot")


def needs_fewshot(benchmark: str) -> bool:
    """Whether the task's regime shows examples (zero-shot benchmarks load their test split only)."""
    from medtasks.spec import regime_of

    return regime_of(get_benchmark(benchmark)).shots != "none"


def check_task_data(benchmark: str, language: str, fewshot_seed: int = DEFAULT_FEWSHOT_SEED) -> None:
    """Raise MissingData unless every split the task loads is in the store or can be imported now, by the
    same resolution as load_task_dataset (store, then $MEDTASKS_DATA, then the hub); what it imports stays
    in the store. `medeval eval` runs it for every task before it starts lm-eval."""
    store = default_store()
    ensure_split(store, benchmark, language, "test")
    if needs_fewshot(benchmark):
        fewshot_examples(store, benchmark, int(fewshot_seed))


def to_doc(record: Record) -> dict:
    return {
        "id": record.id,
        "question": record.question,
        "context": record.context or "",
        "options": list(record.options.values()),
        "answer": record.answer,
    }


def load_task_dataset(benchmark: str, language: str, fewshot_seed: int = DEFAULT_FEWSHOT_SEED, **_metadata):
    """Return DatasetDict(test=..., fewshot=...) for one task (test only for a zero-shot benchmark,
    one without a few-shot source). Extra metadata keys are ignored."""
    import datasets

    bench = get_benchmark(benchmark)
    if language not in LANGUAGES:
        get_language(language)
    seed = int(fewshot_seed)
    store = default_store()
    ensure_split(store, benchmark, language, "test")
    test = {"test": datasets.Dataset.from_list([to_doc(r) for r in read_records(store, benchmark, language, "test")])}
    if not needs_fewshot(bench.key):
        return datasets.DatasetDict(test)
    shots = fewshot_examples(store, benchmark, seed)
    return datasets.DatasetDict({**test, "fewshot": datasets.Dataset.from_list([to_doc(r) for r in shots])})
