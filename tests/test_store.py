"""The store: validated records, atomic idempotent writes, located errors."""
import json

import pytest

from medtasks.records import DataError, Record
from medtasks.store import MissingData, read_manifest, read_records, split_path, write_records


def rec(i=1, **changes):
    data = dict(id=f"q{i}", benchmark="medqa", language="en", split="test", question="Which?",
                options={"A": "a", "B": "b", "C": "c", "D": "d"}, answer="B",
                provenance={"kind": "import", "source": "x.jsonl", "row": i})
    data.update(changes)
    return Record(**data)


def test_write_then_read_round_trips(tmp_path):
    written = write_records(tmp_path, [rec(1), rec(2)])
    assert written == {"medqa/en/test": 2}
    assert read_records(tmp_path, "medqa", "en", "test") == [rec(1), rec(2)]
    entry = read_manifest(tmp_path)["medqa/en/test"]
    assert entry["count"] == 2 and len(entry["sha256"]) == 64


def test_rewriting_is_idempotent_byte_for_byte(tmp_path):
    write_records(tmp_path, [rec(1), rec(2)])
    first = split_path(tmp_path, "medqa", "en", "test").read_bytes(), (tmp_path / "manifest.json").read_bytes()
    write_records(tmp_path, [rec(1), rec(2)])
    second = split_path(tmp_path, "medqa", "en", "test").read_bytes(), (tmp_path / "manifest.json").read_bytes()
    assert first == second
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".lock"]  # no temp files left behind


def test_duplicate_id_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(DataError, match=r"x.jsonl, line 2, field 'id': duplicate id 'q1'"):
        write_records(tmp_path, [rec(1), rec(1, provenance={"source": "x.jsonl", "row": 2})])
    assert not split_path(tmp_path, "medqa", "en", "test").exists()


@pytest.mark.parametrize("changes, field, problem", [
    ({"question": "  "}, "question", "empty question"),
    ({"options": {"A": "a", "B": "b", "C": "c"}}, "options", "expected options"),
    ({"options": {"A": "a", "B": "", "C": "c", "D": "d"}}, "options.B", "empty option text"),
    ({"answer": "E"}, "answer", "not one of the options"),
    ({"language": "xx"}, "language", "valid: en, es, de, pt, ru, fr, ar, zh"),
    ({"benchmark": "medqa9"}, "benchmark", "valid: mmlu_clinical_knowledge"),
])
def test_bad_records_name_file_line_and_field(tmp_path, changes, field, problem):
    path = split_path(tmp_path, "medqa", "en", "test")
    path.parent.mkdir(parents=True)
    good = json.loads(rec(1).to_json())
    bad = {**good, "id": "q2", **changes}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as err:
        read_records(tmp_path, "medqa", "en", "test")
    assert f"{path}, line 2, field '{field}'" in str(err.value) and problem in str(err.value)


def test_bad_json_line_is_located(tmp_path):
    path = split_path(tmp_path, "medqa", "en", "test")
    path.parent.mkdir(parents=True)
    path.write_text(rec(1).to_json() + "\n{oops\n")
    with pytest.raises(DataError, match=r"line 2: bad JSON"):
        read_records(tmp_path, "medqa", "en", "test")


def test_missing_split_says_where_it_looked(tmp_path):
    with pytest.raises(MissingData, match=r"medqa/zh/test is not in the store"):
        read_records(tmp_path, "medqa", "zh", "test")
