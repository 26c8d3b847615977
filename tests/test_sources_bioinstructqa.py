"""BioInstructQA's data.zip, on a small archive built here in exactly the release layout."""
import io
import json
import random
import zipfile

import pytest

from medtasks.records import DataError
from medtasks.sources import import_bioinstructqa
from medtasks.sources.common import iter_json_array
from medtasks.spec import LANGUAGES
from medtasks.store import read_records

OTHER = [code for code in LANGUAGES if code != "en"]


def shots(tag, letters="ABCD", context=None):
    return [{"context": context, "question": f"{tag} example {k}?", "options": {l: f"{tag}{k}{l}" for l in letters},
             "correct_answer_letter": letters[k % len(letters)]} for k in range(3)]


def row(identifier, corpus, letters, answer, fewshot_tag="s", context=None):
    out = {"identifier": identifier, "corpus_name": corpus, "task_type": "mcqa", "classes": list(letters),
           "question": f"Question {identifier}?", "options": {l: f"option {l} of {identifier}" for l in letters},
           "correct_answer_letter": answer, "context": context}
    for n in (1, 2, 3):
        out[f"few_shot_samples[{n}]"] = shots(f"{corpus}-{fewshot_tag if n == 2 else 's'}{n}", letters,
                                               "ctx" if context else None)
    return out


def translated(record, code):
    out = dict(record)
    out["question_translated"] = f"[{code}] {record['question']}"
    out["options_translated"] = {l: f"[{code}] {t}" for l, t in reversed(record["options"].items())}
    out["context_translated"] = f"[{code}] {record['context']}" if record["context"] else None
    return out


def base_rows():
    test = [row("q1", "MedQA", "ABCD", "B"), row("q2", "MedQA", "ABCD", "D", fewshot_tag="other"),
            row("p1", "PubMedQA", "ABC", "C", context="An abstract."), row("a1", "MMLU_anatomy", "ABCD", "A"),
            row("q1", "MedQA-5_options", "ABCDE", "E")]
    return {"test": test, "train": [row("t1", "MedQA", "ABCD", "A")],
            "validation": [row("v1", "MedQA", "ABCD", "C")]}


def build_zip(path, base=None, prefix="", languages=OTHER, extra_translated=()):
    base = base or base_rows()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for split, rows in base.items():
            archive.writestr(f"{prefix}base/overall_{split}+prompt.json", json.dumps(rows, indent=1))
        for code in languages:
            rows = [translated(r, code) for r in base["test"] + list(extra_translated)]
            archive.writestr(f"{prefix}langs_processed/{LANGUAGES[code].name}-full.json", json.dumps(rows))
    return path


def test_full_archive(tmp_path):
    store = tmp_path / "store"
    counts = import_bioinstructqa(build_zip(tmp_path / "data.zip", extra_translated=[row("v1", "MedQA", "ABCD", "C")]),
                                  store)
    for code in LANGUAGES:
        assert counts[f"medqa/{code}/test"] == 2 and counts[f"pubmedqa/{code}/test"] == 1
        assert counts[f"mmlu_anatomy/{code}/test"] == 1 and counts[f"medqa5/{code}/test"] == 1
    for code in OTHER:  # the translated file's v1 belongs to the English validation split
        assert counts[f"medqa/{code}/validation"] == 1
    assert counts["medqa/en/train"] == 1 and counts["medqa/en/validation"] == 1
    assert counts["medqa/en/fewshot1"] == 3 and counts["medqa5/en/fewshot3"] == 3
    assert not [k for k in counts if "fewshot" in k and "/en/" not in k]

    english, french = read_records(store, "medqa", "en", "test"), read_records(store, "medqa", "fr", "test")
    assert [r.id for r in english] == [r.id for r in french] == ["bioinstructqa-q1", "bioinstructqa-q2"]
    assert french[0].question == "[fr] Question q1?" and list(french[0].options) == ["A", "B", "C", "D"]
    assert french[0].options["A"] == "[fr] option A of q1" and french[0].answer == "B"
    assert french[0].provenance["kind"] == "pretranslated" and english[0].provenance["kind"] == "import"
    assert french[0].provenance["source"] == "data.zip:langs_processed/French-full.json"
    pub_zh = read_records(store, "pubmedqa", "zh", "test")[0]
    assert pub_zh.context == "[zh] An abstract." and list(pub_zh.options) == ["A", "B", "C"] and pub_zh.answer == "C"
    assert read_records(store, "pubmedqa", "en", "test")[0].context == "An abstract."
    assert read_records(store, "medqa5", "en", "test")[0].options["E"] == "option E of q1"


