"""The cache is keyed on what determines a translation (service, model and prompt, weights), never on
the address: `localhost` vs `127.0.0.1`, a new port or a moved model folder find what was paid for,
and caches written when the address was in the key are upgraded in place."""
import shutil
import sqlite3

import pytest

from libre_server import FakeLibre
from medtasks.store import read_records
from test_translation_web import english_store, libre
from translation.backends import get_backend
from translation.cache import Cache
from translation.engine import Engine, Job
from translation.pipeline import translate_store

pytest.importorskip("deep_translator")


def test_another_host_name_or_port_of_the_same_service_finds_the_cache(tmp_path):
    store = english_store(tmp_path / "store", n=3)
    cache = tmp_path / "cache.sqlite"
    with FakeLibre() as first:
        summary = translate_store(store, ["medqa", "pubmedqa"], ["test"], ["fr"], libre(first), Cache(cache),
                                  progress=False)
        paid = summary["_run"]["translated"]
        assert paid > 0 and len(first.requests) == paid
        as_localhost = first.url.replace("127.0.0.1", "localhost")
        again = translate_store(store, ["medqa", "pubmedqa"], ["test"], ["fr"],
                                get_backend("libre", url=as_localhost, timeout=2), Cache(cache), progress=False)
        assert again["_run"]["calls"] == 0 and len(first.requests) == paid
    with FakeLibre() as second:  # another port (another server of the same service)
        assert second.url != first.url
        third = translate_store(store, ["medqa", "pubmedqa"], ["test"], ["fr"], libre(second), Cache(cache),
                                progress=False)
        assert third["_run"]["calls"] == 0 and second.requests == []
    record = read_records(store, "medqa", "fr", "test")[0]
    assert record.provenance["engine_version"] == "LibreTranslate"  # no address in the store either


def test_a_cache_keyed_on_the_address_is_upgraded_in_place(tmp_path):
    store = english_store(tmp_path / "store", n=2)
    path = tmp_path / "cache.sqlite"
    with FakeLibre() as server:
        translate_store(store, ["medqa"], ["test"], ["de"], libre(server), Cache(path), progress=False)
        paid = len(server.requests)
    with sqlite3.connect(path) as db:  # as the previous release wrote it: two addresses, the same texts
        rows = db.execute("SELECT * FROM translations").fetchall()
        db.execute("DELETE FROM translations")
        for address in ("http://127.0.0.1:5000/", "http://localhost:5000/"):
            db.executemany("INSERT INTO translations VALUES (?,?,?,?,?,?,?)",
                           [(b, f"deep-translator 1.11.4 libre {address}", *rest) for b, _, *rest in rows])
        db.execute("INSERT INTO translations VALUES ('openai-chat', 'tiny prompt:0123abcd http://h:8000/v1/chat/"
                   "completions', 'en', 'fr', 'x', 'y', 0)")
    with FakeLibre() as server:
        summary = translate_store(store, ["medqa"], ["test"], ["de"], libre(server), Cache(path), progress=False)
        assert summary["_run"]["calls"] == 0 and server.requests == [] and summary["_run"]["cache_hits"] == paid
    with sqlite3.connect(path) as db:
        versions = db.execute("SELECT backend, version, COUNT(*) FROM translations GROUP BY 1, 2").fetchall()
    assert versions == [("libre", "LibreTranslate", paid), ("openai-chat", "tiny prompt:0123abcd http://h:8000/v1/"
                                                                           "chat/completions", 1)]
    chat = get_backend("openai-chat", url="http://127.0.0.1:1/v1", model="tiny")
    Engine(chat, Cache(path), progress=False)  # an engine of that backend upgrades its own keys
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM translations WHERE backend='openai-chat'").fetchall() == \
            [("tiny prompt:0123abcd",)]
    assert Cache(path).upgrade_versions("libre", libre(server).upgrade_version) == 0  # nothing left to do


def test_a_moved_local_model_keeps_its_cache(tmp_path):
    pytest.importorskip("sentencepiece")
    from tiny_seq2seq import build_tiny_marian

    model = build_tiny_marian(tmp_path / "a" / "marian")
    moved = tmp_path / "b" / "marian"
    shutil.copytree(model, moved)
    first, second = (get_backend("seq2seq", model=str(m), max_new_tokens=8) for m in (model, moved))
    assert first.version("en", "fr") == second.version("en", "fr") and "/" not in first.version("en", "fr")
    cache = Cache(tmp_path / "c.sqlite")
    job = Job({"question": "Which drug?", "options": ["Aspirin", "Heparin"], "context": None}, "en", "fr")
    _, stats = Engine(first, cache, progress=False).run([job])
    _, again = Engine(second, cache, progress=False).run([job])
    assert stats.translated == 3 and again.calls == 0 and again.cache_hits == 3
