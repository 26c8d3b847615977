"""kill -9 in the middle of a run, then re-run: nothing lost, nothing duplicated, nothing paid twice."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from libre_server import FakeLibre
from medtasks.store import read_records
from test_translation_web import english_store
from translation.cache import text_key

ROOT = Path(__file__).resolve().parent.parent


def _cached_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT text_sha256 FROM translations")}


def test_kill_9_then_resume(tmp_path):
    store = english_store(tmp_path / "store", n=20)
    cache = tmp_path / "cache.sqlite"
    cmd = [sys.executable, "-m", "translation", "translate", "--store", str(store), "--cache", str(cache),
           "--benchmarks", "medqa", "medqa5", "pubmedqa", "--languages", "fr", "--backend", "libre",
           "--workers", "2", "--no-progress"]
    with FakeLibre(latency=0.05) as server:
        proc = subprocess.Popen(cmd + ["--url", server.url], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while len(server.texts()) < 15 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        before_kill = server.texts()
        cached = _cached_keys(cache)
        assert 0 < len(cached) < 45, "the kill must land mid-run"  # 20 stems + 5 options + 20 x 2 pubmedqa
        assert not (store / "medqa/fr/test.jsonl").exists()  # nothing half-written into the store

        done = subprocess.run(cmd + ["--url", server.url], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        after = server.texts()[len(before_kill):]
    assert not cached & {text_key(t) for t in after}, "a cached text was requested again"
    assert len(after) == len(set(after))
    for benchmark in ("medqa", "medqa5", "pubmedqa"):
        ids = [r.id for r in read_records(store, benchmark, "fr", "test")]
        assert ids == [r.id for r in read_records(store, benchmark, "en", "test")]  # all there, once each
    # at most the requests in flight at the kill were paid twice
    assert len(before_kill) + len(after) - len(set(before_kill + after)) <= 2
