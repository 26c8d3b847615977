"""A persistent SQLite translation cache, safe to kill at any moment.

Key: (backend, what determines its output (service, model and prompt, weights' checksum; never the
address it is reached at), source language, target language, sha256 of the text).
Every finished translation is committed at once (autocommit, WAL), so after a kill -9 a re-run
finds everything that was already paid for. Keys and request headers are never stored.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from medtasks.common import sha256_bytes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    backend TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
    text_sha256 TEXT NOT NULL, translation TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (backend, version, source, target, text_sha256)
)"""


def text_key(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process, not a power cut
        self._db.execute(_SCHEMA)

    def get_many(self, backend: str, version: str, source: str, target: str,
                 texts: list[str]) -> dict[str, tuple[str, float]]:
        """{text: (translation, created unix time)} for the texts already cached."""
        keys = {text_key(t): t for t in texts}
        found: dict[str, tuple[str, float]] = {}
        items = list(keys.items())
        with self._lock:
            for start in range(0, len(items), 500):  # SQLite caps the number of bound parameters
                chunk = [k for k, _ in items[start:start + 500]]
                rows = self._db.execute(
                    "SELECT text_sha256, translation, created FROM translations WHERE backend=? AND version=? "
                    f"AND source=? AND target=? AND text_sha256 IN ({','.join('?' * len(chunk))})",
                    (backend, version, source, target, *chunk),
                ).fetchall()
                for sha, translation, created in rows:
                    found[keys[sha]] = (translation, created)
        return found

    def put_many(self, backend: str, version: str, source: str, target: str, pairs: list[tuple[str, str]]) -> float:
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO translations VALUES (?,?,?,?,?,?,?)",
                [(backend, version, source, target, text_key(src), out, now) for src, out in pairs],
            )
            self._db.execute("COMMIT")
        return now

    def upgrade_versions(self, backend: str, upgrade) -> int:
        """Rewrite the keys `upgrade(old) -> new | None` maps to a new version (caches written before
        the key left out the address). Keys that now coincide keep the first translation. Returns
        the number of versions rewritten; a second call finds none."""
        with self._lock:
            olds = [v for (v,) in self._db.execute("SELECT DISTINCT version FROM translations WHERE backend=?",
                                                   (backend,))]
            changes = {old: new for old in olds if (new := upgrade(old)) and new != old}
            if changes:
                self._db.execute("BEGIN")
                for old, new in changes.items():
                    self._db.execute("UPDATE OR IGNORE translations SET version=? WHERE backend=? AND version=?",
                                     (new, backend, old))
                    self._db.execute("DELETE FROM translations WHERE backend=? AND version=?", (backend, old))
                self._db.execute("COMMIT")
        return len(changes)

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
