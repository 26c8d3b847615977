"""`medeval import --data`: an unusable file is an error naming it, and importing nothing is never a success."""
import json

import pytest

from medtasks import cli

MEDQA_ROW = {"question": "Which?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "B"}
MMLU_HEADER = "question,choice0,choice1,choice2,choice3,answer\n"
TRUTHFULQA_HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"


def run_import(capsys, data, store, *extra):
    code = cli.main(["import", "--data", str(data), "--store", str(store), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def make(folder, files: dict):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name, text, problem", [
    ("medqa/en/4_options/test.jsonl", "", "no questions: the file is empty"),
    ("medqa/en/4_options/test.jsonl", "\n\n", "no questions: the file is empty"),
    ("medmcqa/en/dev.jsonl", "", "no questions: the file is empty"),
    ("mmlu/en/test/anatomy_test.csv", MMLU_HEADER, "no questions: the file holds only a header"),
    ("mmlu/en/test/anatomy_test.csv", "", "no questions: the file is empty"),
    ("truthfulqa/en/TruthfulQA.csv", TRUTHFULQA_HEADER, "no questions: the file holds only a header"),
    ("truthfulqa/en/TruthfulQA.csv", "", "no questions: the file is empty"),
    ("fewshot_pool/en/dev_en.json", "[]", "no items: the file holds an empty list"),
    ("pubmedqa/en/ori_pqal.json", "{}", "no questions: the file holds an empty object"),
])
def test_an_empty_or_header_only_file_is_an_error_naming_it(tmp_path, capsys, name, text, problem):
    data = make(tmp_path / "data", {name: text, "pubmedqa/en/test_ground_truth.json": '{"1": "yes"}'}
                if name.startswith("pubmedqa") else {name: text})
    code, out, err = run_import(capsys, data, tmp_path / "store")
    assert code == 2, (out, err)
    assert f"medeval import: {name}: {problem}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.jsonl"))


def test_a_folder_with_nothing_to_import_exits_non_zero(tmp_path, capsys):
    data = make(tmp_path / "data", {"notes.txt": "hello"})
    code, _, err = run_import(capsys, data, tmp_path / "store")
    assert code == 2 and "no files for any benchmark; nothing was imported" in err


def test_a_named_benchmark_without_its_file_fails_and_imports_nothing(tmp_path, capsys):
    data = make(tmp_path / "data", {"medqa/en/4_options/test.jsonl": json.dumps(MEDQA_ROW) + "\n"})
    code, _, err = run_import(capsys, data, tmp_path / "store", "--benchmarks", "medqa", "pubmedqa")
    assert code == 2 and "no files for pubmedqa (pubmedqa/en/ori_pqal.json); nothing was imported" in err
    assert not (tmp_path / "store" / "medqa").exists()  # all or nothing: medqa was not imported either


def test_a_usable_folder_imports_and_exits_zero(tmp_path, capsys):
    data = make(tmp_path / "data", {"medqa/en/4_options/test.jsonl": json.dumps(MEDQA_ROW) + "\n",
                                    "mmlu/en/test/anatomy_test.csv": MMLU_HEADER + "q1,a,b,c,d,0\n"})
    code, out, err = run_import(capsys, data, tmp_path / "store", "--benchmarks", "medqa", "mmlu_anatomy")
    assert code == 0, err
    assert "medqa/en/test" in out and "mmlu_anatomy/en/test" in out
    assert (tmp_path / "store/medqa/en/test.jsonl").read_text().count("\n") == 1


def test_pubmedqa_without_its_ground_truth_names_the_missing_file(tmp_path, capsys):
    data = make(tmp_path / "data", {"pubmedqa/en/ori_pqal.json": '{"1": {}}'})
    code, _, err = run_import(capsys, data, tmp_path / "store")
    assert code == 2 and "pubmedqa/en/ori_pqal.json: needs the test ids of test_ground_truth.json" in err


def test_a_translated_mmlu_file_without_english_names_both(tmp_path, capsys):
    data = make(tmp_path / "data", {"mmlu/fr/mmlu_French_test_anatomy_test.csv": "q,a,b,c,d,A\n"})
    code, _, err = run_import(capsys, data, tmp_path / "store")
    assert code == 2
    assert "mmlu/fr/mmlu_French_test_anatomy_test.csv: needs the English file mmlu/en/test/anatomy_test.csv" in err


