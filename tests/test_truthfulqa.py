"""TruthfulQA's medical categories (truthfulqa_med): importer on the real CSV, option construction and
order, bad rows, the variable option count, the tasks and their group, translation and lm_eval."""
import csv
import hashlib
import os
import subprocess
import sys
from collections import Counter

import pytest
from lm_eval_run import load_run, recomputed, run_lm_eval
from task_yaml import load_task_yaml

from medtasks import loader
from medtasks.common import UsageError
from medtasks.metrics import process_results
from medtasks.prompts import build_prompt
from medtasks.records import DataError, Record, validate
from medtasks.sources import LAYOUT, hub, import_folder, truthfulqa
from medtasks.spec import ALL_BENCHMARKS, BENCHMARKS, EXTRA_BENCHMARKS, get_benchmark
from medtasks.store import MissingData, read_records, write_records
from medtasks.tasks import generate

CSV_HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"


@pytest.fixture(scope="module")
def csv_path(shared_data):
    return shared_data / LAYOUT["truthfulqa"]


@pytest.fixture(scope="module")
def raw_rows(csv_path):
    """The CSV read independently of the importer: (row index, dict)."""
    with open(csv_path, encoding="utf-8", newline="") as handle:
        return list(enumerate(csv.DictReader(handle), 1))


@pytest.fixture(scope="module")
def records(csv_path, shared_data):
    return truthfulqa.read(csv_path, root=shared_data)


def expected_order(record_id, count, seed=0):
    """The documented rule, recomputed here: sort positions by sha256("seed|id|position")."""
    keys = {i: hashlib.sha256(f"{seed}|{record_id}|{i}".encode()).hexdigest() for i in range(count)}
    return sorted(keys, key=keys.get)


def incorrect_of(row):
    out = []
    for piece in row["Incorrect Answers"].split(";"):
        if piece.strip() and piece.strip().casefold() not in {o.casefold() for o in out}:
            out.append(piece.strip())
    return out


# --- the real CSV ---

def test_category_counts_on_the_real_csv(csv_path, records, raw_rows):
    assert len(raw_rows) == 817
    assert Counter(r.provenance["category"] for r in records) == {"Health": 55, "Nutrition": 16, "Psychology": 19}
    assert len(records) == EXTRA_BENCHMARKS["truthfulqa_med"].test_size == 90
    science = truthfulqa.read(csv_path, categories=["Science"])
    assert len(science) == 9 and {r.provenance["category"] for r in science} == {"Science"}
    with pytest.raises(ValueError, match="valid: .*Health"):
        truthfulqa.read(csv_path, categories=["Health", "Medicine"])


def test_categories_from_the_environment(csv_path, monkeypatch):
    monkeypatch.setenv(truthfulqa.CATEGORIES_ENV, "Nutrition, Science")
    assert Counter(r.provenance["category"] for r in truthfulqa.read(csv_path)) == {"Nutrition": 16, "Science": 9}


def test_options_are_the_best_answer_among_the_incorrect_ones(records, raw_rows):
    rows = dict(raw_rows)
    for record in records:
        index = int(record.id.rsplit("-", 1)[1])
        row = rows[index]
        assert record.question == row["Question"].strip() and record.provenance["row"] == index + 1  # header = line 1
        texts = list(record.options.values())
        wrong = incorrect_of(row)
        assert len(texts) == 1 + len(wrong) and list(record.options) == list("ABCDEFGHIJKLM"[:len(texts)])
        assert len(set(texts)) == len(texts)  # no duplicate option texts
        assert texts.count(row["Best Answer"].strip()) == 1 and record.options[record.answer] == row["Best Answer"].strip()
        assert sorted(texts) == sorted([row["Best Answer"].strip(), *wrong])
    assert max(len(r.options) for r in records) == 9 and min(len(r.options) for r in records) == 2


def test_option_order_follows_the_documented_rule(csv_path, records, raw_rows):
    rows = dict(raw_rows)
    for record in records:
        row = rows[int(record.id.rsplit("-", 1)[1])]
        candidates = [row["Best Answer"].strip(), *incorrect_of(row)]
        order = expected_order(record.id, len(candidates))
        assert list(record.options.values()) == [candidates[i] for i in order]
        assert record.answer == "ABCDEFGHIJKLM"[order.index(0)]
        assert record.provenance["option_order"] == {"method": "sha256(seed|id|position)", "seed": 0,
                                                     "positions": order}
    assert len({r.answer for r in records}) >= 5  # the gold letter is not always A
    other_seed = truthfulqa.read(csv_path, seed=7)
    assert [r.answer for r in other_seed] != [r.answer for r in records]
    assert other_seed[0].provenance["option_order"]["seed"] == 7


