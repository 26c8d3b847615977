"""Bad input: each case is a small file written here; the error names the file, the place and the field."""
import json

import pytest

from medtasks.records import DataError
from medtasks.sources import get_importer, IMPORTERS

Q = "What is the answer?"
MEDQA_ROW = {"question": Q, "answer": "x", "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
             "meta_info": "step1", "answer_idx": "B"}
MCQA_ROW = {"id": "m1", "question": Q, "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 2,
            "choice_type": "single", "exp": None, "subject_name": "X", "topic_name": None}
PQAL = {"111": {"QUESTION": Q, "CONTEXTS": ["one.", "two."], "final_decision": "yes"},
        "222": {"QUESTION": Q, "CONTEXTS": ["three."], "final_decision": "no"}}


def jsonl(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def with_(base, **changes):
    row = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is None:
            row.pop(key)
        else:
            row[key] = value
    return row


EN_CSV = "question,choice0,choice1,choice2,choice3,answer\nq1,a,b,c,d,0\nq2,a,b,c,d,3\n"
CASES = [
    # (id, files {name: text}, importer, file read, options, expected place, expected field)
    ("medqa-bad-json", {"test.jsonl": jsonl(MEDQA_ROW, '{"question": "oops",')}, "medqa", "test.jsonl", {},
     "line 2", None),
    ("medqa-missing-option", {"test.jsonl": jsonl(MEDQA_ROW, with_(MEDQA_ROW, options={"A": "a", "B": "b", "C": "c"}))},
     "medqa", "test.jsonl", {"benchmark": "medqa"}, "line 2", "options.D"),
    ("medqa-answer-not-an-option", {"test.jsonl": jsonl(with_(MEDQA_ROW, answer_idx="E"))}, "medqa", "test.jsonl",
     {"benchmark": "medqa"}, "line 1", "answer_idx"),
    ("medqa-empty-question", {"test.jsonl": jsonl(MEDQA_ROW, MEDQA_ROW, with_(MEDQA_ROW, question="  "))},
     "medqa", "test.jsonl", {}, "line 3", "question"),
    ("medqa-missing-field", {"test.jsonl": jsonl(with_(MEDQA_ROW, answer_idx=None))}, "medqa", "test.jsonl", {},
     "line 1", "answer_idx"),
    ("medmcqa-duplicate-id", {"dev.jsonl": jsonl(MCQA_ROW, with_(MCQA_ROW, question="Other?"))}, "medmcqa",
     "dev.jsonl", {}, "line 2", "id"),
    ("medmcqa-cop-range", {"dev.jsonl": jsonl(with_(MCQA_ROW, cop=0))}, "medmcqa", "dev.jsonl", {}, "line 1", "cop"),
    ("medmcqa-missing-option", {"dev.jsonl": jsonl(MCQA_ROW, with_(MCQA_ROW, id="m2", opd=None))}, "medmcqa",
     "dev.jsonl", {}, "line 2", "opd"),
    ("mmlu-columns", {"anatomy_test.csv": EN_CSV + "q3,a,b,c,1\n"}, "mmlu", "anatomy_test.csv", {}, "line 4",
     "columns"),
    ("mmlu-answer", {"anatomy_test.csv": EN_CSV + "q3,a,b,c,d,7\n"}, "mmlu", "anatomy_test.csv", {}, "line 4",
     "answer"),
    ("mmlu-empty-question", {"anatomy_test.csv": "q1,a,b,c,d,A\n ,a,b,c,d,B\n"}, "mmlu", "anatomy_test.csv", {},
     "line 2", "question"),
    ("pubmedqa-label-disagrees", {"ori_pqal.json": json.dumps(PQAL), "test_ground_truth.json": '{"111": "no"}'},
     "pubmedqa", "ori_pqal.json", {}, "key '111'", "111"),
    ("pubmedqa-unknown-test-id", {"ori_pqal.json": json.dumps(PQAL), "test_ground_truth.json": '{"999": "no"}'},
     "pubmedqa", "ori_pqal.json", {}, "key '999'", None),
    ("pubmedqa-bad-decision", {"ori_pqal.json": json.dumps(with_(PQAL, **{"222": {**PQAL["222"], "final_decision": "nah"}})),
                               "test_ground_truth.json": '{"111": "yes"}'}, "pubmedqa", "ori_pqal.json", {},
     "key '222'", "final_decision"),
    ("pubmedqa-bad-json", {"ori_pqal.json": '{\n"111": {\n"QUESTION": "x",,\n}}', "test_ground_truth.json": "{}"},
     "pubmedqa", "ori_pqal.json", {}, "line 3", None),
    ("pubmedqa-duplicate-key", {"ori_pqal.json": '{"111": {}, "111": {}}', "test_ground_truth.json": "{}"},
     "pubmedqa", "ori_pqal.json", {}, "key '111'", "111"),
    ("pool-bad-answer", {"dev_en.json": json.dumps([{"question": Q, "options": "(A) a\n(B) b\n(C) c\n(D) d",
                                                      "answer": "D", "source": "medmcqa", "context": ""},
                                                     {"question": Q, "options": "(A) a\n(B) b\n(C) c\n(D) d",
                                                      "answer": "(Z)", "source": "medmcqa", "context": ""}])},
     "fewshot_pool", "dev_en.json", {}, "item 2", "answer"),
    ("pool-unknown-source", {"dev_en.json": json.dumps([{"question": Q, "options": "(A) a", "answer": "(A)",
                                                         "source": "usmle-x", "context": ""}])},
     "fewshot_pool", "dev_en.json", {}, "item 1", "source"),
    ("pool-options", {"dev_en.json": json.dumps([{"question": Q, "options": "A) a\n(B) b", "answer": "(A)",
                                                  "source": "medmcqa", "context": ""}])},
     "fewshot_pool", "dev_en.json", {}, "item 1", "options"),
]


@pytest.mark.parametrize("files,importer,target,options,place,field_name", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_located(tmp_path, files, importer, target, options, place, field_name):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        get_importer(importer).read(tmp_path / target, **options)
    message = str(caught.value)
    assert message.startswith(caught.value.source) and caught.value.source.split(":")[0] in files
    assert place in message
    if field_name:
        assert f"field {field_name!r}" in message


def test_translated_mmlu_must_align(tmp_path):
    (tmp_path / "anatomy_test.csv").write_text(EN_CSV)
    english = get_importer("mmlu").read(tmp_path / "anatomy_test.csv")
    (tmp_path / "mmlu_French_test_anatomy_test.csv").write_text("q1,a,b,c,d,A\n")
    with pytest.raises(DataError, match=r"mmlu_French_test_anatomy_test.csv, line 1, field 'rows'.*1 rows.*2"):
        get_importer("mmlu").read(tmp_path / "mmlu_French_test_anatomy_test.csv", language="fr", english=english)
    (tmp_path / "mmlu_French_test_anatomy_test.csv").write_text("q1,a,b,c,d,A\nq2,a,b,c,d,C\n")
    with pytest.raises(DataError, match=r"line 2, field 'answer'.*misaligned"):
        get_importer("mmlu").read(tmp_path / "mmlu_French_test_anatomy_test.csv", language="fr", english=english)


@pytest.mark.parametrize("text,expected_answers", [
    ("question,choice0,choice1,choice2,choice3,answer\nq1,a,b,c,d,2\n", ["C"]),  # header, numeric
    ("q1,a,b,c,d,2\nq2,a,b,c,d,0\n", ["C", "A"]),  # no header, numeric
    ("question,choice0,choice1,choice2,choice3,answer\nq1,a,b,c,d,D\n", ["D"]),  # header, letters
    ('"q1, with a comma\nand a line break",a,b,c,d,B\nq2,a,b,c,d,b\n', ["B", "B"]),  # no header, letters
])
def test_mmlu_csv_shapes_are_sniffed(tmp_path, text, expected_answers):
    path = tmp_path / "college_biology_dev.csv"
    path.write_text(text, encoding="utf-8")
    records = get_importer("mmlu").read(path)
    assert [r.answer for r in records] == expected_answers
    assert {r.benchmark for r in records} == {"mmlu_college_biology"} and {r.split for r in records} == {"fewshot"}
    assert records[0].id == "mmlu_college_biology-dev-0001"


def test_mmlu_unknown_subject_file(tmp_path):
    (tmp_path / "astronomy_test.csv").write_text(EN_CSV)
    with pytest.raises(DataError, match="astronomy_test.csv.*valid"):
        get_importer("mmlu").read(tmp_path / "astronomy_test.csv")


def test_registry_lists_valid_names():
    assert set(IMPORTERS) >= {"medqa", "medmcqa", "pubmedqa", "mmlu", "fewshot_pool", "bioinstructqa", "hub"}
    assert all(imp.description and imp.name == name for name, imp in IMPORTERS.items())
    with pytest.raises(KeyError, match="unknown importer 'csv'; valid: medqa, medmcqa"):
        get_importer("csv")
