"""The store: <store>/<benchmark>/<language>/<split>.jsonl plus manifest.json, written atomically.

Writing the same records twice gives the same bytes, so re-importing is idempotent.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from medtasks.common import UsageError
from medtasks.records import DataError, Record

MANIFEST = "manifest.json"


class MissingData(UsageError, LookupError):
    """A benchmark/language/split is not in the store."""


def default_store() -> Path:
    """$MEDTASKS_STORE, else the user cache (~/.cache/medtasks/store)."""
    if os.environ.get("MEDTASKS_STORE"):
        return Path(os.environ["MEDTASKS_STORE"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "medtasks" / "store"


def split_path(store: Path, benchmark: str, language: str, split: str) -> Path:
    return Path(store) / benchmark / language / f"{split}.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(store: Path):
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_manifest(store: Path) -> dict:
    path = Path(store) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_records(store: Path, records: Iterable[Record]) -> dict[str, int]:
    """Write records grouped by (benchmark, language, split); each group replaces its file whole.

    Returns {"benchmark/language/split": count}. Duplicate ids inside a group are an error.
    """
    store = Path(store)
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.benchmark, record.language, record.split)].append(record)
    written = {}
    with _locked(store):
        manifest = read_manifest(store)
        for (benchmark, language, split), group in sorted(groups.items()):
            seen: dict[str, int] = {}
            for index, record in enumerate(group):
                if record.id in seen:
                    source = record.provenance.get("source", f"{benchmark}/{language}/{split}")
                    raise DataError(source, record.provenance.get("row"), "id",
                                    f"duplicate id {record.id!r} (first seen at record {seen[record.id]})")
                seen[record.id] = index
            data = "".join(r.to_json() + "\n" for r in group).encode()
            atomic_write_bytes(split_path(store, benchmark, language, split), data)
            key = f"{benchmark}/{language}/{split}"
            manifest[key] = {
                "count": len(group),
                "sha256": hashlib.sha256(data).hexdigest(),
                "sources": sorted({_source_label(r) for r in group}),
            }
            written[key] = len(group)
        atomic_write_bytes(store / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return written


def _source_label(record: Record) -> str:
    prov = record.provenance
    return prov.get("kind", "import") + ":" + str(prov.get("source") or prov.get("engine") or "?")


def has_split(store: Path, benchmark: str, language: str, split: str) -> bool:
    return split_path(store, benchmark, language, split).exists()


def iter_records(store: Path, benchmark: str, language: str, split: str) -> Iterator[Record]:
    path = split_path(store, benchmark, language, split)
    if not path.exists():
        raise MissingData(f"{benchmark}/{language}/{split} is not in the store at {store}")
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(str(path), line_no, None, f"bad JSON: {err.msg}") from None
            yield Record.from_dict(data, str(path), line_no)


def read_records(store: Path, benchmark: str, language: str, split: str) -> list[Record]:
    return list(iter_records(store, benchmark, language, split))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
