"""The importers on the real benchmark files (../shared/data or MEDTASKS_DATA)."""
import json
from pathlib import Path

import pytest

from medtasks.sources import import_folder
from medtasks.spec import BENCHMARKS, NATIVE_BENCHMARKS
from medtasks.store import read_manifest, read_records

MMLU_SIZES = {"anatomy": 135, "clinical_knowledge": 265, "college_biology": 144, "college_medicine": 173,
              "medical_genetics": 100, "professional_medicine": 272}


@pytest.fixture(scope="module")
def imported(shared_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, import_folder(shared_data, store)


def test_counts_match_the_releases(imported):
    _, counts = imported
    counts = {k: v for k, v in counts.items() if k.split("/")[0] not in NATIVE_BENCHMARKS}  # test_native_real.py
    expected = {"medqa/en/test": 1273, "medqa5/en/test": 1273, "medmcqa/en/test": 4183,
                "pubmedqa/en/test": 500, "pubmedqa/en/fewshot": 500,
                "medqa/en/fewshot": 61, "medmcqa/en/fewshot": 210, "truthfulqa_med/en/test": 90}
    for subject, size in MMLU_SIZES.items():
        for lang in ("en", "fr", "es"):
            expected[f"mmlu_{subject}/{lang}/test"] = size
        expected[f"mmlu_{subject}/en/fewshot"] = 5
    assert counts == expected
    assert {b.key: b.test_size for b in BENCHMARKS.values()} == {
        k.split("/")[0]: v for k, v in expected.items() if k.endswith("/en/test") and k.split("/")[0] in BENCHMARKS}


def test_ids_and_provenance(imported, shared_data):
    store, _ = imported
    medqa4, medqa5 = read_records(store, "medqa", "en", "test"), read_records(store, "medqa5", "en", "test")
    assert medqa4[0].id == "medqa-test-0001" and medqa5[0].id == "medqa5-test-0001"
    assert [r.question for r in medqa4] == [r.question for r in medqa5]
    assert len(medqa5[0].options) == 5
    prov = medqa4[41].provenance
    assert prov["kind"] == "import" and prov["importer"] == "medqa" and prov["row"] == 42
    assert prov["source"] == "medqa/en/4_options/test.jsonl"
    manifest = {entry["file"]: entry["sha256"] for entry in json.loads((shared_data / "MANIFEST.json").read_text())}
    assert prov["sha256"] == manifest[prov["source"]]

    mcqa = read_records(store, "medmcqa", "en", "test")
    first = json.loads((shared_data / "medmcqa/en/dev.jsonl").open().readline())
    assert mcqa[0].id == first["id"] and mcqa[0].answer == "ABCD"[first["cop"] - 1]

    pub = {r.id: r for r in read_records(store, "pubmedqa", "en", "test")}
    truth = json.loads((shared_data / "pubmedqa/en/test_ground_truth.json").read_text())
    assert set(pub) == {f"pubmedqa-{pmid}" for pmid in truth}
    pmid, label = next(iter(truth.items()))
    assert pub[f"pubmedqa-{pmid}"].options == {"A": "yes", "B": "no", "C": "maybe"}
    assert pub[f"pubmedqa-{pmid}"].options[pub[f"pubmedqa-{pmid}"].answer] == label
    assert pub[f"pubmedqa-{pmid}"].context
    pool = {r.id for r in read_records(store, "pubmedqa", "en", "fewshot")}
    assert not pool & set(pub)


def test_mmlu_translations_are_aligned_and_marked(imported):
    store, _ = imported
    for subject in MMLU_SIZES:
        english = read_records(store, f"mmlu_{subject}", "en", "test")
        assert english[0].id == f"mmlu_{subject}-test-0001"
        assert all(r.provenance["kind"] == "import" for r in english)
        for lang in ("fr", "es"):
            translated = read_records(store, f"mmlu_{subject}", lang, "test")
            assert [r.id for r in translated] == [r.id for r in english]
            assert [r.answer for r in translated] == [r.answer for r in english]
            assert {r.provenance["kind"] for r in translated} == {"pretranslated"}
            assert translated[0].question != english[0].question


def test_fewshot_pool_parsed(imported, shared_data):
    store, _ = imported
    pool = read_records(store, "medmcqa", "en", "fewshot")
    assert all(len(r.options) == 4 and r.provenance["pool_source"] == "medmcqa" for r in pool)
    items = json.loads((shared_data / "fewshot_pool/en/dev_en.json").read_text())
    number, item = next((n, i) for n, i in enumerate(items, 1) if i["source"] == "medmcqa")
    record = next(r for r in pool if r.provenance["row"] == number)
    assert record.id == f"medmcqa-pool-{number:04d}" and record.question == item["question"]
    assert [f"({k}) {v}" for k, v in record.options.items()] == item["options"].split("\n")
    assert f"({record.answer})" == item["answer"]


def test_reimport_is_idempotent(imported, shared_data):
    store, counts = imported
    before = {p: p.read_bytes() for p in Path(store).rglob("*.json*")}
    assert import_folder(shared_data, store) == counts
    after = {p: p.read_bytes() for p in Path(store).rglob("*.json*")}
    assert after == before
    assert read_manifest(store)["medqa/en/test"]["count"] == 1273


def test_benchmark_selection(shared_data, tmp_path):
    counts = import_folder(shared_data, tmp_path, benchmarks=["medqa5", "mmlu_anatomy"])
    assert counts == {"medqa5/en/test": 1273, "mmlu_anatomy/en/test": 135, "mmlu_anatomy/en/fewshot": 5,
                      "mmlu_anatomy/fr/test": 135, "mmlu_anatomy/es/test": 135}
    with pytest.raises(KeyError, match="valid: "):
        import_folder(shared_data, tmp_path, benchmarks=["medqa7"])
