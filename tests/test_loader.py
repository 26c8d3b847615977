"""The task loader and the resolver behind it: few-shot selection by seed, import on first use, clear errors."""
import time

import pytest

from medtasks import loader
from medtasks.resolve import resolve_fewshot
from medtasks.records import Record
from medtasks.store import MissingData, write_records


def fewshot_examples(store, benchmark, seed):
    return resolve_fewshot(benchmark, "en", seed, store).records


def rec(i, split="fewshot", benchmark="medqa", language="en"):
    letters = "ABCDE" if benchmark == "medqa5" else "ABCD"
    return Record(f"{benchmark}-{split}-{i}", benchmark, language, split, f"Question {i}?",
                  {l: f"{l} text {i}" for l in letters}, "A")


@pytest.fixture
def pool_store(tmp_path):
    write_records(tmp_path, [rec(i) for i in range(20)] + [rec(i, "test") for i in range(5)])
    return tmp_path


def test_same_seed_same_examples_and_seeds_differ(pool_store):
    first = [r.id for r in fewshot_examples(pool_store, "medqa", 1)]
    assert first == [r.id for r in fewshot_examples(pool_store, "medqa", 1)]
    assert len({tuple(first[:3])} | {tuple(r.id for r in fewshot_examples(pool_store, "medqa", s)[:3])
                                      for s in (2, 3)}) == 3
    assert sorted(first) == sorted(f"medqa-fewshot-{i}" for i in range(20))  # a permutation of the pool


def test_fixed_sets_win_over_the_pool(pool_store):
    write_records(pool_store, [rec(i, "fewshot2") for i in (7, 3, 5)])
    assert [r.id for r in fewshot_examples(pool_store, "medqa", 2)] == [
        "medqa-fewshot2-7", "medqa-fewshot2-3", "medqa-fewshot2-5"]  # kept in their order


def test_medqa5_falls_back_to_the_medqa_pool(pool_store):
    assert fewshot_examples(pool_store, "medqa5", 1)[0].benchmark == "medqa"


def test_dataset_has_test_and_fewshot_splits(pool_store, monkeypatch):
    monkeypatch.setenv("MEDTASKS_STORE", str(pool_store))
    ds = loader.load_task_dataset(benchmark="medqa", language="en", fewshot_seed=3, version=1.0)
    assert ds["test"].num_rows == 5 and ds["fewshot"].num_rows == 20
    assert ds["test"][0]["options"] == ["A text 0", "B text 0", "C text 0", "D text 0"]
    assert ds["fewshot"][0]["id"] == fewshot_examples(pool_store, "medqa", 3)[0].id


def test_missing_language_says_how_to_produce_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MEDTASKS_DATA", raising=False)
    started = time.monotonic()
    with pytest.raises(MissingData) as err:
        loader.load_task_dataset(benchmark="medmcqa", language="de")
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "medmcqa_de" in message and "German" in message
    assert "medeval translate --benchmarks medmcqa --languages de" in message
    assert "medeval import --bioinstructqa" in message


def test_imports_from_medtasks_data_on_first_use(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path))
    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    ds = loader.load_task_dataset(benchmark="mmlu_anatomy", language="fr")
    assert ds["test"].num_rows == 135  # the third-party French translation
    assert ds["fewshot"].num_rows == 5  # English MMLU dev examples
    assert ds["test"][0]["id"] == "mmlu_anatomy-test-0001"  # the English row's id
    assert ds["test"][0]["question"].startswith("Une lésion")


@pytest.mark.parametrize("benchmark, language", [("medqa9", "en"), ("medqa", "xx")])
def test_unknown_names_list_the_valid_ones(benchmark, language):
    with pytest.raises(KeyError, match="valid:"):
        loader.load_task_dataset(benchmark=benchmark, language=language)
