"""Importers: one per ORIGINAL data format, in one registry, all writing the normalized store.

    from medtasks.sources import import_folder
    import_folder("/path/to/data", store)       # everything found in a MEDTASKS_DATA-style folder

Each importer's `read(path, **options)` returns validated Records; the import_* functions read and
then write them with medtasks.store.write_records (atomic, idempotent). See README.md here.
"""
from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

from medtasks.common import UsageError
from medtasks.records import Record
from medtasks.sources import (
    bioinstructqa,
    exam_zh,
    fewshot_pool,
    frenchmedmcqa,
    head_qa,
    hints,
    hub,
    medmcqa,
    medqa,
    mmlu,
    pubmedqa,
    truthfulqa,
)
from medtasks.sources.common import Importer, log
from medtasks.sources.folder import (
    LAYOUT,
    FolderScan,
    expected_file,
    scan_folder,
)
from medtasks.sources.hub import HubUnavailable
from medtasks.spec import (
    ALL_BENCHMARKS,
    BENCHMARKS,
    SOURCE_LANGUAGE,
    get_benchmark,
    get_language,
)
from medtasks.store import has_split, write_records

__all__ = ["IMPORTERS", "Importer", "HubUnavailable", "get_importer", "import_folder", "import_bioinstructqa",
           "import_hub", "scan_folder", "FolderScan",
           "expected_file", "hub_records", "LAYOUT"]

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
        # native-language exams; read(..., excluded=list) appends the questions they leave out (Exclusion)
        Importer("head_qa", "HEAD-QA JSON (exams -> questions), es or en; questions with an image excluded",
                 head_qa.read),
        Importer("frenchmedmcqa", "FrenchMedMCQA JSON list, 1-5 correct of 5 (benchmark=frenchmedmcqa[_single])",
                 frenchmedmcqa.read),
        Importer("medqa_mainland", "MedQA Mainland JSONL (problem_text, choices, answer [letter]); "
                 "benchmark=medqa_mainland (4 options) or medqa5_mainland (5)",
                 partial(exam_zh.read, benchmark="medqa_mainland")),
        Importer("cmexam", "CMExam JSONL (the same layout); benchmark=cmexam (single answer) or cmexam_multi",
                 partial(exam_zh.read, benchmark="cmexam")),
    )
}


def get_importer(name: str) -> Importer:
    try:
        return IMPORTERS[name]
    except KeyError:
        raise KeyError(f"unknown importer {name!r}; valid: {', '.join(IMPORTERS)}") from None


def import_folder(data_dir, store, benchmarks=None, languages=None, replace=False,
                  keep_existing=False) -> dict[str, int]:
    """Import everything present in a MEDTASKS_DATA-style folder; returns {"bench/lang/split": count}.
    A folder without files for `benchmarks` imports nothing and returns {} (the loader then tries the
    hub); `medeval import` makes that an error. Questions an importer leaves out are logged and counted
    per reason in their group's manifest entry ("excluded"). A group holding another dataset is refused
    (store.DatasetConflict) unless `replace`; `keep_existing` (the loader's way: the store comes first)
    leaves every group already in the store as it is and writes only the others."""
    scan = scan_folder(data_dir, benchmarks, languages)
    records = scan.records
    if keep_existing:
        groups = {(r.benchmark, r.language, r.split) for r in records}
        kept = {group for group in groups if has_split(Path(store), *group)}
        for group in sorted(kept):
            log.info("%s: already in the store, kept as it is (not re-imported from %s)", "/".join(group), data_dir)
        records = [r for r in records if (r.benchmark, r.language, r.split) not in kept]
    if not records:
        log.info("no files for %s in %s", ", ".join(benchmarks or ["any benchmark"]), data_dir)
        return {}
    for (group, reason), count in sorted(Counter((e.group, e.reason) for e in scan.excluded).items()):
        log.info("%s: %d questions left out: %s", group, count, reason)
    return write_records(Path(store), records, scan.excluded, replace=replace)


