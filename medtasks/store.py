"""The store: <store>/<benchmark>/<language>/<split>.jsonl plus manifest.json.

Writing the same records twice gives the same bytes, so re-importing is idempotent.

One `write_records` call is one transaction: every group it writes and the manifest change together
or not at all. All groups are validated first; then, under the store lock, every new file is written
to a temp file beside its target and fsynced, a journal listing the renames (the manifest last) is
written, the temps are renamed over their targets, and the journal is removed. A failure before the
journal exists removes the temps (nothing changed); a crash during the renames leaves the journal, and
the next writer or reader of the store finishes the renames (roll forward: the temps are complete, so
the result is the new state). `verify_store` checks that the manifest's counts and checksums match
the files.

A task name means one dataset. Each group's manifest entry records what it holds ("dataset": the
importers and the fingerprint of its id set, beside "sources": kind and file or engine). A write that
would replace a group's questions with another question set (other ids) from another source (no
source in common) is refused with one line, unless `replace=True`: re-importing the same data, an
updated file at the same place, or another translation of the same questions are not refused.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from medtasks.common import UsageError, cache_root, sha256_bytes
from medtasks.records import DataError, Exclusion, Record

MANIFEST = "manifest.json"
JOURNAL = ".journal.json"  # renames of a transaction in progress: [[temp, target], ...], relative to the store
TEMP_SUFFIX = ".tmp"


class DatasetConflict(UsageError):
    """A write would put another dataset under a group's name (see the module docstring)."""


class MissingData(UsageError, LookupError):
    """A benchmark/language/split is not in the store; the fields say which, for callers that group
    several (`medeval eval` lists every missing task with the command that produces it)."""

    def __init__(self, message: str, benchmark: str = "", language: str = "", split: str = ""):
        super().__init__(message)
        self.benchmark, self.language, self.split = benchmark, language, split


def default_store() -> Path:
    """$MEDTASKS_STORE, else the user cache (~/.cache/medtasks/store)."""
    if os.environ.get("MEDTASKS_STORE"):
        return Path(os.environ["MEDTASKS_STORE"]).expanduser()
    return cache_root() / "store"


