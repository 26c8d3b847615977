"""Importers of the native-language exams (HEAD-QA, FrenchMedMCQA, MedQA Mainland, CMExam) on small
files written here: what they keep, what they leave out (with its reason), and where they fail."""
import json

import pytest

from medtasks.records import DataError
from medtasks.sources import exam_zh, frenchmedmcqa, head_qa


def headqa_file(tmp_path, name="test_HEAD.json", language="es", questions=None, category="nursery", exam="Cuaderno_2016_1_E"):
    questions = questions if questions is not None else [
        {"qid": "1", "qtext": "¿Uno?", "ra": "2", "answers": [{"aid": i, "atext": f"r{i}"} for i in (1, 2, 3, 4)],
         "image": ""},
        {"qid": "2", "qtext": "Vea la imagen", "ra": "1", "answers": [{"aid": i, "atext": f"s{i}"} for i in (1, 2, 3, 4)],
         "image": "./data/img1.png"},
        {"qid": "3", "qtext": "¿Tres?", "ra": 4, "answers": [{"aid": i, "atext": f"t{i}"} for i in (4, 3, 2, 1)],
         "image": ""},
    ]
    data = {"version": "1.0", "language": language,
            "exams": {exam: {"name": exam, "category": category, "year": "2016", "data": questions}}}
    path = tmp_path / language / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_head_qa_keeps_text_questions_excludes_images_and_maps_nursing(tmp_path):
    excluded = []
    records = head_qa.read(headqa_file(tmp_path), root=tmp_path, excluded=excluded)
    assert [r.id for r in records] == ["head_qa-Cuaderno_2016_1_E-1", "head_qa-Cuaderno_2016_1_E-3"]
    first, third = records
    assert (first.language, first.split, first.answer) == ("es", "test", "B")
    assert first.options == {"A": "r1", "B": "r2", "C": "r3", "D": "r4"}
    assert third.options == {"A": "t1", "B": "t2", "C": "t3", "D": "t4"} and third.answer == "D"  # aid order
    assert first.provenance["category"] == "nursing" and first.provenance["source"] == "es/test_HEAD.json"
    assert first.provenance["kind"] == "import"
    assert [(e.id, e.reason, e.group, e.row) for e in excluded] == [
        ("head_qa-Cuaderno_2016_1_E-2", "needs an image", "head_qa/es/test", "Cuaderno_2016_1_E/2")]


def test_head_qa_split_from_the_file_name_and_english_is_marked_translated(tmp_path):
    records = head_qa.read(headqa_file(tmp_path, "dev_HEAD_EN.json", "en"))
    assert {r.split for r in records} == {"validation"}
    assert {r.provenance["kind"] for r in records} == {"pretranslated"}


def test_head_qa_languages_share_ids_when_aligned(tmp_path):
    es, en = headqa_file(tmp_path), headqa_file(tmp_path, "test_HEAD_EN.json", "en")
    excluded = []
    records = head_qa.read_aligned([es, en], root=tmp_path, excluded=excluded)
    ids = {lang: [r.id for r in records if r.language == lang] for lang in ("es", "en")}
    assert ids["es"] == ids["en"] == ["head_qa-Cuaderno_2016_1_E-1", "head_qa-Cuaderno_2016_1_E-3"]
    assert sorted(e.group for e in excluded) == ["head_qa/en/test", "head_qa/es/test"]


@pytest.mark.parametrize("change,where,field_name", [
    (lambda qs: qs[0].update(ra="3"), "exam 'Cuaderno_2016_1_E' qid 1", "right answer"),
    (lambda qs: qs[1].update(image=""), "exam 'Cuaderno_2016_1_E' qid 2", "image"),
    (lambda qs: qs[0]["answers"].pop(), "exam 'Cuaderno_2016_1_E' qid 1", "option count"),
    (lambda qs: qs[2].update(qid="33"), None, "qid"),
])
def test_head_qa_files_that_disagree_fail_at_the_first_difference(tmp_path, change, where, field_name):
    es = headqa_file(tmp_path)
    questions = json.loads(es.read_text())["exams"]["Cuaderno_2016_1_E"]["data"]
    change(questions)
    en = headqa_file(tmp_path, "test_HEAD_EN.json", "en", questions)
    with pytest.raises(DataError) as err:
        head_qa.read_aligned([es, en], root=tmp_path)
    assert (err.value.source, err.value.where, err.value.field) == ("en/test_HEAD_EN.json", where, field_name)
    assert "es/test_HEAD.json" in str(err.value)


