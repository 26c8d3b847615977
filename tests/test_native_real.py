"""The native-language exams imported from the real releases (../shared/data or MEDTASKS_DATA): counts
against the spec, every left-out question counted with its reason, aligned HEAD-QA languages."""
import json
from collections import Counter

import pytest

from medtasks.prompts import doc_to_subset_choices, doc_to_subset_target, format_subset
from medtasks.sources import import_folder
from medtasks.spec import NATIVE_BENCHMARKS, get_benchmark
from medtasks.store import read_manifest, read_records

NATIVE = [key for key, bench in NATIVE_BENCHMARKS.items() if bench.builtin]


@pytest.fixture(scope="module")
def imported(shared_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, import_folder(shared_data, store, benchmarks=NATIVE)


def test_test_counts_equal_the_spec(imported):
    _, counts = imported
    for key in NATIVE:
        bench = get_benchmark(key)
        for language in bench.languages:
            assert counts[f"{key}/{language}/test"] == bench.test_size, (key, language)
    assert {k: v for k, v in counts.items() if "/test" not in k} == {
        "head_qa/es/train": 2589, "head_qa/en/train": 2589, "head_qa/es/validation": 1336,
        "head_qa/en/validation": 1336, "frenchmedmcqa/fr/train": 2170, "frenchmedmcqa/fr/validation": 312,
        "frenchmedmcqa_single/fr/train": 594, "frenchmedmcqa_single/fr/validation": 164}


def test_every_left_out_question_is_counted_with_its_reason(imported):
    store, counts = imported
    manifest = read_manifest(store)
    excluded = {key: manifest[key].get("excluded", {}) for key in counts}
    for language in ("es", "en"):  # the README's 67 / 68 / 30 questions that need an image
        assert excluded[f"head_qa/{language}/test"] == {"needs an image": 67}
        assert excluded[f"head_qa/{language}/train"] == {"needs an image": 68}
        assert excluded[f"head_qa/{language}/validation"] == {"needs an image": 30}
    assert excluded["frenchmedmcqa/fr/test"] == {}
    assert excluded["frenchmedmcqa/fr/train"] == {"repeated row": 1}
    assert excluded["frenchmedmcqa_single/fr/test"] == {"several correct answers (in frenchmedmcqa)": 301}
    assert excluded["cmexam/zh/test"] == {"several correct answers (in cmexam_multi)": 204}
    assert excluded["cmexam_multi/zh/test"] == {"one correct answer (in cmexam)": 6607,
                                                "answer names an option the row lacks": 1}
    assert excluded["medqa_mainland/zh/test"] == excluded["medqa5_mainland/zh/test"] == {}
    for key in counts:  # every row of every file is either a record or an exclusion
        if key.startswith(("head_qa", "frenchmedmcqa")):
            continue
        assert counts[key] + sum(excluded[key].values()) == {"cmexam": 6811, "cmexam_multi": 6811}.get(
            key.split("/")[0], 3426)


def test_head_qa_languages_are_the_same_questions(imported, shared_data):
    store, _ = imported
    for split in ("test", "train", "validation"):
        es, en = read_records(store, "head_qa", "es", split), read_records(store, "head_qa", "en", split)
        assert [r.id for r in es] == [r.id for r in en]
        assert [(r.answer, len(r.options), r.provenance["category"]) for r in es] == \
               [(r.answer, len(r.options), r.provenance["category"]) for r in en]
        assert es[0].question != en[0].question
    test = read_records(store, "head_qa", "es", "test")
    assert test[0].id == "head_qa-Cuaderno_2016_1_B-1" and test[0].answer == "B"
    assert Counter(r.provenance["category"] for r in test) == {
        "chemistry": 458, "pharmacology": 457, "nursing": 455, "psychology": 455, "biology": 454, "medicine": 396}
    assert {r.provenance["kind"] for r in read_records(store, "head_qa", "en", "test")} == {"pretranslated"}
    manifest = {e["file"]: e["sha256"] for e in json.loads((shared_data / "MANIFEST.json").read_text())}
    assert test[0].provenance["sha256"] == manifest[test[0].provenance["source"]]


def test_frenchmedmcqa_subsets_and_scoring_choices(imported):
    store, _ = imported
    every = read_records(store, "frenchmedmcqa", "fr", "test")
    single = read_records(store, "frenchmedmcqa_single", "fr", "test")
    assert Counter(len(r.answer) for r in every) == {1: 321, 3: 141, 2: 97, 4: 56, 5: 7}
    assert [r.id for r in single] == [r.id for r in every if len(r.answer) == 1]
    for record in every:  # each gold set is one of the 31 choices lm-eval scores
        doc = {"id": record.id, "options": list(record.options.values()), "answer": record.answer}
        assert doc_to_subset_choices(doc)[doc_to_subset_target(doc)] == format_subset(record.answer)


def test_chinese_exams(imported):
    store, _ = imported
    four, five = read_records(store, "medqa_mainland", "zh", "test"), read_records(store, "medqa5_mainland", "zh", "test")
    assert [r.id for r in four] == [r.id for r in five] and four[0].id == "medqa_mainland-test-0000"
    assert [r.options[r.answer] for r in four] == [r.options[r.answer] for r in five]
    single, multi = read_records(store, "cmexam", "zh", "test"), read_records(store, "cmexam_multi", "zh", "test")
    assert not {r.id for r in single} & {r.id for r in multi}
    assert Counter(len(r.options) for r in single) == {5: 6405, 4: 202}
    assert Counter(len(r.answer) for r in multi) == {3: 70, 4: 69, 2: 40, 5: 24}
    assert sum("repeated_options" in r.provenance for r in five) == 7
