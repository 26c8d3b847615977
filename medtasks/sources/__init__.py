"""Importers: one per ORIGINAL data format, in one registry, all writing the normalized store.

    from medtasks.sources import import_folder
    import_folder("/path/to/data", store)       # everything found in a MEDTASKS_DATA-style folder

Each importer's `read(path, **options)` returns validated Records; the import_* functions read and
then write them with medtasks.store.write_records (atomic, idempotent). See README.md here.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.benchmarks import ALL_BENCHMARKS, BENCHMARKS, get_benchmark
from medtasks.languages import LANGUAGES, SOURCE_LANGUAGE
from medtasks.records import DataError, Record
from medtasks.sources import bioinstructqa, fewshot_pool, hub, medmcqa, medqa, mmlu, pubmedqa, truthfulqa
from medtasks.sources.common import Importer, log, source_name
from medtasks.sources.hub import HubUnavailable
from medtasks.store import write_records

__all__ = ["IMPORTERS", "Importer", "HubUnavailable", "get_importer", "import_folder", "import_bioinstructqa",
           "import_hub", "import_bioinstructqa_from_hub", "folder_records", "expected_file", "LAYOUT"]

IMPORTERS: dict[str, Importer] = {
    imp.name: imp
    for imp in (
        Importer("medqa", "MedQA-USMLE JSONL (jind11 release), 4 or 5 options, answer_idx letter", medqa.read),
        Importer("medmcqa", "MedMCQA JSONL (official dev split), cop 1-4", medmcqa.read),
        Importer("pubmedqa", "PubMedQA ori_pqal.json + test_ground_truth.json (test / few-shot pool)",
                 pubmedqa.read),
        Importer("mmlu", "MMLU CSV, with or without header, answer 0-3 or A-D (English or pre-translated)",
                 mmlu.read),
        Importer("fewshot_pool", "English dev pool JSON ('(A) ...' options) -> MedQA / MedMCQA few-shot",
                 fewshot_pool.read),
        Importer("truthfulqa", "TruthfulQA.csv (original release): medical categories -> truthfulqa_med, "
                 "best answer among the incorrect ones, seeded option order", truthfulqa.read),
        Importer("bioinstructqa", "BioMistral's BioInstructQA data.zip: 8 languages + 3 few-shot sets",
                 bioinstructqa.read),
        Importer("hub", "Hugging Face hub datasets (path = benchmark key); fails fast offline",
                 lambda benchmark, **_: hub.fetch(benchmark)),
    )
}

# Where each original file sits in a MEDTASKS_DATA folder ({n}: option count, {subject}, {Language}).
LAYOUT = {
    "medqa": "medqa/en/{n}_options/test.jsonl",
    "medmcqa": "medmcqa/en/dev.jsonl",
    "pubmedqa": "pubmedqa/en/ori_pqal.json",  # with test_ground_truth.json beside it
    "mmlu_test": "mmlu/en/test/{subject}_test.csv",
    "mmlu_dev": "mmlu/en/dev/{subject}_dev.csv",
    "mmlu_translated": "mmlu/{code}/mmlu_{Language}_test_{subject}_test.csv",
    "fewshot_pool": "fewshot_pool/en/dev_en.json",
    "truthfulqa": "truthfulqa/en/TruthfulQA.csv",
}


def get_importer(name: str) -> Importer:
    try:
        return IMPORTERS[name]
    except KeyError:
        raise KeyError(f"unknown importer {name!r}; valid: {', '.join(IMPORTERS)}") from None


def _mmlu_records(root: Path, key: str) -> list[Record]:
    subject = BENCHMARKS[key].mmlu_subject
    test = root / LAYOUT["mmlu_test"].format(subject=subject)
    dev = root / LAYOUT["mmlu_dev"].format(subject=subject)
    english = mmlu.read(test, benchmark=key, root=root) if test.exists() else None
    records = list(english or []) + (mmlu.read(dev, benchmark=key, root=root) if dev.exists() else [])
    for code, language in LANGUAGES.items():
        path = root / LAYOUT["mmlu_translated"].format(code=code, Language=language.name, subject=subject)
        if code == SOURCE_LANGUAGE or not path.exists():
            continue
        if english is None:
            raise DataError(source_name(path, root), None, None,
                            f"needs the English file {source_name(test, root)} to align its rows with (not found)")
        records += mmlu.read(path, benchmark=key, language=code, english=english, root=root)
    return records


def expected_file(key: str) -> str:
    """The main file of benchmark `key` in a MEDTASKS_DATA folder, relative to it (for messages)."""
    bench = get_benchmark(key)
    if bench.family == "mmlu":
        return LAYOUT["mmlu_test"].format(subject=bench.mmlu_subject)
    return LAYOUT[bench.family].format(n=len(bench.letters))


def _family_records(root: Path, key: str) -> list[Record]:
    family = ALL_BENCHMARKS[key].family
    if family == "mmlu":
        return _mmlu_records(root, key)
    path = root / LAYOUT[family].format(n=len(ALL_BENCHMARKS[key].letters))
    if not path.exists():
        return []
    if family == "medqa":
        return medqa.read(path, benchmark=key, root=root)
    return IMPORTERS[family].read(path, root=root)


def folder_records(data_dir, benchmarks=None) -> list[Record]:
    """Every record the folder holds for `benchmarks` (keys; None = all, truthfulqa_med included),
    English few-shot pool included."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    keys = [get_benchmark(key).key for key in benchmarks] if benchmarks is not None else list(ALL_BENCHMARKS)
    records = [record for key in keys for record in _family_records(root, key)]
    pool = root / LAYOUT["fewshot_pool"]
    if pool.exists():
        records += fewshot_pool.read(pool, benchmarks=keys, root=root)
    return records