def test_fewshot_sets_keep_the_first_and_count_variants(tmp_path):
    store = tmp_path / "store"
    import_bioinstructqa(build_zip(tmp_path / "data.zip"), store, languages=["en"])
    set1, set2 = read_records(store, "medqa", "en", "fewshot1"), read_records(store, "medqa", "en", "fewshot2")
    assert [r.question for r in set1] == [f"MedQA-s1 example {k}?" for k in range(3)]
    assert [r.question for r in set2] == [f"MedQA-s2 example {k}?" for k in range(3)]  # q1's set, not q2's
    assert {r.provenance["distinct_sets"] for r in set2} == {2}
    assert {r.provenance["distinct_sets"] for r in set1} == {1}
    assert [r.answer for r in set1] == ["A", "B", "C"]
    pub = read_records(store, "pubmedqa", "en", "fewshot1")
    assert pub[0].context == "ctx" and set1[0].context is None


def test_selection_and_top_folder(tmp_path):
    zip_path = build_zip(tmp_path / "data.zip", prefix="data/", languages=["de", "ar"])
    counts = import_bioinstructqa(zip_path, tmp_path / "store", benchmarks=["pubmedqa"], languages=["de"])
    assert counts == {"pubmedqa/de/test": 1, "pubmedqa/en/fewshot1": 1 * 3, "pubmedqa/en/fewshot2": 3,
                      "pubmedqa/en/fewshot3": 3}
    with pytest.raises(DataError, match="French-full.json"):  # asked for a language the archive lacks
        import_bioinstructqa(zip_path, tmp_path / "store", languages=["fr"])
    with pytest.raises(KeyError, match="valid: en, es"):
        import_bioinstructqa(zip_path, tmp_path / "store", languages=["xx"])


def test_unknown_corpus_is_located(tmp_path):
    base = base_rows()
    base["test"][1]["corpus_name"] = "MedQA-6_options"
    with pytest.raises(DataError) as caught:
        import_bioinstructqa(build_zip(tmp_path / "data.zip", base), tmp_path / "store")
    assert str(caught.value).startswith("data.zip:base/overall_test+prompt.json, record 2, field 'corpus_name'")


def test_stray_identifier_and_ambiguous_member(tmp_path):
    zip_path = build_zip(tmp_path / "data.zip", languages=["ru"], extra_translated=[row("zz", "MedQA", "ABCD", "A")])
    with pytest.raises(DataError, match=r"Russian-full.json, record 6, field 'identifier'.*no English base split"):
        import_bioinstructqa(zip_path, tmp_path / "store", languages=["en", "ru"])
    with zipfile.ZipFile(zip_path, "a") as archive:  # a second copy elsewhere would be ambiguous
        archive.writestr("other/langs_processed/Russian-full.json", "[]")
    with pytest.raises(DataError, match="expected one member"):
        import_bioinstructqa(zip_path, tmp_path / "store", languages=["ru"])


def test_missing_translation_field(tmp_path):
    path = build_zip(tmp_path / "data.zip", languages=[])
    rows = [translated(r, "pt") for r in base_rows()["test"]]
    del rows[2]["context_translated"]
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("langs_processed/Portuguese-full.json", json.dumps(rows))
    with pytest.raises(DataError, match=r"Portuguese-full.json, record 3, field 'context_translated': missing"):
        import_bioinstructqa(path, tmp_path / "store", languages=["pt"])


def test_bad_json_member(tmp_path):
    path = tmp_path / "data.zip"
    build_zip(path, languages=[])
    with zipfile.ZipFile(path, "a") as archive:
        good = json.dumps(translated(base_rows()["test"][0], "es"))
        archive.writestr("langs_processed/Spanish-full.json", f'[{good}, {{"identifier": ]')
    with pytest.raises(DataError, match=r"Spanish-full.json, record 2: bad JSON"):
        import_bioinstructqa(path, tmp_path / "store", languages=["es"])


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_streamed_list_equals_json_load(chunk):
    rng = random.Random(chunk)
    data = [{"n": rng.randint(-10**9, 10**9), "x": rng.random(), "s": "é\"\\,]" * rng.randint(0, 5),
             "l": [None, True, False, 12345678901234567890], "nested": {"k": [1, [2, {"z": "]"}]]}}
            for _ in range(30)] + [1234567, "tail", [], {}]
    text = "  \n" + json.dumps(data, indent=rng.choice([None, 2]))
    got = list(iter_json_array(io.StringIO(text), "mem.json", chunk=chunk))
    assert [i for i, _ in got] == list(range(1, len(data) + 1))
    assert [e for _, e in got] == data


@pytest.mark.parametrize("text,where", [("{}", None), ('[1, 2', "record 2"), ("[1 2]", "record 2"),
                                        ('[{"a": 1}, {"a": }]', "record 2"), ("", None)])
def test_streamed_list_rejects_bad_json(text, where):
    with pytest.raises(DataError, match="bad JSON") as caught:
        list(iter_json_array(io.StringIO(text), "mem.json", chunk=2))
    assert caught.value.where == where