def import_bioinstructqa(zip_path, store, benchmarks=None, languages=None, replace=False) -> dict[str, int]:
    """Import BioInstructQA's data.zip (all eight languages and its three few-shot sets by default). Its
    English records carry other ids than the original releases', so over an original release they are
    another dataset: refused unless `replace` (see README.md, "One name, one dataset")."""
    keys = [get_benchmark(key).key for key in benchmarks] if benchmarks is not None else None
    return write_records(Path(store), bioinstructqa.read(zip_path, benchmarks=keys, languages=languages),
                         replace=replace)


def hub_records(benchmarks, languages=(SOURCE_LANGUAGE,)) -> list[Record]:
    """Records of `benchmarks` x `languages` from the hub; raises HubUnavailable within seconds offline.

    English comes from each benchmark's own hub dataset; MedQA 5-options (which has none) and every
    other language come from BioInstructQA's data.zip, read once for all of them."""
    keys = [get_benchmark(key).key for key in benchmarks]
    codes = [get_language(code).code for code in languages]
    records, from_zip = [], set()
    for key in keys:
        for code in codes:
            if code == SOURCE_LANGUAGE and (key in hub.FETCHERS or ALL_BENCHMARKS[key].family == "mmlu"):
                hub.ensure_hub(f"{key} ({code})")
                records += hub.fetch(key)
            elif key in BENCHMARKS:
                from_zip.add((key, code))
            else:
                raise UsageError(f"{key} in {code} is not on the hub (BioInstructQA holds the ten-task suite only): "
                                 f"translate it with {hints.quoted(hints.translate([key], [code]))}")
    if from_zip:
        hub.ensure_hub(f"{hub.BIOINSTRUCTQA[0]} {hub.BIOINSTRUCTQA[1]}")
        records += [r for r in bioinstructqa.read(hub.download_bioinstructqa(), sorted({k for k, _ in from_zip}),
                                                  sorted({c for _, c in from_zip}))
                    if (r.benchmark, r.language) in from_zip or r.split.startswith("fewshot")]
    return records


def import_hub(benchmark: str, store, language: str = SOURCE_LANGUAGE, replace=False) -> dict[str, int]:
    """Fetch `benchmark` in `language` from the hub and store it (see hub_records)."""
    return write_records(Path(store), hub_records([benchmark], [language]), replace=replace)


def on_hub(benchmark: str, language: str) -> bool:
    """Whether `import_hub` can provide benchmark/language (English originals; the suite's other
    languages through BioInstructQA)."""
    bench = get_benchmark(benchmark)
    if language == SOURCE_LANGUAGE:
        return bench.key in hub.FETCHERS or bench.family == "mmlu" or bench.key in BENCHMARKS
    return bench.key in BENCHMARKS


def spec_benchmark_records(bench) -> list[Record]:
    """Every question a user's spec file names for `bench`, read with the common layout (sources.table)
    or with one of the importers above, relabelled to the benchmark, language and split it names."""
    import dataclasses

    from medtasks.records import split_name, validate
    from medtasks.sources import table

    source, records = bench.data, []
    for (language, split), path in sorted(source.files.items()):
        if not source.importer:
            records += table.read(source, bench.key, language, split)
            continue
        if source.importer not in IMPORTERS or source.importer == "hub":
            raise UsageError(f"spec file {source.spec_file}: benchmark {bench.key!r}: importer {source.importer!r} "
                             f"cannot read a file; valid: {', '.join(k for k in IMPORTERS if k != 'hub')}")
        for record in IMPORTERS[source.importer].read(path):
            relabelled = dataclasses.replace(record, benchmark=bench.key, language=language, split=split_name(split))
            records.append(validate(relabelled, str(path), record.provenance.get("row")))
    return records


def import_spec_benchmark(bench, store) -> dict[str, int]:
    """Import what a user's spec file names for `bench` into the store, in one transaction."""
    return write_records(Path(store), spec_benchmark_records(bench))