def test_head_qa_two_files_of_one_language_are_refused(tmp_path):
    es = headqa_file(tmp_path)
    with pytest.raises(DataError, match="another language"):
        head_qa.read_aligned([es, es])


def q(**changes):
    row = {"qid": "1", "qtext": "¿Uno?", "ra": "2", "answers": [{"aid": i, "atext": f"r{i}"} for i in (1, 2, 3, 4)],
           "image": ""}
    row.update(changes)
    return row


@pytest.mark.parametrize("questions,category,where,field_name", [
    ([q(ra="7")], "medicine", "exam 'X' qid 1", "ra"),
    ([q(ra="two")], "medicine", "exam 'X' qid 1", "ra"),
    ([q(qtext=" ")], "medicine", "exam 'X' qid 1", "qtext"),
    ([q(answers=[{"aid": 1, "atext": "a"}, {"aid": 3, "atext": "c"}])], "medicine", "exam 'X' qid 1", "answers"),
    ([q(answers=[{"aid": 1, "atext": "a"}, {"aid": 1, "atext": "c"}])], "medicine", "exam 'X' qid 1", "answers[1].aid"),
    ([q(), q()], "medicine", "exam 'X' question 2", "qid"),
    ([q(qid=None)], "medicine", "exam 'X' question 1", "qid"),
    ([q()], "dentistry", "exam 'X'", "category"),
    ([q(answers=[{"aid": i, "atext": "a"} for i in (1, 2, 3)])], "medicine", "exam 'X' qid 1", "options"),  # 3 < 4
])
def test_head_qa_bad_rows_name_the_place_and_field(tmp_path, questions, category, where, field_name):
    path = headqa_file(tmp_path, questions=questions, category=category, exam="X")
    with pytest.raises(DataError) as err:
        head_qa.read(path)
    assert (err.value.where, err.value.field) == (where, field_name)


def french_row(i, correct, **changes):
    row = {"id": f"id{i}", "question": f"Question {i} ?", "answers": {k: f"{k}{i}" for k in "abcde"},
           "correct_answers": correct, "subject_name": "pharmacie", "nbr_correct_answers": len(correct)}
    row.update(changes)
    return row


