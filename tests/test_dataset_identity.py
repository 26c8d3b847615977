"""A task name means one dataset: the store refuses to put other questions from another source under a
group's name unless asked to replace it (issue 12: native Chinese MedQA written as medqa_zh silently
replaced BioMistral's translated set)."""
import dataclasses
import json

import pytest
from test_sources_bioinstructqa import build_zip

from medtasks import cli
from medtasks.common import sha256_bytes
from medtasks.records import Record, validate
from medtasks.sources import exam_zh, import_bioinstructqa, import_folder
from medtasks.store import (
    DatasetConflict,
    read_manifest,
    read_records,
    split_path,
    verify_store,
    write_records,
)

MEDQA_ROW = {"question": "Which?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "B"}


def rec(i, source="a.jsonl", kind="import", importer="medqa", **changes):
    data = {"id": f"q{i}", "benchmark": "medqa", "language": "zh", "split": "test", "question": f"Question {i}?",
            "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "B",
            "provenance": {"kind": kind, "importer": importer, "source": source, "row": i}}
    return Record(**{**data, **changes})


def snapshot(store):
    """Every byte of the store a refused write must leave as it was."""
    return {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def test_native_chinese_medqa_cannot_replace_the_translated_set_by_accident(shared_data, tmp_path):
    store = tmp_path / "store"
    import_bioinstructqa(build_zip(tmp_path / "data.zip"), store, benchmarks=["medqa"], languages=["zh"])
    translated = read_records(store, "medqa", "zh", "test")
    before = snapshot(store)
    # the real MedQA Mainland exam relabelled as medqa_zh through the internal API, as in the issue
    mainland = exam_zh.read(shared_data / "medqa_mainland/zh/medqa_zh_4op.jsonl", benchmark="medqa_mainland")
    as_medqa_zh = [validate(dataclasses.replace(r, benchmark="medqa"), "test", None) for r in mainland]
    with pytest.raises(DatasetConflict) as refused:
        write_records(store, as_medqa_zh)
    assert str(refused.value) == (
        f"medqa/zh/test holds {len(translated)} questions from "
        "pretranslated:data.zip:langs_processed/Chinese-full.json; this write brings 3426 with other ids from import:medqa_zh_4op.jsonl. A task name means one dataset: nothing "
        "was written (to replace it on purpose: medeval import ... --replace; or leave that group out with "
        "--benchmarks / --languages)")
    assert snapshot(store) == before and verify_store(store) == []
    assert read_records(store, "medqa", "zh", "test") == translated

    write_records(store, as_medqa_zh, replace=True)  # on purpose
    entry = read_manifest(store)["medqa/zh/test"]
    assert entry["count"] == 3426 and entry["dataset"]["importers"] == ["medqa_mainland"]
    assert verify_store(store) == []


def test_the_manifest_records_what_each_group_holds(tmp_path):
    write_records(tmp_path, [rec(2), rec(1, source="b.jsonl")])
    entry = read_manifest(tmp_path)["medqa/zh/test"]
    assert entry["dataset"] == {"importers": ["medqa"], "ids_sha256": sha256_bytes(b"q1\nq2\n")}
    assert entry["sources"] == ["import:a.jsonl", "import:b.jsonl"]


@pytest.mark.parametrize("second", [
    [rec(1, source="hub:test", importer="hub"), rec(2, source="hub:test", importer="hub")],  # same questions
    [rec(1), rec(2), rec(3)],  # the same file, updated: one question more
    [rec(i, provenance={"kind": "translation", "engine": "e"}) for i in (1, 2)],  # another translation of them
])
def test_the_same_questions_or_the_same_source_may_replace_a_group(tmp_path, second):
    write_records(tmp_path, [rec(1), rec(2)])
    assert write_records(tmp_path, second) == {"medqa/zh/test": len(second)}
    assert [r.id for r in read_records(tmp_path, "medqa", "zh", "test")] == [r.id for r in second]


def test_reimporting_the_same_folder_is_idempotent(shared_data, tmp_path):
    first = import_folder(shared_data, tmp_path, benchmarks=["medqa"], languages=["en"])
    before = snapshot(tmp_path)
    assert import_folder(shared_data, tmp_path, benchmarks=["medqa"], languages=["en"]) == first
    assert snapshot(tmp_path) == before
    ids = sorted(r.id for r in read_records(tmp_path, "medqa", "en", "test"))
    assert read_manifest(tmp_path)["medqa/en/test"]["dataset"]["ids_sha256"] == sha256_bytes(
        "".join(i + "\n" for i in ids).encode())


def test_a_store_written_before_groups_recorded_their_dataset_is_protected_too(tmp_path):
    write_records(tmp_path, [rec(1), rec(2)])
    manifest = read_manifest(tmp_path)
    del manifest["medqa/zh/test"]["dataset"]  # as written by the previous version
    (tmp_path / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    before = snapshot(tmp_path)
    with pytest.raises(DatasetConflict, match=r"^medqa/zh/test holds 2 questions from import:a.jsonl; this write "
                                              r"brings 1 with other ids from import:other.jsonl"):
        write_records(tmp_path, [rec(7, source="other.jsonl")])
    assert snapshot(tmp_path) == before


def test_one_conflicting_group_refuses_the_whole_import(tmp_path):
    write_records(tmp_path, [rec(1), rec(2)])
    before = snapshot(tmp_path)
    with pytest.raises(DatasetConflict):
        write_records(tmp_path, [rec(1, language="fr"), rec(9, source="other.jsonl")])
    assert snapshot(tmp_path) == before and not split_path(tmp_path, "medqa", "fr", "test").exists()


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bioinstructqa_english_over_the_original_release_needs_replace(tmp_path, capsys):
    """Decided and documented (sources/README.md): BioInstructQA's English copy has other ids than the original
    release, so it is another dataset; --languages leaves English out, --replace replaces it."""
    data, store = tmp_path / "data", tmp_path / "store"
    (data / "medqa/en/4_options").mkdir(parents=True)
    (data / "medqa/en/4_options/test.jsonl").write_text(json.dumps(MEDQA_ROW) + "\n")
    archive = str(build_zip(tmp_path / "data.zip"))
    assert run(capsys, "import", "--data", str(data), "--store", str(store))[0] == 0
    before = snapshot(store)

    code, out, err = run(capsys, "import", "--bioinstructqa", archive, "--store", str(store), "--benchmarks", "medqa")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("medeval import: medqa/en/test holds 1 questions from import:medqa/en/4_options/test.jsonl; "
                          "this write brings 2 with other ids from import:data.zip:base/overall_test+prompt.json")
    assert "--replace" in err and snapshot(store) == before

    code, out, _ = run(capsys, "import", "--bioinstructqa", archive, "--store", str(store), "--benchmarks", "medqa",
                       "--languages", "fr")
    assert code == 0 and "medqa/fr/test" in out and "medqa/en/test " not in out
    assert [r.id for r in read_records(store, "medqa", "en", "test")] == ["medqa-test-0001"]

    code, out, _ = run(capsys, "import", "--bioinstructqa", archive, "--store", str(store), "--benchmarks", "medqa",
                       "--replace")
    assert code == 0 and [r.id for r in read_records(store, "medqa", "en", "test")] == ["bioinstructqa-q1",
                                                                                      "bioinstructqa-q2"]


def test_the_loader_keeps_what_the_store_holds(tmp_path):
    """import_folder(keep_existing=True), the resolver's way: a group already in the store is kept (the store
    comes first), the missing ones are written, and nothing is refused."""
    data, store = tmp_path / "data", tmp_path / "store"
    write_records(store, [rec(1, language="en", source="elsewhere.jsonl")])
    (data / "medqa/en/4_options").mkdir(parents=True)
    (data / "medqa/en/4_options/test.jsonl").write_text(json.dumps(MEDQA_ROW) + "\n")
    (data / "medqa/en/5_options").mkdir(parents=True)
    (data / "medqa/en/5_options/test.jsonl").write_text(
        json.dumps({**MEDQA_ROW, "options": {**MEDQA_ROW["options"], "E": "e"}}) + "\n")
    with pytest.raises(DatasetConflict):
        import_folder(data, store)
    assert import_folder(data, store, keep_existing=True) == {"medqa5/en/test": 1}
    assert [r.id for r in read_records(store, "medqa", "en", "test")] == ["q1"]