def test_order_is_the_same_in_another_process_with_another_hash_seed(csv_path, records):
    code = ("import sys; from medtasks.sources import truthfulqa; "
            "print(''.join(r.answer for r in truthfulqa.read(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, str(csv_path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out == "".join(r.answer for r in records)
    # Pinned: the answer letters of the first questions, so a change of rule or data shows up here.
    assert [(r.id, r.answer) for r in records[:3]] == [
        (r.id, "ABCDEFGHIJKLM"[expected_order(r.id, len(r.options)).index(0)]) for r in records[:3]]
    assert records[0].id == "truthfulqa-0189" and records[0].answer == "D"


def test_chance_level_is_measured_on_the_questions_not_fixed(records):
    assert get_benchmark("truthfulqa_med").chance is None  # it depends on the categories imported
    measured = sum(1 / len(r.options) for r in records) / len(records)
    assert measured == pytest.approx(0.2167, abs=5e-5)  # Health, Nutrition, Psychology (results measure it)


def test_hub_rows_give_the_same_records_as_the_csv(raw_rows, records):
    """The hub `generation` config holds the CSV's rows with answer lists: same ids, options, answers."""
    hub_rows = [{"type": r["Type"], "category": r["Category"], "question": r["Question"],
                 "best_answer": r["Best Answer"], "correct_answers": r["Correct Answers"].split("; "),
                 "incorrect_answers": [p.strip() for p in r["Incorrect Answers"].split(";") if p.strip()],
                 "source": r["Source"]} for _, r in raw_rows]
    got = truthfulqa.select(hub.truthfulqa_rows(hub_rows), truthfulqa.DEFAULT_CATEGORIES,
                            "truthfulqa/truthful_qa/generation:validation", hub.rows_sha256(hub_rows), 0, "hub")
    assert [(r.id, r.options, r.answer) for r in got] == [(r.id, r.options, r.answer) for r in records]
    assert got[0].provenance["importer"] == "hub" and got[0].provenance["row"] == 189
    with pytest.raises(DataError, match="line 2, field 'incorrect_answers'"):
        hub.truthfulqa_rows([hub_rows[0], {**hub_rows[1], "incorrect_answers": "a; b"}])


def test_hub_path_fails_fast_offline(monkeypatch, tmp_path):
    from medtasks.sources import HubUnavailable, import_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailable, match="truthfulqa_med"):
        import_hub("truthfulqa_med", tmp_path)
    with pytest.raises(UsageError, match="medeval translate --benchmarks truthfulqa_med --languages fr"):
        import_hub("truthfulqa_med", tmp_path, language="fr")


# --- bad rows ---

GOOD = 'Adversarial,Health,"Can coughing stop a heart attack?",No,"No; Seek help","Yes; Coughing helps",src\n'


@pytest.mark.parametrize("bad, field, problem", [
    ('Adversarial,Health,"",No,"No","Yes",src\n', "Question", "empty question"),
    ('Adversarial,Health,"Q?","  ",No,"Yes",src\n', "Best Answer", "empty best answer"),
    ('Adversarial,Health,"Q?",No,No,"",src\n', "Incorrect Answers", "no incorrect answer"),
    ('Adversarial,Health,"Q?",No,No,"Yes; ; Maybe",src\n', "Incorrect Answers", "incorrect answer 2 is empty"),
    ('Adversarial,Health,"Q?",No,No,"Yes; no",src\n', "Incorrect Answers", "also listed as incorrect"),
    ('Adversarial,Health,"Q?",No,No\n', "columns", "expected 7 columns, got 5"),
    ('Adversarial,,"Q?",No,No,Yes,src\n', "Category", "empty category"),
])
def test_bad_rows_name_their_line_and_field(tmp_path, bad, field, problem):
    path = tmp_path / "TruthfulQA.csv"
    # a quoted field over two lines before the bad row: the reported line is the file's line
    multiline = 'Adversarial,Health,"A question\nover two lines?",No,"No","Yes",src\n'
    path.write_text(CSV_HEADER + GOOD + multiline + bad, encoding="utf-8")
    with pytest.raises(DataError) as err:
        truthfulqa.read(path)
    assert (err.value.source, err.value.where, err.value.field) == ("TruthfulQA.csv", 5, field)
    assert problem in str(err.value)