def french_file(tmp_path, rows, name="test.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_frenchmedmcqa_multi_and_single_subsets(tmp_path):
    rows = [french_row(1, ["c"]), french_row(2, ["e", "a"]), french_row(3, ["b", "c", "d"])]
    path = french_file(tmp_path, rows, "dev.json")
    excluded = []
    every = frenchmedmcqa.read(path, "frenchmedmcqa", excluded=excluded)
    assert [(r.id, r.answer, r.split) for r in every] == [("id1", "C", "validation"), ("id2", "AE", "validation"),
                                                          ("id3", "BCD", "validation")]
    assert every[1].options == {"A": "a2", "B": "b2", "C": "c2", "D": "d2", "E": "e2"} and not excluded
    single = frenchmedmcqa.read(path, "frenchmedmcqa_single", excluded=excluded)
    assert [r.id for r in single] == ["id1"] and single[0].provenance["subject_name"] == "pharmacie"
    assert [(e.id, e.reason, e.group, e.row) for e in excluded] == [
        ("id2", "several correct answers (in frenchmedmcqa)", "frenchmedmcqa_single/fr/validation", 2),
        ("id3", "several correct answers (in frenchmedmcqa)", "frenchmedmcqa_single/fr/validation", 3)]


def test_frenchmedmcqa_a_repeated_row_is_kept_once_and_counted(tmp_path):
    rows = [french_row(1, ["c"]), french_row(2, ["a"]), french_row(1, ["c"])]
    excluded = []
    records = frenchmedmcqa.read(french_file(tmp_path, rows), excluded=excluded)
    assert [r.id for r in records] == ["id1", "id2"]
    assert [(e.id, e.reason, e.row, e.detail) for e in excluded] == [("id1", "repeated row", 3, "same as record 1")]


@pytest.mark.parametrize("rows,where,field_name", [
    ([french_row(1, ["c"]), french_row(1, ["d"])], "record 2", "id"),  # same id, other content
    ([french_row(1, ["f"])], "record 1", "correct_answers"),
    ([french_row(1, [])], "record 1", "correct_answers"),
    ([french_row(1, ["a", "a"])], "record 1", "correct_answers"),
    ([french_row(1, ["a", "b"], nbr_correct_answers=3)], "record 1", "nbr_correct_answers"),
    ([french_row(1, ["a"], answers={"a": "x", "b": "y", "c": "z", "d": "w"})], "record 1", "answers.E"),
    ([french_row(1, ["a"], answers={"a": "x", "b": "", "c": "z", "d": "w", "e": "v"})], "record 1", "answers.b"),
    ([french_row(1, ["a"], question="")], "record 1", "question"),
])
def test_frenchmedmcqa_bad_rows(tmp_path, rows, where, field_name):
    with pytest.raises(DataError) as err:
        frenchmedmcqa.read(french_file(tmp_path, rows))
    assert (err.value.source, err.value.where, err.value.field) == ("test.json", where, field_name)


def zh_row(pid, answer, n=5, **changes):
    row = {"problem_id": pid, "problem_text": f"问题{pid}", "choices": [f"选项{pid}{k}" for k in range(n)],
           "answer": answer, "points": 1, "text_only": True}
    row.update(changes)
    return row


def zh_file(tmp_path, rows):
    path = tmp_path / "cmexam.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cmexam_subsets_and_exclusions(tmp_path):
    rows = [zh_row(0, ["c"]), zh_row(1, ["a", "d"], n=4), zh_row(2, ["b", "c", "e"], n=4), zh_row(3, ["b"], n=4),
            zh_row(4, ["a"], text_only=False)]
    path = zh_file(tmp_path, rows)
    excluded = []
    single = exam_zh.read(path, "cmexam", excluded=excluded)
    assert [(r.id, r.answer, len(r.options)) for r in single] == [("cmexam-test-0000", "C", 5),
                                                                  ("cmexam-test-0003", "B", 4)]
    multi = exam_zh.read(path, "cmexam_multi", excluded=excluded)
    assert [(r.id, r.answer) for r in multi] == [("cmexam-test-0001", "AD")]
    assert [(e.benchmark, e.id, e.reason) for e in excluded] == [
        ("cmexam", "cmexam-test-0001", "several correct answers (in cmexam_multi)"),
        ("cmexam", "cmexam-test-0002", "several correct answers (in cmexam_multi)"),
        ("cmexam", "cmexam-test-0004", "needs an image"),
        ("cmexam_multi", "cmexam-test-0000", "one correct answer (in cmexam)"),
        ("cmexam_multi", "cmexam-test-0002", "answer names an option the row lacks"),
        ("cmexam_multi", "cmexam-test-0003", "one correct answer (in cmexam)"),
        ("cmexam_multi", "cmexam-test-0004", "needs an image")]


def test_medqa_mainland_versions_share_ids_and_record_repeated_options(tmp_path):
    rows = [zh_row(7, ["b"], n=4, choices=["甲", "乙", "甲", "丁"])]
    four = exam_zh.read(zh_file(tmp_path, rows), "medqa_mainland")
    assert four[0].id == "medqa_mainland-test-0007" and four[0].provenance["repeated_options"] == ["C"]
    five = exam_zh.read(zh_file(tmp_path, [zh_row(7, ["b"])]), "medqa5_mainland")
    assert five[0].id == four[0].id and len(five[0].options) == 5


@pytest.mark.parametrize("benchmark,rows,line,field_name", [
    ("medqa_mainland", [zh_row(0, ["a", "b"], n=4)], 1, "answer"),  # no multi-answer subset to hold it
    ("medqa_mainland", [zh_row(0, ["e"], n=4)], 1, "answer"),  # not a letter of a 4-option benchmark
    ("medqa_mainland", [zh_row(0, ["a"], n=5)], 1, "choices"),
    ("cmexam", [zh_row(0, ["a"]), zh_row(0, ["b"])], 2, "problem_id"),
    ("cmexam", [zh_row(0, ["a"]), zh_row("1", ["b"])], 2, "problem_id"),
    ("cmexam", [zh_row(0, "a")], 1, "answer"),
    ("cmexam", [zh_row(0, ["a", "a"])], 1, "answer"),
    ("cmexam", [zh_row(0, ["a"], choices=["x", " ", "y", "z"])], 1, "choices[1]"),
    ("cmexam", [zh_row(0, ["a"], problem_text="")], 1, "problem_text"),
    ("cmexam", [zh_row(0, ["a"], text_only="yes")], 1, "text_only"),
    ("cmexam", [zh_row(0, ["a"], n=3)], 1, "options"),  # CMExam has 4 or 5
])
def test_exam_zh_bad_rows(tmp_path, benchmark, rows, line, field_name):
    with pytest.raises(DataError) as err:
        exam_zh.read(zh_file(tmp_path, rows), benchmark)
    assert (err.value.where, err.value.field) == (line, field_name)
