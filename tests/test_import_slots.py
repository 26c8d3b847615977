"""`medeval import --data` reads a user's own translation of MedQA, MedMCQA, PubMedQA and MMLU from
`<benchmark>/<language>/...` in the English layout, for any language of the spec (one declared in a
spec file too), aligned with the English ids and checked against the English answers."""
import json
import shutil

import pytest

from medtasks import cli, spec
from medtasks.common import sha256_file
from medtasks.sources import exam_zh, import_folder
from medtasks.store import read_manifest, read_records, verify_store

HINDI = 'languages:\n  - {code: hi, name: Hindi, script: "[\\\\u0900-\\\\u097F]"}\n'
LETTERS = "ABCDE"
MMLU_HEADER = "question,choice0,choice1,choice2,choice3,answer\n"


@pytest.fixture
def hindi(tmp_path, monkeypatch):
    """Hindi declared in a spec file of the test's own (MEDEVAL_SPEC_PATH), as a user adds a language."""
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "hindi.yaml").write_text(HINDI, encoding="utf-8")
    monkeypatch.setenv(spec.SPEC_PATH_ENV, str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec.reload()
    yield "hi"
    monkeypatch.delenv(spec.SPEC_PATH_ENV)
    spec.reload()


def medqa_rows(tag, answers, n=4):
    return "".join(json.dumps({"question": f"{tag} question {i}?", "answer_idx": answer,
                               "options": {letter: f"{tag} {letter}{i}" for letter in LETTERS[:n]}}) + "\n"
                   for i, answer in enumerate(answers, 1))


def medmcqa_rows(tag, rows):
    return "".join(json.dumps({"id": row_id, "question": f"{tag} question {row_id}?", "cop": cop,
                               **{f"op{x}": f"{tag} {x}" for x in "abcd"}}) + "\n" for row_id, cop in rows)


def pqal(tag, decisions):
    return json.dumps({pmid: {"QUESTION": f"{tag} question {pmid}?", "CONTEXTS": [f"{tag} abstract {pmid}."],
                              "final_decision": label} for pmid, label in decisions.items()})


def mmlu_rows(tag, answers, header=True):
    return (MMLU_HEADER if header else "") + "".join(f"{tag} q{i},{tag} a,{tag} b,{tag} c,{tag} d,{a}\n"
                                                     for i, a in enumerate(answers, 1))


def english(**extra):
    """An English folder with a few questions of each family that has a translation slot."""
    return {
        "medqa/en/4_options/test.jsonl": medqa_rows("en", "BDA"),
        "medqa/en/5_options/test.jsonl": medqa_rows("en", "BDE", 5),
        "medmcqa/en/dev.jsonl": medmcqa_rows("en", [("m1", 1), ("m2", 3), ("m3", 4)]),
        "pubmedqa/en/ori_pqal.json": pqal("en", {"11": "yes", "12": "maybe", "13": "no"}),
        "pubmedqa/en/test_ground_truth.json": json.dumps({"11": "yes", "12": "maybe"}),
        "mmlu/en/test/anatomy_test.csv": mmlu_rows("en", "012"),
        **extra,
    }


def translation(code, **changes):
    """The user's translation of every file of `english()` into `code` (answers kept, text changed)."""
    files = {
        f"medqa/{code}/4_options/test.jsonl": medqa_rows(code, "BDA"),
        f"medqa/{code}/5_options/test.jsonl": medqa_rows(code, "BDE", 5),
        f"medmcqa/{code}/dev.jsonl": medmcqa_rows(code, [("m3", 4), ("m1", 1), ("m2", 3)]),  # any order: by id
        f"pubmedqa/{code}/ori_pqal.json": pqal(code, {"12": "maybe", "11": "yes"}),  # the test questions only
        f"pubmedqa/{code}/test_ground_truth.json": json.dumps({"11": "yes", "12": "maybe"}),
        f"mmlu/{code}/test/anatomy_test.csv": mmlu_rows(code, "ABC", header=False),
    }
    files.update({name.format(code=code): text for name, text in changes.items()})
    return {name: text for name, text in files.items() if text is not None}


def make(folder, files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def run_import(capsys, data, store, *extra):
    code = cli.main(["import", "--data", str(data), "--store", str(store), *extra])
    out, err = capsys.readouterr()
    return code, out, err


GROUPS = {"medqa": "medqa/{code}/4_options/test.jsonl", "medqa5": "medqa/{code}/5_options/test.jsonl",
          "medmcqa": "medmcqa/{code}/dev.jsonl", "pubmedqa": "pubmedqa/{code}/ori_pqal.json",
          "mmlu_anatomy": "mmlu/{code}/test/anatomy_test.csv"}


@pytest.mark.parametrize("code", ["fr", "hi"])
def test_every_family_imports_a_users_translation_aligned_with_english(tmp_path, capsys, hindi, code):
    data = make(tmp_path / "data", {**english(), **translation(code)})
    status, out, err = run_import(capsys, data, tmp_path / "store", "--languages", code)
    assert status == 0, err
    assert sorted(line.split()[0] for line in out.splitlines()[:-1]) == sorted(
        [f"{bench}/{code}/test" for bench in GROUPS] + ["pubmedqa/en/fewshot"])  # English examples kept
    store = tmp_path / "store"
    for bench, name in GROUPS.items():
        translated = read_records(store, bench, code, "test")
        source = name.format(code=code)
        assert all(r.question.startswith(f"{code} ") for r in translated)
        assert {r.provenance["kind"] for r in translated} == {"pretranslated"}
        assert {r.provenance["source"] for r in translated} == {source}
        assert {r.provenance["sha256"] for r in translated} == {sha256_file(data / source)}
        assert {r.provenance["aligned_to"] for r in translated} == {name.format(code="en")}
        assert {r.provenance["translation"] for r in translated} == {"the user's own translation (system not recorded)"}
    assert verify_store(store) == []
    # the same ids as English, each with the English answer (English imported on its own, for comparison)
    import_folder(data, tmp_path / "en", languages=["en"])
    for bench in GROUPS:
        english_answers = {r.id: r.answer for r in read_records(tmp_path / "en", bench, "en", "test")}
        assert {r.id: r.answer for r in read_records(store, bench, code, "test")} == english_answers, bench
    assert [r.id for r in read_records(store, "medqa", code, "test")] == ["medqa-test-0001", "medqa-test-0002",
                                                                        "medqa-test-0003"]


@pytest.mark.parametrize("changes, problem", [
    ({"medqa/{code}/4_options/test.jsonl": medqa_rows("fr", "BCA")},
     ("medqa/fr/4_options/test.jsonl, line 2, field 'answer': 'C' but the English question medqa-test-0002 has 'D': "
      "not a translation of it")),
    ({"medqa/{code}/5_options/test.jsonl": medqa_rows("fr", "BD", 5)},
     "medqa/fr/5_options/test.jsonl, line 2, field 'rows': 2 rows but the English file has 3: rows must align 1:1"),
    ({"medmcqa/{code}/dev.jsonl": medmcqa_rows("fr", [("m1", 1), ("m2", 3), ("m9", 4)])},
     "medmcqa/fr/dev.jsonl, line 3, field 'id': 'm9' is not a question of the English file"),
    ({"medmcqa/{code}/dev.jsonl": medmcqa_rows("fr", [("m1", 1), ("m2", 3)])},
     ("medmcqa/fr/dev.jsonl: 1 English test questions are not in it (first: m3): a translation holds every "
      "question of the English file")),
    ({"pubmedqa/{code}/ori_pqal.json": pqal("fr", {"11": "no", "12": "maybe"}),
      "pubmedqa/{code}/test_ground_truth.json": json.dumps({"11": "no", "12": "maybe"})},
     "pubmedqa/fr/ori_pqal.json, key '11', field 'answer': 'B' but the English question pubmedqa-11 has 'A'"),
    ({"pubmedqa/{code}/test_ground_truth.json": None},
     "pubmedqa/fr/ori_pqal.json: needs the test ids of test_ground_truth.json beside it (not found)"),
    ({"mmlu/{code}/test/anatomy_test.csv": mmlu_rows("fr", "ACC")},
     ("mmlu/fr/test/anatomy_test.csv, line 3, field 'answer': answer C but the English row mmlu_anatomy-test-0002 "
      "says B: rows misaligned")),
    ({"mmlu/{code}/mmlu_French_test_anatomy_test.csv": mmlu_rows("fr", "ABC", header=False)},
     ("mmlu/fr/mmlu_French_test_anatomy_test.csv: a second translation of mmlu_anatomy in fr beside "
      "mmlu/fr/test/anatomy_test.csv: keep one of them in the folder")),
])
def test_a_translation_that_does_not_align_is_one_line_and_nothing_is_written(tmp_path, capsys, changes, problem):
    data = make(tmp_path / "data", {**english(), **translation("fr", **changes)})
    status, out, err = run_import(capsys, data, tmp_path / "store")
    assert status == 2 and out == ""
    assert err.splitlines()[-1].startswith(f"medeval import: {problem}"), err
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.jsonl"))


@pytest.mark.parametrize("family", list(GROUPS))
def test_a_translation_without_its_english_file_names_both(tmp_path, capsys, family):
    english_name = GROUPS[family].format(code="en")
    files = {name: text for name, text in english().items()
             if name != english_name and not (family == "pubmedqa" and name.startswith("pubmedqa/en/"))}
    data = make(tmp_path / "data", {**files, **translation("fr")})
    status, _, err = run_import(capsys, data, tmp_path / "store", "--benchmarks", family)
    translated = GROUPS[family].format(code="fr")
    assert status == 2
    assert f"medeval import: {translated}: needs the English file {english_name} to align its rows with" in err


def test_skipped_slots_say_why(tmp_path, capsys):
    data = make(tmp_path / "data", {**english(), **translation("hi"), "mmlu/fr/dev/anatomy_dev.csv": "d,a,b,c,d,0\n",
                                    "pubmedqa/de/test_ground_truth.json": "{}", "medqa/es/test.jsonl": "{}"})
    status, out, err = run_import(capsys, data, tmp_path / "store")
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in err.splitlines()[1:]}
    assert status == 0 and "/hi/" not in out
    assert lines == {
        "medqa/hi/": f"language 'hi' is not defined (languages: {', '.join(spec.LANGUAGES)}; add it with a spec file, "
                     "MEDEVAL_SPEC_PATH)",
        "medmcqa/hi/": lines["medqa/hi/"], "pubmedqa/hi/": lines["medqa/hi/"], "mmlu/hi/": lines["medqa/hi/"],
        "mmlu/fr/dev/anatomy_dev.csv": "not a file of the layout (here: mmlu/fr/test/{subject}_test.csv, "
                                       "mmlu/fr/mmlu_French_test_{subject}_test.csv)",
        "pubmedqa/de/test_ground_truth.json": "read only together with pubmedqa/de/ori_pqal.json (not found)",
        "medqa/es/test.jsonl": "not a file of the layout (here: medqa/es/{n}_options/test.jsonl)",
    }


def test_the_native_chinese_exam_in_the_medqa_zh_slot_is_refused(shared_data, tmp_path, capsys):
    """The issue's scenario through the slot: MedQA Mainland written in MedQA's format as medqa/zh is not a
    translation of MedQA-USMLE (3426 rows against 1273), so nothing is imported."""
    mainland = exam_zh.read(shared_data / "medqa_mainland/zh/medqa_zh_4op.jsonl", benchmark="medqa_mainland")
    as_medqa = "".join(json.dumps({"question": r.question, "options": r.options, "answer_idx": r.answer},
                                  ensure_ascii=False) + "\n" for r in mainland)
    data = make(tmp_path / "data", {"medqa/zh/4_options/test.jsonl": as_medqa})
    (data / "medqa/en/4_options").mkdir(parents=True)
    shutil.copy(shared_data / "medqa/en/4_options/test.jsonl", data / "medqa/en/4_options/test.jsonl")
    status, out, err = run_import(capsys, data, tmp_path / "store", "--benchmarks", "medqa")
    assert status == 2 and out == ""
    assert err == ("medeval import: medqa/zh/4_options/test.jsonl, line 3426, field 'rows': 3426 rows but the English "
                   "file has 1273: rows must align 1:1\n")
    assert not (tmp_path / "store").exists() or read_manifest(tmp_path / "store") == {}


def test_a_real_translation_keeps_every_english_id(shared_data, tmp_path, hindi):
    """All 1273 MedQA questions, 'translated' here (text marked), import as medqa_hi with the English ids."""
    rows = [json.loads(line) for line in (shared_data / "medqa/en/4_options/test.jsonl").read_text().splitlines()]
    marked = "".join(json.dumps({**row, "question": "[hi] " + row["question"]}, ensure_ascii=False) + "\n"
                     for row in rows)
    data = make(tmp_path / "data", {"medqa/hi/4_options/test.jsonl": marked})
    (data / "medqa/en/4_options").mkdir(parents=True)
    shutil.copy(shared_data / "medqa/en/4_options/test.jsonl", data / "medqa/en/4_options/test.jsonl")
    written = import_folder(data, tmp_path / "store", benchmarks=["medqa"])
    assert written == {"medqa/en/test": 1273, "medqa/hi/test": 1273}
    english_records = read_records(tmp_path / "store", "medqa", "en", "test")
    hindi_records = read_records(tmp_path / "store", "medqa", "hi", "test")
    assert [(r.id, r.answer, "[hi] " + r.question) for r in english_records] == [
        (r.id, r.answer, r.question) for r in hindi_records]
    assert spec.parse_task("medqa_hi")[1] == "hi"  # the suite exists in the spec's new language
