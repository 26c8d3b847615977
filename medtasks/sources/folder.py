"""A MEDTASKS_DATA folder: the original release files, laid out as in LAYOUT, read into records.

MedQA, MedMCQA, PubMedQA and MMLU have a slot in every language of the spec (users' languages
included): `<benchmark>/<language>/...` in the English layout holds a user's own translation, read
with the English file it translates (sources/translated.py). `scan_folder` says what it did with
every file in the folder: read it, or skipped it with a reason (an undefined language folder, a
folder no importer reads, a benchmark or language not asked for, a name outside the layout), and
which benchmarks asked for have no file at all.
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
    translated,
    truthfulqa,
)
from medtasks.spec import LANGUAGES, SOURCE_LANGUAGE, SPEC_PATH_ENV
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS

# Where each original file sits in a MEDTASKS_DATA folder ({code}: any language of the spec, en the
# original release, others a translation of it; {n}: option count; {subject}; {Language}: its name).
LAYOUT = {
    "medqa": "medqa/{code}/{n}_options/test.jsonl",
    "medmcqa": "medmcqa/{code}/dev.jsonl",
    "pubmedqa": "pubmedqa/{code}/ori_pqal.json",  # with test_ground_truth.json beside it
    "mmlu_test": "mmlu/{code}/test/{subject}_test.csv",
    "mmlu_dev": "mmlu/en/dev/{subject}_dev.csv",  # few-shot examples: English in BioMistral's regime
    "mmlu_translated": "mmlu/{code}/mmlu_{Language}_test_{subject}_test.csv",  # third-party translations
    "fewshot_pool": "fewshot_pool/en/dev_en.json",
    "truthfulqa": "truthfulqa/en/TruthfulQA.csv",
    **native.LAYOUT,  # the native-language exams: headqa/, frenchmedmcqa/, medqa_mainland/, cmexam/
}
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
    """A benchmark a folder can hold: the suite, extra and native ones (users' come from their spec files)."""
    if key not in BUILTIN_BENCHMARKS:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(BUILTIN_BENCHMARKS)}")
    return BUILTIN_BENCHMARKS[key]


def expected_file(key: str, code: str = SOURCE_LANGUAGE) -> str:
    """The main file of benchmark `key` in language `code`, relative to the folder (for messages)."""
    bench = get_benchmark(key)
    if bench.family == "mmlu":
        return LAYOUT["mmlu_test"].format(code=code, subject=bench.mmlu_subject)
    if bench.family in native.LAYOUT:
        return native.expected_file(key)
    return LAYOUT[bench.family].format(code=code, n=len(bench.letters))


def layout_files(key: str) -> dict[str, str]:
    """{relative path: language} of every file the import of `key` may read, present or not."""
    bench = get_benchmark(key)
    if bench.family in native.LAYOUT:
        return {rel: code for code, _, rel in native.files(key)}
    files = {}
    for code in LANGUAGES:
        main = expected_file(key, code)
        files[main] = code
        if bench.family == "pubmedqa":
            files[_ground_truth(main)] = code
        elif bench.family == "mmlu" and code == SOURCE_LANGUAGE:
            files[LAYOUT["mmlu_dev"].format(subject=bench.mmlu_subject)] = code
        elif bench.family == "mmlu":
            files[_third_party(key, code)] = code
    if bench.family in POOL_FAMILIES:
        files[LAYOUT["fewshot_pool"]] = SOURCE_LANGUAGE
    return files


def _third_party(key: str, code: str) -> str:
    return LAYOUT["mmlu_translated"].format(code=code, Language=LANGUAGES[code].name,
                                            subject=get_benchmark(key).mmlu_subject)


def _ground_truth(ori_pqal: str) -> str:
    return ori_pqal.rsplit("/", 1)[0] + "/test_ground_truth.json"


def _translations(root: Path, key: str, codes: list[str]) -> list[tuple[str, str]]:
    """(language, file) of each translation of `key` present in the folder, for the languages asked."""
    if BUILTIN_BENCHMARKS[key].family not in translated.PAIRING:
        return []
    files = layout_files(key)
    found = []
    for code in codes:
        present = [rel for rel, lang in files.items() if lang == code != SOURCE_LANGUAGE and (root / rel).exists()
                   and not rel.endswith("test_ground_truth.json")]
        if len(present) > 1:  # MMLU: the English layout and the third-party name, for the same questions
            raise DataError(present[1], None, None, f"a second translation of {key} in {code} beside {present[0]}: "
                            "keep one of them in the folder")
        found += [(code, rel) for rel in present]
    return found


