"""Where the native-language exams sit in a MEDTASKS_DATA folder (the releases' own file names), and
how a folder import reads them:

    headqa/<es|en>/<train|dev|test>_HEAD[_EN].json   head_qa (per split, es and en checked aligned)
    frenchmedmcqa/fr/<train|dev|test>.json           frenchmedmcqa, frenchmedmcqa_single
    medqa_mainland/zh/medqa_zh_4op.jsonl             medqa_mainland (4 options)
    medqa_mainland/zh/medqa_zh.jsonl                 medqa5_mainland (5 options)
    cmexam/zh/cmexam.jsonl                           cmexam, cmexam_multi
"""
from __future__ import annotations

from pathlib import Path

from medtasks.records import Record
from medtasks.sources import exam_zh, frenchmedmcqa, head_qa
from medtasks.spec import get_benchmark

LAYOUT = {
    "head_qa": "headqa/{code}/{split}_HEAD{suffix}.json",  # suffix "" in Spanish, "_EN" in English
    "frenchmedmcqa": "frenchmedmcqa/{code}/{split}.json",
    "medqa_mainland": "medqa_mainland/{code}/medqa_zh{suffix}.jsonl",  # suffix "_4op" (4 options) or "" (5)
    "cmexam": "cmexam/{code}/cmexam.jsonl",
}
SPLITS = ("test", "train", "dev")  # the releases' names; dev is stored as validation


def files(key: str) -> list[tuple[str, str, str]]:
    """(language, split, relative path) of every file benchmark `key` may have, test first."""
    bench = get_benchmark(key)
    template = LAYOUT[bench.family]
    found = []
    for split in SPLITS if "{split}" in template else ("test",):
        for code in bench.languages:
            if bench.family == "head_qa":
                suffix = "" if code in bench.native_languages else f"_{code.upper()}"
            else:
                suffix = "_4op" if len(bench.letters) == 4 else ""
            found.append((code, split, template.format(code=code, split=split, suffix=suffix)))
    return found


def expected_file(key: str) -> str:
    """The test file of `key`, relative to the data folder (for messages)."""
    return files(key)[0][2]


def folder_records(root: Path, key: str, excluded: list | None = None, languages=None) -> list[Record]:
    """Every record of `key` in `languages` (None: all) found under `root`; left-out questions are
    appended to `excluded`."""
    family = get_benchmark(key).family
    present: dict[str, list[Path]] = {}
    for code, split, relative in files(key):
        if (languages is None or code in languages) and (root / relative).exists():
            present.setdefault(split, []).append(root / relative)
    records: list[Record] = []
    for split, paths in present.items():
        if family == "head_qa":
            records += head_qa.read_aligned(paths, root=root, excluded=excluded)
        elif family == "frenchmedmcqa":
            records += frenchmedmcqa.read(paths[0], benchmark=key, root=root, excluded=excluded)
        else:
            records += exam_zh.read(paths[0], benchmark=key, root=root, excluded=excluded)
    return records
