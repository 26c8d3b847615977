"""One write_records call is one transaction: every group and the manifest change together, or nothing does."""
import os

import pytest

from medtasks import store as store_module
from medtasks.records import DataError, Record
from medtasks.store import (JOURNAL, read_manifest, read_records, split_path, verify_store, write_records)


def rec(i, language="en", **prov):
    return Record(f"q{i}", "medqa", language, "test", f"Question {i}?", {"A": "a", "B": "b", "C": "c", "D": "d"},
                  "A", provenance={"kind": "import", "source": f"{language}.jsonl", "row": i, **prov})


def snapshot(store):
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in store.rglob("*") if p.is_file()
            and p.name != ".lock"}


@pytest.fixture
def store(tmp_path):
    write_records(tmp_path, [rec(1), rec(2), rec(1, "fr"), rec(2, "fr")])
    assert verify_store(tmp_path) == []
    return tmp_path


def test_a_duplicate_id_in_a_later_group_changes_nothing(store):
    before = snapshot(store)
    with pytest.raises(DataError, match=r"fr.jsonl, line 4, field 'id': duplicate id 'q3'"):
        # medqa/en/test sorts before medqa/fr/test: it must not be replaced when the fr group fails
        write_records(store, [rec(3), rec(4), rec(3, "fr"), rec(3, "fr", row=4)])
    assert snapshot(store) == before
    assert verify_store(store) == []


def test_a_failure_while_writing_the_temps_changes_nothing(store, monkeypatch):
    before = snapshot(store)
    real, calls = store_module._write_temp, []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 3:  # the new de group, then en, then the manifest fails
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(store_module, "_write_temp", failing)
    with pytest.raises(OSError, match="No space left"):
        write_records(store, [rec(5), rec(5, "de")])
    assert snapshot(store) == before  # no temp file left, the old files and manifest intact
    assert not (store / "medqa" / "de").exists()  # the folder it made for the new group is gone too


def test_a_crash_between_renames_is_finished_by_the_next_reader(store, monkeypatch):
    real, renames = os.replace, []

    def crash_after_first(src, dst):
        if renames:
            raise KeyboardInterrupt  # the process dies between the first and the second rename
        renames.append(dst)
        real(src, dst)

    monkeypatch.setattr(store_module.os, "replace", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        write_records(store, [rec(7), rec(7, "fr")])
    monkeypatch.setattr(store_module.os, "replace", real)
    assert (store / JOURNAL).exists()  # half-renamed: the journal says what is left to do
    assert [r.id for r in read_records(store, "medqa", "fr", "test")] == ["q7"]  # rolled forward by the reader
    assert not (store / JOURNAL).exists()
    assert [r.id for r in read_records(store, "medqa", "en", "test")] == ["q7"]
    assert read_manifest(store)["medqa/fr/test"]["count"] == 1 and verify_store(store) == []
    assert not list(store.rglob("*.tmp"))


def test_a_stray_temp_of_a_killed_writer_is_removed_by_the_next_write(store):
    stray = split_path(store, "medqa", "en", "test").with_name(".test.jsonl.abc123.tmp")
    stray.write_bytes(b"half")
    write_records(store, [rec(8)])
    assert not stray.exists() and verify_store(store) == []


def test_the_manifest_matches_the_files_after_every_import(tmp_path):
    batches = [[rec(1), rec(2)], [rec(1, "fr")], [rec(3), rec(3, "fr"), rec(3, "fr")], [rec(4, "de")], [rec(9)]]
    for batch in batches:
        try:
            write_records(tmp_path, batch)
        except DataError:
            pass
        assert verify_store(tmp_path) == []
    assert {key: entry["count"] for key, entry in read_manifest(tmp_path).items()} == {
        "medqa/en/test": 1, "medqa/fr/test": 1, "medqa/de/test": 1}


def test_verify_store_finds_a_file_that_disagrees_with_the_manifest(store):
    path = split_path(store, "medqa", "fr", "test")
    path.write_bytes(path.read_bytes() + rec(3, "fr").to_json().encode() + b"\n")
    split_path(store, "medqa", "es", "test").parent.mkdir()
    split_path(store, "medqa", "es", "test").write_text(rec(1, "es").to_json() + "\n")
    os.unlink(split_path(store, "medqa", "en", "test"))
    assert verify_store(store) == [
        f"medqa/en/test: in the manifest, but {split_path(store, 'medqa', 'en', 'test')} is missing",
        f"medqa/fr/test: {path} does not match the manifest's count and sha256",
        f"medqa/es/test: {split_path(store, 'medqa', 'es', 'test')} is not in the manifest",
    ]


def test_a_real_folder_import_leaves_a_consistent_store(shared_data, tmp_path):
    from medtasks.sources import import_folder

    import_folder(shared_data, tmp_path, benchmarks=["medqa", "mmlu_anatomy"])
    import_folder(shared_data, tmp_path, benchmarks=["pubmedqa"])
    assert verify_store(tmp_path) == []
    assert sorted(read_manifest(tmp_path)) == [
        "medqa/en/fewshot", "medqa/en/test", "mmlu_anatomy/en/fewshot", "mmlu_anatomy/en/test",
        "mmlu_anatomy/es/test", "mmlu_anatomy/fr/test", "pubmedqa/en/fewshot", "pubmedqa/en/test"]