# What was skipped, and why (stderr), and --languages.

EN_ANATOMY = MMLU_HEADER + "q1,a,b,c,d,0\nq2,a,b,c,d,1\n"
FR_ANATOMY = "q1 fr,a,b,c,d,A\nq2 fr,a,b,c,d,B\n"


def test_an_unknown_language_folder_is_reported_as_skipped(tmp_path, capsys):
    data = make(tmp_path / "data", {"mmlu/en/test/anatomy_test.csv": EN_ANATOMY,
                                    "mmlu/hi/mmlu_Hindi_test_anatomy_test.csv": FR_ANATOMY})
    code, out, err = run_import(capsys, data, tmp_path / "store")
    assert code == 0 and "mmlu_anatomy/en/test" in out and "/hi/" not in out
    assert "mmlu/hi/  language 'hi' is not defined (languages: en, es, de, pt, ru, fr, ar, zh" in err


def test_an_unknown_languages_code_exits_2_listing_the_defined_ones(tmp_path, capsys):
    data = make(tmp_path / "data", {"mmlu/en/test/anatomy_test.csv": EN_ANATOMY})
    code, out, err = run_import(capsys, data, tmp_path / "store", "--languages", "fr", "hi")
    assert code == 2 and out == ""
    assert err == "medeval import: --languages: 'hi' not defined; languages: en, es, de, pt, ru, fr, ar, zh\n"
    assert not (tmp_path / "store").exists()


def test_files_outside_the_layout_are_listed_with_their_reason(tmp_path, capsys):
    data = make(tmp_path / "data", {"mmlu/en/test/anatomy_test.csv": EN_ANATOMY, "README.md": "notes",
                                    "mystery/es/test.json": "{}", "mystery/en/test.json": "{}",
                                    "medqa/en/test.jsonl": "{}", "pubmedqa/en/test_ground_truth.json": "{}",
                                    ".DS_Store": "finder"})
    code, _, err = run_import(capsys, data, tmp_path / "store")
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in err.splitlines()[1:]}
    assert code == 0 and err.startswith(f"skipped in {data} (not imported):\n")
    assert lines == {
        "README.md": "not in a benchmark folder",
        "mystery/": "no importer reads this folder (read: " + lines["mystery/"].split("(read: ", 1)[1],
        "medqa/en/test.jsonl": "not a file of the layout (here: medqa/en/{n}_options/test.jsonl)",
        "pubmedqa/en/test_ground_truth.json": "read only together with pubmedqa/en/ori_pqal.json (not found)",
    }


def test_languages_select_the_translations_and_keep_the_english_examples(tmp_path, capsys):
    data = make(tmp_path / "data", {"mmlu/en/test/anatomy_test.csv": EN_ANATOMY,
                                    "mmlu/en/dev/anatomy_dev.csv": MMLU_HEADER + "d1,a,b,c,d,2\n",
                                    "mmlu/fr/mmlu_French_test_anatomy_test.csv": FR_ANATOMY,
                                    "mmlu/es/mmlu_Spanish_test_anatomy_test.csv": FR_ANATOMY})
    code, out, err = run_import(capsys, data, tmp_path / "store", "--languages", "fr")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[:-1]] == ["mmlu_anatomy/en/fewshot", "mmlu_anatomy/fr/test"]
    assert "not asked for (--benchmarks, --languages): 1 file of" in err  # the Spanish file


def test_a_named_benchmark_absent_in_a_named_language_fails(tmp_path, capsys):
    data = make(tmp_path / "data", {"medqa/en/4_options/test.jsonl": json.dumps(MEDQA_ROW) + "\n"})
    code, _, err = run_import(capsys, data, tmp_path / "store", "--benchmarks", "medqa", "--languages", "fr")
    assert code == 2 and "no files for medqa in fr, any benchmark in fr; nothing was imported" in err


def test_an_unknown_benchmark_exits_2_listing_the_valid_ones(tmp_path, capsys):
    code, _, err = run_import(capsys, tmp_path, tmp_path / "store", "--benchmarks", "medqa7")
    assert code == 2 and "--benchmarks: unknown benchmark 'medqa7'; valid: mmlu_clinical_knowledge" in err
