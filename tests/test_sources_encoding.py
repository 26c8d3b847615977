"""Files that are not UTF-8: one located error naming the file, the line, the byte and the likely encoding."""
import io
import json
import zipfile

import pytest

from medtasks import cli
from medtasks.records import DataError
from medtasks.sources import bioinstructqa, encoding, get_importer

ARABIC = "ما هو العضو المسؤول عن ضخ الدم في جسم الإنسان؟"
CHINESE = "下列哪种药物最常用于治疗原发性高血压患者的初始治疗？"
RUSSIAN = "Какой орган отвечает за перекачивание крови в организме человека?"
FRENCH = "Quel organe est responsable du pompage du sang dans le corps humain ? Le cœur, évidemment."
SPANISH = "¿Qué órgano es responsable de bombear la sangre? El corazón, según la opinión médica."
GERMAN = "Welches Organ ist für das Pumpen des Blutes verantwortlich? Das Herz, natürlich für Ärzte."


@pytest.mark.parametrize("text, codec, expected", [
    (ARABIC, "cp1256", "cp1256"),
    (CHINESE, "gb18030", "gb18030"),
    (RUSSIAN, "cp1251", "cp1251"),
    (RUSSIAN, "koi8_r", "koi8_r"),
    (FRENCH, "cp1252", "cp1252"),
    (SPANISH, "cp1252", "cp1252"),
    (GERMAN, "cp1252", "cp1252"),
    (FRENCH, "utf-16", "utf-16"),  # with its byte-order mark
])
def test_guess_names_the_legacy_encoding(text, codec, expected):
    assert encoding.guess_encoding((text + "\n").encode(codec)) == expected


def test_no_guess_for_bytes_of_no_language():
    assert encoding.guess_encoding(bytes(range(128, 256)) * 3) is None


def test_first_bad_byte_is_found_across_block_edges(monkeypatch):
    monkeypatch.setattr(encoding, "_CHUNK", 16)
    good = ("é" * 7 + "x\n") * 5  # two-byte characters cut by every 16-byte block edge
    assert encoding.first_bad_utf8(io.BytesIO(good.encode())) is None
    data = good.encode() + b"ok\nbad \xe9 here\n"
    offset, line, window = encoding.first_bad_utf8(io.BytesIO(data))
    assert (offset, line) == (data.index(b"\xe9 here"), 7) and b"bad \xe9 here" in window


def write_mmlu_csv(folder, text_rows, codec):
    path = folder / "mmlu/en/test/anatomy_test.csv"
    path.parent.mkdir(parents=True)
    header = "question,choice0,choice1,choice2,choice3,answer\n"
    path.write_bytes(header.encode() + "".join(text_rows).encode(codec))
    return path


def test_import_of_a_cp1256_csv_names_file_line_and_encoding(tmp_path, capsys):
    write_mmlu_csv(tmp_path / "data", ["Which organ?,a,b,c,d,0\n", f"{ARABIC},القلب,الكبد,الرئة,الكلى,0\n"], "cp1256")
    code = cli.main(["import", "--data", str(tmp_path / "data"), "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "mmlu/en/test/anatomy_test.csv, line 3 (byte 71)" in err and "looks like cp1256" in err
    assert "Traceback" not in err and not (tmp_path / "store" / "mmlu_anatomy").exists()


def test_import_of_a_gb18030_jsonl_names_file_line_and_encoding(tmp_path, capsys):
    path = tmp_path / "data/medqa/en/4_options/test.jsonl"
    path.parent.mkdir(parents=True)
    row = {"question": "Which?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "A"}
    chinese = {**row, "question": CHINESE, "options": {"A": "阿司匹林", "B": "氨氯地平", "C": "胰岛素", "D": "青霉素"}}
    path.write_bytes((json.dumps(row) + "\n" + json.dumps(chinese, ensure_ascii=False) + "\n").encode("gb18030"))
    code = cli.main(["import", "--data", str(tmp_path / "data"), "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and "medqa/en/4_options/test.jsonl, line 2 (byte" in err and "looks like gb18030" in err


@pytest.mark.parametrize("importer, name, text, codec, place", [
    ("truthfulqa", "TruthfulQA.csv",
     "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
     f"Adversarial,Health,{FRENCH},Oui,Oui,Non,x\n", "cp1252", "line 2 (byte"),
    ("pubmedqa", "ori_pqal.json", json.dumps({"1": {"QUESTION": RUSSIAN}}, ensure_ascii=False), "cp1251",
     "line 1 (byte 20)"),
    ("medmcqa", "dev.jsonl", json.dumps({"id": "x", "question": ARABIC}, ensure_ascii=False) + "\n", "cp1256",
     "line 1 (byte"),
])
def test_every_text_importer_reports_the_encoding(tmp_path, importer, name, text, codec, place):
    path = tmp_path / name
    path.write_bytes(text.encode(codec))
    (tmp_path / "test_ground_truth.json").write_text("{}")
    with pytest.raises(DataError) as err:
        get_importer(importer).read(path)
    assert str(err.value).startswith(f"{name}, {place}") and f"looks like {codec}" in str(err.value)


def test_a_zip_member_that_is_not_utf8_is_named_with_its_archive(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(bioinstructqa.base_member("test"),
                         json.dumps([{"corpus_name": "MedQA", "question": CHINESE}], ensure_ascii=False)
                         .encode("gb18030"))
    with pytest.raises(DataError, match=r"data.zip:base/overall_test\+prompt.json, line 1 \(byte \d+\).*gb18030"):
        bioinstructqa.read(path)