def _read_english(root: Path, key: str) -> list[Record]:
    bench, path = BUILTIN_BENCHMARKS[key], root / expected_file(key)
    if bench.family in ("mmlu", "medqa"):
        return (mmlu if bench.family == "mmlu" else medqa).read(path, benchmark=key, root=root)
    return READERS[bench.family](path, root=root)


def _family(root: Path, key: str, codes: list[str], scan: FolderScan) -> None:
    bench = BUILTIN_BENCHMARKS[key]
    files = layout_files(key)
    if bench.family in native.LAYOUT:
        scan.records += native.folder_records(root, key, scan.excluded, codes)
        scan.read.update(p for p, code in files.items() if code in codes and (root / p).exists())
        return
    english_file, wanted = expected_file(key), _translations(root, key, codes)
    english = None
    if (root / english_file).exists() and (SOURCE_LANGUAGE in codes or wanted):  # translations align with it
        english = _read_english(root, key)
        scan.records += english
        scan.read.update(p for p, code in files.items()
                         if code == SOURCE_LANGUAGE and p != LAYOUT["fewshot_pool"] and (root / p).exists())
    if bench.family == "mmlu":  # few-shot examples stay English whatever the languages asked
        dev = LAYOUT["mmlu_dev"].format(subject=bench.mmlu_subject)
        if (root / dev).exists():
            scan.records += mmlu.read(root / dev, benchmark=key, root=root)
            scan.read.add(dev)
    for code, rel in wanted:
        if english is None:
            raise DataError(rel, None, None,
                            f"needs the English file {english_file} to align its rows with (not found)")
        if rel == _third_party(key, code):  # the third-party MMLU translation: mmlu.read records it as such
            scan.records += mmlu.read(root / rel, benchmark=key, language=code, english=english, root=root)
        else:
            scan.records += translated.read(bench.family, root / rel, key, code, english, root=root)
        scan.read.update([rel, _ground_truth(rel)] if bench.family == "pubmedqa" else [rel])


def _skip_reason(rel: str, keys: list[str], codes: list[str]) -> tuple[str, str | None]:
    """(path to report, reason) for a file the scan did not read; reason None: not asked for."""
    parts = rel.split("/")
    folders = sorted({pattern.split("/")[0] for pattern in LAYOUT.values()})
    if len(parts) == 1:
        return rel, "not in a benchmark folder"
    if parts[0] not in folders:
        return parts[0] + "/", f"no importer reads this folder (read: {', '.join(folders)})"
    if parts[1] not in LANGUAGES:
        return f"{parts[0]}/{parts[1]}/", (f"language {parts[1]!r} is not defined (languages: {', '.join(LANGUAGES)}; "
                                           f"add it with a spec file, {SPEC_PATH_ENV})")
    owners = [key for key in BUILTIN_BENCHMARKS if rel in layout_files(key)]
    if owners and (not set(owners) & set(keys) or parts[1] not in codes):
        return rel, None
    if owners:
        return rel, f"read only together with {expected_file(owners[0], parts[1])} (not found)"
    return rel, f"not a file of the layout (here: {', '.join(_patterns(parts[0], parts[1]))})"


def _patterns(folder: str, code: str) -> list[str]:
    """The layout's names under folder/code (the language filled in where every language has a slot)."""
    native_folders = {pattern.split("/")[0] for pattern in native.LAYOUT.values()}
    patterns = [p for p in LAYOUT.values() if p.split("/")[0] == folder]
    if folder in native_folders:
        return patterns
    filled = [p.replace("{code}", code).replace("{Language}", LANGUAGES[code].name) for p in patterns]
    return [p for p in filled if p.split("/")[1] == code] or filled


def scan_folder(data_dir, benchmarks=None, languages=None) -> FolderScan:
    """Records of `benchmarks` (keys; None = all, truthfulqa_med included) in `languages` (None = all)
    found in the folder, English few-shot splits always included, and what was skipped and why."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    keys = [get_benchmark(key).key for key in benchmarks] if benchmarks is not None else list(BUILTIN_BENCHMARKS)
    codes = list(languages) if languages is not None else list(LANGUAGES)
    for code in codes:
        if code not in LANGUAGES:
            raise KeyError(f"unknown language {code!r}; valid: {', '.join(LANGUAGES)}")
    scan = FolderScan()
    for key in keys:
        _family(root, key, codes, scan)
    pool = LAYOUT["fewshot_pool"]
    if (root / pool).exists() and any(BUILTIN_BENCHMARKS[key].family in POOL_FAMILIES for key in keys):
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