def import_folder(data_dir, store, benchmarks=None) -> dict[str, int]:
    """Import everything present in a MEDTASKS_DATA-style folder; returns {"bench/lang/split": count}."""
    records = folder_records(data_dir, benchmarks)
    if not records:  # not an error: the caller may fall back to the hub
        log.warning("no files for %s in %s (layout: %s)", ", ".join(benchmarks or ["any benchmark"]),
                    data_dir, LAYOUT)
        return {}
    return write_records(Path(store), records)


def import_bioinstructqa(zip_path, store, benchmarks=None, languages=None) -> dict[str, int]:
    """Import BioInstructQA's data.zip (all eight languages and its three few-shot sets by default)."""
    keys = [get_benchmark(key).key for key in benchmarks] if benchmarks is not None else None
    return write_records(Path(store), bioinstructqa.read(zip_path, benchmarks=keys, languages=languages))


def import_bioinstructqa_from_hub(store, benchmarks=None, languages=None) -> dict[str, int]:
    """Download BioInstructQA's data.zip from the hub (cached by huggingface_hub), then import it."""
    hub.ensure_hub(f"{hub.BIOINSTRUCTQA[0]} {hub.BIOINSTRUCTQA[1]}")
    return import_bioinstructqa(hub.download_bioinstructqa(), store, benchmarks, languages)


def import_hub(benchmark: str, store, language: str = SOURCE_LANGUAGE) -> dict[str, int]:
    """Fetch `benchmark` from the hub and store it; raises HubUnavailable within seconds when offline.

    English comes from each benchmark's own hub dataset (MedQA 5-options, which has none, and every
    other language come from BioInstructQA's data.zip)."""
    key = get_benchmark(benchmark).key
    if language not in LANGUAGES:
        raise KeyError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    if language == SOURCE_LANGUAGE and (key in hub.FETCHERS or ALL_BENCHMARKS[key].family == "mmlu"):
        hub.ensure_hub(f"{key} ({language})")
        return write_records(Path(store), hub.fetch(key))
    if key not in BENCHMARKS:
        raise KeyError(f"{key} in {language} is not on the hub (BioInstructQA holds the ten-task suite only): "
                       f"translate it with `medeval translate --benchmarks {key} --languages {language}`")
    return import_bioinstructqa_from_hub(store, [key], [language])
