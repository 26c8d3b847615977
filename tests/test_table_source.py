"""The common layout of users' spec files (medtasks.sources.table): JSONL, CSV and JSON files written
here, read through a field mapping; every bad row is an error naming the file, the row and the field."""
import json
from pathlib import Path

import pytest

from medtasks.common import UsageError
from medtasks.records import DataError
from medtasks.sources import table
from medtasks.spec import DataSource

OPTIONS = {"A": "aspirin", "B": "beta blocker", "C": "calcium", "D": "digoxin"}


def source(tmp_path: Path, name: str, text: str, fields: dict, answer_format="letter", fmt=None, language="en",
           split="test") -> DataSource:
    path = tmp_path / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return DataSource(tmp_path / "spec.yaml", {(language, split): path}, fmt or name.rsplit(".", 1)[1],
                      fields, answer_format)


def jsonl(*rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def row(answer, **extra):
    return {"q": "Which drug?", "a": "aspirin", "b": "beta blocker", "c": "calcium", "d": "digoxin", "gold": answer,
            **extra}


COLUMNS = {"question": "q", "options": ["a", "b", "c", "d"], "answer": "gold"}


@pytest.mark.parametrize("answer_format,answer,letter", [
    ("letter", "C", "C"), ("letter", "c", "C"), ("letter", " B ", "B"),
    ("index0", 0, "A"), ("index0", "3", "D"), ("index1", 1, "A"), ("index1", "4", "D"),
    ("text", "calcium", "C"), ("text", " digoxin", "D"),
])
def test_single_answer_formats(tmp_path, answer_format, answer, letter):
    src = source(tmp_path, "exam.jsonl", jsonl(row(answer)), COLUMNS, answer_format)
    [record] = table.read(src, "medqa", "en", "test")
    assert (record.answer, record.options, record.question) == (letter, OPTIONS, "Which drug?")
    assert record.id == "medqa-test-0001" and record.split == "test"
    assert record.provenance["importer"] == "table" and record.provenance["source"] == "data/exam.jsonl"
    assert record.provenance["row"] == 1 and record.provenance["spec"] == "spec.yaml"


@pytest.mark.parametrize("answer_format,answer,letters", [
    ("letter", ["C", "a"], "AC"), ("letter", "A,C", "AC"), ("letter", "c; a", "AC"), ("letter", "AC", "AC"),
    ("letter", "B", "B"), ("letter", "ABCDE", "ABCDE"),
    ("index0", [0, 2], "AC"), ("index0", "0,2", "AC"), ("index1", "1 3", "AC"), ("index1", [5], "E"),
    ("text", ["calcium", "aspirin"], "AC"), ("text", "beta blocker", "B"),
])
def test_multi_answer_formats(tmp_path, answer_format, answer, letters):
    fields = {"question": "q", "options": "opts", "answer": "gold"}
    data = {"q": "Which?", "opts": ["aspirin", "beta blocker", "calcium", "digoxin", "ethanol"], "gold": answer}
    [record] = table.read(source(tmp_path, "exam.jsonl", jsonl(data), fields, answer_format, language="fr"),
                          "frenchmedmcqa", "fr", "test")
    assert record.answer == letters


def test_csv_with_header_mapping_options_context_id_and_category(tmp_path):
    text = ("qid,passage,question,A,B,C,D,gold,topic\n"
            "x1,Some context.,\"Which drug, if any?\",aspirin,beta blocker,calcium,digoxin,2,cardio\n"
            "\n"
            "x2,,Next?,one,two,three,four,0,renal\n")
    fields = {"question": "question", "options": ["A", "B", "C", "D"], "answer": "gold", "context": "passage",
              "id": "qid", "category": "topic"}
    first, second = table.read(source(tmp_path, "exam.csv", text, fields, "index0"), "medqa", "en", "test")
    assert (first.id, first.question, first.context, first.answer) == ("x1", "Which drug, if any?", "Some context.", "C")
    assert (second.id, second.context, second.answer, second.provenance["row"]) == ("x2", None, "A", 4)
    assert first.provenance["category"] == "cardio"


def test_options_as_a_mapping_and_json_lists(tmp_path):
    fields = {"question": "q", "options": "choices", "answer": "gold"}
    rows = [{"q": "One?", "choices": {"a": "x", "b": "y", "c": "z", "d": "w"}, "gold": "b"},
            {"q": "Two?", "choices": ["x", "y", "z", "w"], "gold": "D"}]
    first, second = table.read(source(tmp_path, "exam.json", json.dumps(rows), fields), "medqa", "en", "test")
    assert first.options == {"A": "x", "B": "y", "C": "z", "D": "w"} and first.answer == "B"
    assert second.id == "medqa-test-0002" and second.provenance["row"] == "record 2"
    csv_text = 'q,choices,gold\nThree?,"[""x"", ""y"", ""z"", ""w""]",A\n'
    [third] = table.read(source(tmp_path, "exam.csv", csv_text, fields), "medqa", "en", "test")
    assert third.options == {"A": "x", "B": "y", "C": "z", "D": "w"}


def test_variable_option_counts_drop_trailing_empty_columns(tmp_path):
    fields = {"question": "q", "options": ["a", "b", "c", "d", "e"], "answer": "gold"}
    text = "q,a,b,c,d,e,gold\nFour?,w,x,y,z,,B\nFive?,v,w,x,y,z,E\n"
    four, five = table.read(source(tmp_path, "exam.csv", text, fields, language="zh"), "cmexam", "zh", "test")
    assert list(four.options) == ["A", "B", "C", "D"] and list(five.options) == list("ABCDE")


def test_dev_files_are_the_validation_split_and_languages_are_kept(tmp_path):
    src = source(tmp_path, "dev.jsonl", jsonl(row("A")), COLUMNS, language="fr", split="dev")
    assert table.read(src, "medqa", "fr", "dev")[0].split == "validation"
    [record] = table.read(src, "medqa", "fr", "validation")
    assert (record.language, record.id, record.provenance["kind"]) == ("fr", "medqa-validation-0001", "pretranslated")


BAD = [
    # (file name, text, fields, answer_format, benchmark, place, field)
    ("exam.jsonl", jsonl(row("A"), row("F")), COLUMNS, "letter", "medqa", 2, "gold"),
    ("exam.jsonl", jsonl(row(0), row(4)), COLUMNS, "index0", "medqa", 2, "gold"),
    ("exam.jsonl", jsonl(row(0)), COLUMNS, "index1", "medqa", 1, "gold"),
    ("exam.jsonl", jsonl(row("A,C")), COLUMNS, "letter", "medqa", 1, "gold"),  # several for a single-answer one
    ("exam.jsonl", jsonl(row("ethanol")), COLUMNS, "text", "medqa", 1, "gold"),
    ("exam.jsonl", jsonl(row("x", b="x", a="x")), COLUMNS, "text", "medqa", 1, "gold"),  # ambiguous text
    ("exam.jsonl", jsonl(row("")), COLUMNS, "letter", "medqa", 1, "gold"),
    ("exam.jsonl", jsonl(row("A", q=" ")), COLUMNS, "letter", "medqa", 1, "q"),
    ("exam.jsonl", jsonl(row("A", c="")), COLUMNS, "letter", "medqa", 1, "c"),
    ("exam.jsonl", jsonl({"q": "Q?", "a": "1", "b": "2", "c": "3", "gold": "A"}), COLUMNS, "letter", "medqa", 1, "d"),
    ("exam.jsonl", jsonl(row("A"), '{"q": "oops"'), COLUMNS, "letter", "medqa", 2, None),
    ("exam.jsonl", jsonl(row("A", id="k"), row("B", id="k")), {**COLUMNS, "id": "id"}, "letter", "medqa", 2, "id"),
    ("exam.jsonl", jsonl(row(["A", "A"])), COLUMNS, "letter", "frenchmedmcqa", 1, "gold"),
    ("exam.csv", "q,a,b,c,d,gold\nQ?,1,2,3,4,A\nQ?,1,2,3,B\n", COLUMNS, "letter", "medqa", 3, "columns"),
    ("exam.csv", "q,a,b,c,d,answer\nQ?,1,2,3,4,A\n", COLUMNS, "letter", "medqa", 2, "gold"),
    ("exam.csv", "", COLUMNS, "letter", "medqa", 1, None),
    ("exam.csv", "q,a,b,c,d,gold\nQ?,1,,3,4,A\n", COLUMNS, "letter", "medqa", 2, "b"),  # gap, not trailing
    ("exam.json", json.dumps([row("A"), "text"]), COLUMNS, "letter", "medqa", "record 2", None),
    ("exam.json", json.dumps([{"q": "Q?", "o": {"a": "x", "c": "y"}, "gold": "A"}]),
     {"question": "q", "options": "o", "answer": "gold"}, "letter", "medqa", "record 1", "o"),
    ("exam.json", json.dumps([{"q": "Q?", "o": ["x", "y", "z"], "gold": "A"}]),
     {"question": "q", "options": "o", "answer": "gold"}, "letter", "medqa", "record 1", "options"),  # 3 of 4
]


@pytest.mark.parametrize("name,text,fields,answer_format,benchmark,place,field_name", BAD)
def test_bad_rows_name_file_place_and_field(tmp_path, name, text, fields, answer_format, benchmark, place, field_name):
    language = "fr" if benchmark == "frenchmedmcqa" else "en"
    src = source(tmp_path, name, text, fields, answer_format, language=language)
    with pytest.raises(DataError) as err:
        table.read(src, benchmark, language, "test")
    assert (err.value.source, err.value.where, err.value.field) == (f"data/{name}", place, field_name)


def test_a_split_the_spec_lacks_and_an_importer_benchmark_are_refused(tmp_path):
    src = source(tmp_path, "exam.jsonl", jsonl(row("A")), COLUMNS)
    with pytest.raises(UsageError, match="no train file in en"):
        table.read(src, "medqa", "en", "train")
    imported = DataSource(tmp_path / "spec.yaml", src.files, importer="medqa")
    with pytest.raises(UsageError, match="importer 'medqa'"):
        table.read(imported, "medqa", "en", "test")


SPEC = """
languages:
  - {code: hi, name: Hindi, script: "[\\u0900-\\u097F]"}
benchmarks:
  - key: hindi_multi_exam
    title: Hindi exam, several answers
    languages: [hi]
    letters: ABCD
    answers: multi
    data:
      format: csv
      test: files/test.csv
      fields: {question: prashn, options: [k, kh, g, gh], answer: uttar, category: vishay}
      answer_format: index1
"""


def test_a_user_spec_file_benchmark_reads_its_own_data(tmp_path, monkeypatch):
    from medtasks import spec

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "test.csv").write_text(
        "prashn,k,kh,g,gh,uttar,vishay\nकौन?,एक,दो,तीन,चार,\"1,3\",hridaya\nक्या?,एक,दो,तीन,चार,2,vrikk\n",
        encoding="utf-8")
    (tmp_path / "exam.yaml").write_text(SPEC, encoding="utf-8")
    monkeypatch.setenv(spec.SPEC_PATH_ENV, str(tmp_path / "exam.yaml"))
    try:
        bench = spec.reload().benchmarks["hindi_multi_exam"]
        first, second = table.read(bench.data, "hindi_multi_exam", "hi", "test")
    finally:
        monkeypatch.delenv(spec.SPEC_PATH_ENV)
        spec.reload()
    assert (first.answer, second.answer, first.language) == ("AC", "B", "hi")
    assert first.provenance["source"] == "files/test.csv" and first.provenance["category"] == "hridaya"
    assert first.provenance["spec"] == "exam.yaml" and first.id == "hindi_multi_exam-test-0002"