def split_path(store: Path, benchmark: str, language: str, split: str) -> Path:
    return Path(store) / benchmark / language / f"{split}.jsonl"


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a fsynced temp file beside `path` (same folder, so the rename is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _finish(store: Path) -> None:
    """Roll an interrupted transaction forward (its temps are complete), or remove stray temps of one
    that failed before its journal was written. Call with the store lock held."""
    journal = store / JOURNAL
    if journal.exists():
        for tmp, target in json.loads(journal.read_text(encoding="utf-8")):
            if (store / tmp).exists():
                os.replace(store / tmp, store / target)
        journal.unlink()
    else:  # only where transactions write (not under _translation/, whose writers do not take this lock)
        for stray in [*store.glob(f".*{TEMP_SUFFIX}"), *store.glob(f"[!_]*/*/.*{TEMP_SUFFIX}")]:
            stray.unlink()


@contextlib.contextmanager
def _locked(store: Path):
    """The store's write lock, with any interrupted transaction finished first."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _finish(store)
        yield


def _settle(store: Path) -> None:
    """Readers: finish a transaction a crashed writer left (cheap when there is none: one stat)."""
    if (Path(store) / JOURNAL).exists():
        with _locked(Path(store)):
            pass


def read_manifest(store: Path) -> dict:
    _settle(store)
    path = Path(store) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _commit(store: Path, files: dict[Path, bytes]) -> None:
    """Replace every file of `files` (in order; the manifest last) or none. Call with the lock held."""
    created = [p for path in files for p in reversed(path.parents) if p != store and store in p.parents
               and not p.exists()]
    renames: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            renames.append((_write_temp(path, data), path))
        atomic_write_bytes(store / JOURNAL, json.dumps(
            [[str(tmp.relative_to(store)), str(path.relative_to(store))] for tmp, path in renames]).encode())
    except BaseException:
        for tmp, _ in renames:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        for folder in sorted(set(created), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only the empty folders this transaction made
        raise
    for tmp, path in renames:  # a crash from here on is rolled forward by the next _finish
        os.replace(tmp, path)
    (store / JOURNAL).unlink()


def _check_unique(benchmark: str, language: str, split: str, group: list[Record]) -> None:
    seen: dict[str, int] = {}
    for index, record in enumerate(group):
        if record.id in seen:
            source = record.provenance.get("source", f"{benchmark}/{language}/{split}")
            raise DataError(source, record.provenance.get("row"), "id",
                            f"duplicate id {record.id!r} (first seen at record {seen[record.id]})")
        seen[record.id] = index


def write_records(store: Path, records: Iterable[Record], excluded: Iterable[Exclusion] = (),
                  replace: bool = False) -> dict[str, int]:
    """Write records grouped by (benchmark, language, split); each group replaces its file whole, and
    all groups and the manifest change together or not at all (see the module docstring).

    Returns {"benchmark/language/split": count}. Duplicate ids inside a group are an error.
    `excluded`: the questions the importer left out; a written group's manifest entry counts them
    per reason ("excluded": {reason: count}). A group that would get another dataset raises
    DatasetConflict and nothing is written, unless `replace`.
    """
    store = Path(store)
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.benchmark, record.language, record.split)].append(record)
    for key, group in groups.items():  # validate everything before anything is written
        _check_unique(*key, group)
    left_out: dict[str, Counter] = defaultdict(Counter)
    for exclusion in excluded:
        left_out[exclusion.group][exclusion.reason] += 1
    written, files, conflicts = {}, {}, []
    with _locked(store):
        manifest = read_manifest(store)
        for (benchmark, language, split), group in sorted(groups.items()):
            data = "".join(r.to_json() + "\n" for r in group).encode()
            files[split_path(store, benchmark, language, split)] = data
            key = f"{benchmark}/{language}/{split}"
            entry = {"count": len(group), "sha256": sha256_bytes(data), "dataset": dataset_identity(group),
                     "sources": sorted({_source_label(r) for r in group})}
            if left_out[key]:
                entry["excluded"] = dict(sorted(left_out[key].items()))
            if key in manifest and not replace:
                conflicts += [problem] if (problem := _conflict(store, key, manifest[key], entry)) else []
            manifest[key] = entry
            written[key] = len(group)
        if conflicts:
            raise DatasetConflict(f"{'; '.join(conflicts)}. A task name means one dataset: nothing was written "
                                  "(to replace it on purpose: medeval import ... --replace; or leave that group out "
                                  "with --benchmarks / --languages)")
        if files:
            files[store / MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
            _commit(store, files)
    return written


def verify_store(store: Path) -> list[str]:
    """Where the manifest and the files disagree (count, checksum, a file missing or not listed);
    [] for a consistent store."""
    store = Path(store)
    manifest, problems = read_manifest(store), []
    for key, entry in sorted(manifest.items()):
        path = split_path(store, *key.split("/"))
        if not path.exists():
            problems.append(f"{key}: in the manifest, but {path} is missing")
            continue
        data = path.read_bytes()
        if sha256_bytes(data) != entry["sha256"] or data.count(b"\n") != entry["count"]:
            problems.append(f"{key}: {path} does not match the manifest's count and sha256")
    for path in sorted(store.glob("[!_]*/*/*.jsonl")):
        key = "/".join(path.relative_to(store).with_suffix("").parts)
        if key not in manifest:
            problems.append(f"{key}: {path} is not in the manifest")
    return problems


def dataset_identity(group: list[Record]) -> dict:
    """What a group holds: the importers that read it (or the kind, for translations) and the sha256 of
    its sorted ids, one per line."""
    ids = "".join(sorted(r.id + "\n" for r in group)).encode()
    importers = {str(r.provenance.get("importer") or r.provenance.get("kind", "import")) for r in group}
    return {"importers": sorted(importers), "ids_sha256": sha256_bytes(ids)}


def _conflict(store: Path, key: str, old: dict, new: dict) -> str | None:
    """Why `new` may not replace group `key`'s entry `old`: other ids from no common source; None if it may."""
    held = old.get("dataset")
    if held is None:  # written before groups recorded their dataset: read its ids from the file
        path = split_path(store, *key.split("/"))
        if not path.exists():
            return None
        held = dataset_identity(list(iter_records(store, *key.split("/"))))
    if held["ids_sha256"] == new["dataset"]["ids_sha256"] or set(old.get("sources", ())) & set(new["sources"]):
        return None
    return (f"{key} holds {old['count']} questions from {_sources(old)}; this write brings {new['count']} with "
            f"other ids from {_sources(new)}")


def _sources(entry: dict) -> str:
    sources = entry.get("sources") or ["?"]
    return sources[0] + (f" (+{len(sources) - 1} more)" if len(sources) > 1 else "")


def _source_label(record: Record) -> str:
    prov = record.provenance
    return prov.get("kind", "import") + ":" + str(prov.get("source") or prov.get("engine") or "?")


def has_split(store: Path, benchmark: str, language: str, split: str) -> bool:
    return split_path(store, benchmark, language, split).exists()


def iter_records(store: Path, benchmark: str, language: str, split: str) -> Iterator[Record]:
    _settle(store)
    path = split_path(store, benchmark, language, split)
    if not path.exists():
        raise MissingData(f"{benchmark}/{language}/{split} is not in the store at {store}", benchmark, language, split)
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(str(path), line_no, None, f"bad JSON: {err.msg}") from None
            yield Record.from_dict(data, str(path), line_no)


def read_records(store: Path, benchmark: str, language: str, split: str) -> list[Record]:
    return list(iter_records(store, benchmark, language, split))
