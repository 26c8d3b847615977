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