def test_wrong_header_is_reported(tmp_path):
    path = tmp_path / "TruthfulQA.csv"
    path.write_text("Type,Category,Question,Answer\n" + GOOD, encoding="utf-8")
    with pytest.raises(DataError, match="TruthfulQA.csv, line 1: expected the header"):
        truthfulqa.read(path)


def test_repeats_and_the_option_cap_are_recorded_not_hidden(tmp_path):
    many = "; ".join(f"Wrong {i}" for i in range(1, 16))  # 15 incorrect answers: 12 fit beside the best one
    path = tmp_path / "TruthfulQA.csv"
    path.write_text(CSV_HEADER + 'A,Health,"Q1?",Right,Right,"Wrong; wrong; Other;",s\n'
                    + f'A,Health,"Q2?",Right,Right,"{many}",s\n', encoding="utf-8")
    first, second = truthfulqa.read(path, categories=["Health"])
    assert sorted(first.options.values()) == ["Other", "Right", "Wrong"]
    assert first.provenance["duplicates_dropped"] == 1 and "incorrect_dropped" not in first.provenance
    assert len(second.options) == truthfulqa.MAX_OPTIONS == 13 and second.provenance["incorrect_dropped"] == 3
    assert "Wrong 13" not in second.options.values() and "Wrong 12" in second.options.values()


# --- the benchmark table and the variable option count ---

def test_suite_table_keeps_ten_and_the_extra_is_apart():
    assert len(BENCHMARKS) == 10 and "truthfulqa_med" not in BENCHMARKS
    assert list(EXTRA_BENCHMARKS) == ["truthfulqa_med"] and "truthfulqa_med" in ALL_BENCHMARKS
    with pytest.raises(KeyError, match="valid: .*truthfulqa_med"):
        get_benchmark("truthfulqa")


@pytest.mark.parametrize("letters, ok", [
    ("AB", True), ("ABCDEFGHIJKLM", True), ("A", False), ("ABD", False), ("BA", False), ("ABCDEFGHIJKLMN", False),
])
def test_variable_option_count_is_validated(letters, ok):
    record = Record("truthfulqa-0001", "truthfulqa_med", "en", "test", "Q?",
                    {l: f"text {l}" for l in letters}, letters[0])
    if ok:
        assert validate(record, "x.jsonl", 3) is record
    else:
        with pytest.raises(DataError, match="x.jsonl, line 3, field 'options'"):
            validate(record, "x.jsonl", 3)


def test_suite_benchmarks_still_need_their_exact_letters():
    with pytest.raises(DataError, match="options"):
        validate(Record("m-1", "medqa", "en", "test", "Q?", {"A": "a", "B": "b"}, "A"), "x", 1)


def test_scoring_reaches_the_later_letters():
    doc = {"answer": "K", "options": [f"o{i}" for i in range(12)]}
    logliks = [(-5.0, False)] * 10 + [(-0.1, True), (-4.0, False)]
    scores = process_results(doc, logliks)
    assert scores["acc"] == 1.0 and scores["strict_acc"] == 1.0


# --- store, loader, tasks ---

def test_import_folder_and_the_zero_shot_dataset(shared_data, tmp_path, monkeypatch):
    assert import_folder(shared_data, tmp_path, benchmarks=["truthfulqa_med"]) == {"truthfulqa_med/en/test": 90}
    stored = read_records(tmp_path, "truthfulqa_med", "en", "test")
    assert stored == truthfulqa.read(shared_data / LAYOUT["truthfulqa"], root=shared_data)  # round trip
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path))
    ds = loader.load_task_dataset(benchmark="truthfulqa_med", language="en")
    assert list(ds) == ["test"] and ds["test"].num_rows == 90  # no few-shot split: zero-shot
    assert ds["test"][0]["options"] == list(stored[0].options.values())


def test_missing_translation_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path))
    monkeypatch.delenv("MEDTASKS_DATA", raising=False)
    with pytest.raises(MissingData, match="medeval translate --benchmarks truthfulqa_med --languages zh"):
        loader.load_task_dataset(benchmark="truthfulqa_med", language="zh")




