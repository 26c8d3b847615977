"""Garbage never lands in the store: a loopback LibreTranslate server damages chosen answers (truncated,
cut to a stub, sent back in English, a digit dropped); each damaged item goes to the rejected file
with its reason, and `translation-report` flags the same damage in records it did not write."""
import json

import pytest

from libre_server import FakeLibre
from medtasks.records import Record
from medtasks.store import read_records, write_records
from test_translation_web import english_store, libre
from translation.pipeline import audit_path, translate_store

pytest.importorskip("deep_translator")

# substring of an English text -> the damage done to its translation, and the reason expected for it
DAMAGE = {
    "A 40-year-old woman": ("truncate", "question: length ratio"),
    "Does drug 1 reduce": ("echo", "question: left untranslated (no ru letters)"),
    "Does drug 2 reduce": ("stub", "question: length ratio"),
    "Sepsis trial number 3": ("dropdigit", "context: numbers missing from the translation: 3"),
}
DAMAGED_IDS = {("medqa", "q0"), ("medqa5", "q0"), ("pubmedqa", "p1"), ("pubmedqa", "p2"), ("pubmedqa", "p3")}


def _rejected(store, benchmark):
    path = audit_path(store, benchmark, "ru", "test", "rejected.jsonl")
    return {r["id"]: r for r in map(json.loads, path.open(encoding="utf-8"))}


def test_damaged_translations_are_rejected_with_their_reason_and_flagged_by_the_report(tmp_path, capsys):
    from medtasks.cli import main

    store = english_store(tmp_path / "store", n=4)
    with FakeLibre() as server:
        server.text_faults = {needle: [fault] * 5 for needle, (fault, _) in DAMAGE.items()}
        summary = translate_store(store, ["medqa", "medqa5", "pubmedqa"], ["test"], ["ru"], libre(server),
                                  progress=False)
    for benchmark in ("medqa", "medqa5", "pubmedqa"):
        damaged = {i for b, i in DAMAGED_IDS if b == benchmark}
        assert {r.id for r in read_records(store, benchmark, "ru", "test")}.isdisjoint(damaged)
        assert summary[f"{benchmark}/ru/test"]["rejected"] == len(damaged)
        rejected = _rejected(store, benchmark)
        assert set(rejected) == damaged
        for item_id, entry in rejected.items():
            english = next(r for r in read_records(store, benchmark, "en", "test") if r.id == item_id)
            needle = next(n for n in DAMAGE if n in english.question or n in (english.context or ""))
            assert any(reason.startswith(DAMAGE[needle][1]) for reason in entry["reasons"]), entry["reasons"]

    # the same damaged translations, arriving as someone else's records: the report flags each one
    imported = tmp_path / "imported"
    records = []
    for benchmark in ("medqa", "pubmedqa"):
        english = {r.id: r for r in read_records(store, benchmark, "en", "test")}
        for item_id, entry in _rejected(store, benchmark).items():
            item, source = entry["translation"], english[item_id]
            records.append(Record(item_id, benchmark, "ru", "test", item["question"],
                                  dict(zip(source.options, item["options"])), source.answer, item["context"],
                                  provenance={"kind": "pretranslated"}))
            records.append(source)
    write_records(imported, records)
    code = main(["translation-report", "--store", str(imported), "--benchmarks", "medqa", "pubmedqa",
                 "--languages", "ru", "--out", str(tmp_path / "report")])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    flagged = {(g["benchmark"], f["id"]): f["reasons"] for g in report["groups"] for f in g["flagged"]}
    assert set(flagged) == {(b, i) for b, i in DAMAGED_IDS if b != "medqa5"}
    for benchmark in ("medqa", "pubmedqa"):
        for item_id, entry in _rejected(store, benchmark).items():
            assert flagged[(benchmark, item_id)] == entry["reasons"]  # one set of checks, two places
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    pubmedqa = next(g for g in report["groups"] if g["benchmark"] == "pubmedqa")
    assert pubmedqa["flagged_by_check"] == {"length_ratio": 1, "translated": 2, "numbers": 2}
    assert "## ru / pubmedqa: flagged items (length_ratio 1, numbers 2, translated 2)" in markdown
    assert "left untranslated (no ru letters)" in markdown


def _snapshot(root, skip=("cache.sqlite",)):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(p.name.startswith(s) for s in skip)}


def test_an_unreachable_server_stops_the_run_at_once_and_leaves_the_store_as_it_was(tmp_path):
    import subprocess
    import sys
    import time

    store = english_store(tmp_path / "store", n=10)  # 30 items: medqa, medqa5, pubmedqa
    with FakeLibre() as server:
        summary = translate_store(store, ["medqa", "medqa5", "pubmedqa"], ["test"], ["fr"], libre(server),
                                  progress=False)
    assert sum(c["translated"] for k, c in summary.items() if k != "_run") == 30
    before = _snapshot(store)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "medtasks.cli", "translate", "--store", str(store),
                           "--benchmarks", "medqa", "medqa5", "pubmedqa", "--languages", "fr", "--backend", "libre",
                           "--url", "http://127.0.0.1:1/", "--cache", str(tmp_path / "fresh.sqlite"), "--no-progress"],
                          capture_output=True, text=True, timeout=90)
    elapsed = time.monotonic() - started
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr[-2000:])
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("medeval translate: cannot reach the libre service at http://127.0.0.1:1/: "
                                  "8 connections in a row failed (last: connection failed: Connection refused)")
    assert elapsed < 20, elapsed  # was 291 s and 900 calls
    assert _snapshot(store) == before  # no rejection recorded beside the 30 stored items, nothing rewritten


def test_an_item_already_stored_is_kept_and_not_rejected_when_this_run_fails_on_it(tmp_path):
    from translation.cache import Cache

    store = english_store(tmp_path / "store", n=3)
    with FakeLibre() as server:
        translate_store(store, ["pubmedqa"], ["test"], ["ru"], libre(server), progress=False)
        before = (store / "pubmedqa/ru/test.jsonl").read_bytes()
        # a fresh cache, so every text is asked again: p1 now gets HTTP 400, p2 a stub
        server.text_faults = {"Does drug 1": ["400"] * 10, "Does drug 2": ["stub"] * 10}
        summary = translate_store(store, ["pubmedqa"], ["test"], ["ru"], libre(server, retries=1),
                                  cache=Cache(tmp_path / "fresh.sqlite"), progress=False)
    assert summary["pubmedqa/ru/test"] == {"items": 3, "translated": 1, "kept": 2, "rejected": 0, "cached": 0}
    assert (store / "pubmedqa/ru/test.jsonl").read_bytes() == before
    assert audit_path(store, "pubmedqa", "ru", "test", "rejected.jsonl").read_text() == ""


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///tmp/x", "localhost:5000", "http://"])
def test_urls_that_are_not_http_are_refused_before_any_request(url, tmp_path, capsys):
    from medtasks.cli import main
    from medtasks.common import UsageError
    from translation.backends import get_backend

    with pytest.raises(UsageError, match="--url .* is not an http:// or https:// address"):
        get_backend("libre", url=url)
    with pytest.raises(UsageError, match="--url .* is not an http:// or https:// address"):
        get_backend("openai-chat", url=url, model="m")
    store = english_store(tmp_path / "store", n=1)
    before = _snapshot(store)
    assert main(["translate", "--store", str(store), "--benchmarks", "medqa", "--languages", "fr",
                 "--backend", "libre", "--url", url, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "is not an http:// or https:// address" in err
    assert _snapshot(store) == before
