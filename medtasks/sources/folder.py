"""A MEDTASKS_DATA folder: the original release files, laid out as in LAYOUT, read into records.

`scan_folder` says what it did with every file in the folder: read it, or skipped it with a
reason (an unknown language folder, a folder no importer reads, a benchmark or language not asked
for, a name outside the layout), and which benchmarks asked for have no file at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medtasks.records import DataError, Exclusion, Record
from medtasks.sources import (
    fewshot_pool,
    medmcqa,
    medqa,
    mmlu,
    native,
    pubmedqa,
    truthfulqa,
)
from medtasks.spec import LANGUAGES, SOURCE_LANGUAGE
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS

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
    **native.LAYOUT,  # the native-language exams: headqa/, frenchmedmcqa/, medqa_mainland/, cmexam/
}
ALL_BENCHMARKS = BUILTIN_BENCHMARKS  # a folder holds the suite, extra and native ones; users' come from spec files
POOL_FAMILIES = tuple(fewshot_pool.POOL_FAMILIES.values())  # benchmark families the English pool feeds
READERS = {"medmcqa": medmcqa.read, "pubmedqa": pubmedqa.read, "truthfulqa": truthfulqa.read}


@dataclass
class FolderScan:
    records: list[Record] = field(default_factory=list)
    read: set[str] = field(default_factory=set)  # files read, relative to the folder
    skipped: dict[str, str] = field(default_factory=dict)  # file, or folder ending in "/" -> why
    not_asked: list[str] = field(default_factory=list)  # files of benchmarks or languages not asked for
    absent: list[str] = field(default_factory=list)  # benchmarks asked for with no file in the folder
    excluded: list[Exclusion] = field(default_factory=list)  # questions read and left out, with reasons


def get_benchmark(key: str):
    if key not in ALL_BENCHMARKS:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(ALL_BENCHMARKS)}")
    return ALL_BENCHMARKS[key]


def expected_file(key: str) -> str:
    """The main file of benchmark `key`, relative to the folder (for messages)."""
    bench = get_benchmark(key)
    if bench.family == "mmlu":
        return LAYOUT["mmlu_test"].format(subject=bench.mmlu_subject)
    if bench.family in native.LAYOUT:
        return native.expected_file(key)
    return LAYOUT[bench.family].format(n=len(bench.letters))


def layout_files(key: str) -> dict[str, str]:
    """{relative path: language} of every file the import of `key` may read, present or not."""
    bench = get_benchmark(key)
    if bench.family == "mmlu":
        subject = bench.mmlu_subject
        files = {LAYOUT["mmlu_test"].format(subject=subject): SOURCE_LANGUAGE,
                 LAYOUT["mmlu_dev"].format(subject=subject): SOURCE_LANGUAGE}
        files.update({LAYOUT["mmlu_translated"].format(code=code, Language=lang.name, subject=subject): code
                      for code, lang in LANGUAGES.items() if code != SOURCE_LANGUAGE})
        return files
    if bench.family in native.LAYOUT:
        return {rel: code for code, _, rel in native.files(key)}
    files = {expected_file(key): SOURCE_LANGUAGE}
    if bench.family == "pubmedqa":
        files[expected_file(key).rsplit("/", 1)[0] + "/test_ground_truth.json"] = SOURCE_LANGUAGE
    if bench.family in POOL_FAMILIES:
        files[LAYOUT["fewshot_pool"]] = SOURCE_LANGUAGE
    return files


def _mmlu(root: Path, key: str, codes: list[str], scan: FolderScan) -> None:
    files = layout_files(key)
    test, dev, *translated = files
    wanted = [p for p in translated if files[p] in codes and (root / p).exists()]
    english = None
    if (root / test).exists() and (SOURCE_LANGUAGE in codes or wanted):  # translations align with it
        english = mmlu.read(root / test, benchmark=key, root=root)
        scan.read.add(test)
        scan.records += english
    if (root / dev).exists():  # few-shot examples stay English whatever the languages asked
        scan.records += mmlu.read(root / dev, benchmark=key, root=root)
        scan.read.add(dev)
    for rel in wanted:
        if english is None:
            raise DataError(rel, None, None, f"needs the English file {test} to align its rows with (not found)")
        scan.records += mmlu.read(root / rel, benchmark=key, language=files[rel], english=english, root=root)
        scan.read.add(rel)


def _family(root: Path, key: str, codes: list[str], scan: FolderScan) -> None:
    bench = ALL_BENCHMARKS[key]
    if bench.family == "mmlu":
        return _mmlu(root, key, codes, scan)
    if bench.family in native.LAYOUT:
        scan.records += native.folder_records(root, key, scan.excluded, codes)
        scan.read.update(p for p, code in layout_files(key).items() if code in codes and (root / p).exists())
        return
    rel = expected_file(key)
    if not (root / rel).exists() or SOURCE_LANGUAGE not in codes:  # these releases are English only
        return
    if bench.family == "medqa":
        scan.records += medqa.read(root / rel, benchmark=key, root=root)
    else:
        scan.records += READERS[bench.family](root / rel, root=root)
    scan.read.update(p for p in layout_files(key) if p != LAYOUT["fewshot_pool"] and (root / p).exists())


def _skip_reason(rel: str, keys: list[str], codes: list[str]) -> tuple[str, str | None]:
    """(path to report, reason) for a file the scan did not read; reason None: not asked for."""
    parts = rel.split("/")
    folders = sorted({pattern.split("/")[0] for pattern in LAYOUT.values()})
    if len(parts) == 1:
        return rel, "not in a benchmark folder"
    if parts[0] not in folders:
        return parts[0] + "/", f"no importer reads this folder (read: {', '.join(folders)})"
    if parts[1] not in LANGUAGES:
        return f"{parts[0]}/{parts[1]}/", f"language {parts[1]!r} is not defined (languages: {', '.join(LANGUAGES)})"
    owners = [key for key in ALL_BENCHMARKS if rel in layout_files(key)]
    if owners and (not set(owners) & set(keys) or parts[1] not in codes):
        return rel, None
    if owners:
        return rel, f"read only together with {expected_file(owners[0])} (not found)"
    patterns = [p for p in LAYOUT.values() if p.startswith(parts[0] + "/")]
    return rel, f"not a file of the layout (here: {', '.join(patterns)})"


def scan_folder(data_dir, benchmarks=None, languages=None) -> FolderScan:
    """Records of `benchmarks` (keys; None = all, truthfulqa_med included) in `languages` (None = all)
    found in the folder, English few-shot splits always included, and what was skipped and why."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    keys = [get_benchmark(key).key for key in benchmarks] if benchmarks is not None else list(ALL_BENCHMARKS)
    codes = list(languages) if languages is not None else list(LANGUAGES)
    for code in codes:
        if code not in LANGUAGES:
            raise KeyError(f"unknown language {code!r}; valid: {', '.join(LANGUAGES)}")
    scan = FolderScan()
    for key in keys:
        _family(root, key, codes, scan)
    pool = LAYOUT["fewshot_pool"]
    if (root / pool).exists() and any(ALL_BENCHMARKS[key].family in POOL_FAMILIES for key in keys):
        scan.records += fewshot_pool.read(root / pool, benchmarks=keys, root=root)
        scan.read.add(pool)
    scan.records = [r for r in scan.records if r.language in codes or r.split.startswith("fewshot")]
    found = {r.benchmark for r in scan.records if r.language in codes and not r.split.startswith("fewshot")}
    scan.absent = [key for key in keys if key not in found]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in scan.read and not any(p.startswith(".") for p in rel.split("/")):
            where, why = _skip_reason(rel, keys, codes)
            if why is None:
                scan.not_asked.append(rel)
            else:
                scan.skipped.setdefault(where, why)
    return scan


def folder_records(data_dir, benchmarks=None, languages=None) -> list[Record]:
    """Every record the folder holds for `benchmarks` and `languages` (see scan_folder)."""
    return scan_folder(data_dir, benchmarks, languages).records