def test_tasks_have_their_own_group_outside_the_suite():
    folder = generate.TASKS_DIR / generate.EXTRA_DIR["truthfulqa_med"]
    group = load_task_yaml(folder / "_truthfulqa.yaml")
    langs = ["en", "es", "de", "pt", "ru", "fr", "ar", "zh"]
    assert group["group"] == "medeval_truthfulqa" and group["task"] == [f"truthfulqa_med_{l}" for l in langs]
    assert {m["weight_by_size"] for m in group["aggregate_metric_list"]} == {False}
    suite_members = {t for p in generate.TASKS_DIR.rglob("_medeval*.yaml") for t in load_task_yaml(p)["task"]}
    assert not {t for t in suite_members if t.startswith("truthfulqa")}
    template = load_task_yaml(generate.TASKS_DIR / generate.template_name("zero_shot", "single"))
    assert template["num_fewshot"] == 0 and "fewshot_split" not in template
    suite = load_task_yaml(generate.TASKS_DIR / generate.TEMPLATE)
    same = ("description", "doc_to_text", "doc_to_choice", "target_delimiter", "process_results", "metric_list")
    assert {k: template[k] for k in same} == {k: suite[k] for k in same}  # BioMistral's template and metrics
    task = load_task_yaml(folder / "truthfulqa_med_ar.yaml")
    assert task["dataset_kwargs"] == {"benchmark": "truthfulqa_med", "language": "ar"}
    assert task["tag"] == ["medeval_truthfulqa_med"] and template["metadata"]["regime"] == "zero_shot"


def test_lm_eval_indexes_the_tasks_and_the_group():
    """lm-eval's own indexer on our folder (the full TaskManager, ~7-30 s, is exercised by test_tasks.py)."""
    from lm_eval.tasks._index import Kind, TaskIndex

    index = TaskIndex().build([generate.TASKS_DIR])
    assert index["medeval_truthfulqa"].kind == Kind.GROUP
    task = index["truthfulqa_med_zh"]
    assert task.kind == Kind.TASK and task.cfg["num_fewshot"] == 0  # the template was included


# --- translation and lm_eval ---

def _translated_store(shared_data, store, count):
    from libre_server import FakeLibre

    from translation.backends import get_backend
    from translation.pipeline import translate_store

    import_folder(shared_data, store, benchmarks=["truthfulqa_med"])
    english = read_records(store, "truthfulqa_med", "en", "test")[:count]
    write_records(store, english)
    with FakeLibre() as server:
        summary = translate_store(store, ["truthfulqa_med"], ["test"], ["fr"], get_backend("libre", url=server.url),
                                  progress=False)
    return english, summary


def test_translation_keeps_options_letters_and_key(shared_data, tmp_path):
    english, summary = _translated_store(shared_data, tmp_path, 12)
    french = {r.id: r for r in read_records(tmp_path, "truthfulqa_med", "fr", "test")}
    rejected = summary["truthfulqa_med/fr/test"]["rejected"]
    assert len(french) + rejected == 12 and len(french) >= 10, summary
    for record in english:
        if record.id in french:
            twin = french[record.id]
            assert list(twin.options) == list(record.options) and twin.answer == record.answer
            assert twin.provenance["kind"] == "translation" and twin.question != record.question


def test_lm_eval_runs_english_and_translated_tasks_on_a_tiny_model(shared_data, tiny_llama, tmp_path):
    store = tmp_path / "store"
    english, _ = _translated_store(shared_data, store, 4)
    french = read_records(store, "truthfulqa_med", "fr", "test")
    out = tmp_path / "results"
    proc = run_lm_eval(tiny_llama, "truthfulqa_med_en,truthfulqa_med_fr", out, store=store, data=shared_data, limit=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, samples = load_run(out)
    for task, records in (("truthfulqa_med_en", english), ("truthfulqa_med_fr", french)):
        metrics = results["results"][task]
        assert results["n-shot"][task] == 0 and results["n-samples"][task]["effective"] == 3
        expected = recomputed(samples[task])
        for metric in ("acc", "strict_acc", "brier"):  # each follows from the logged log-likelihoods
            assert metrics[f"{metric},none"] == pytest.approx(expected[metric])
        first = next(r for r in records if r.id == samples[task][0]["doc"]["id"])
        prompt = samples[task][0]["arguments"]["gen_args_0"]["arg_0"]
        assert prompt == build_prompt({"question": first.question, "options": first.options})  # zero-shot
        assert len(samples[task][0]["resps"]) == len(first.options)  # one letter per option, however many
        assert samples[task][0]["target"] == first.answer
