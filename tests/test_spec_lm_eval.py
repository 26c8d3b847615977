"""A benchmark and a language the package does not know, declared in a spec file made here, run in plain
`lm_eval` (no --include_path) end to end: the README's "add a benchmark" recipe, as a test."""
import csv
import math

import pytest
from lm_eval_run import load_run, run_lm_eval

from medtasks import spec
from medtasks.prompts import build_prompt

QUESTIONS = [  # (question, options, answer as 1-based index): CSV rows of a made-up Icelandic exam
    ("Hvaða líffæri framleiðir insúlín?", ["Lifur", "Bris", "Nýru", "Milta"], 2),
    ("Hver er eðlilegur hjartsláttur fullorðins í hvíld?", ["20-40", "60-100", "120-160", "180-200"], 2),
    ("Hvaða vítamín myndast í húðinni í sólarljósi?", ["A", "B12", "C", "D"], 4),
    ("Hvaða blóðflokkur er alhliða gjafi?", ["O neikvæður", "AB jákvæður", "A jákvæður", "B neikvæður"], 1),
    ("Hvar er hnéskelin?", ["Í olnboga", "Í hné", "Í öxl", "Í mjöðm"], 2),
]
TRAIN = [(f"Æfing {i}: {question}", options, answer) for i, (question, options, answer) in enumerate(QUESTIONS)]
SPEC = """
languages:
  - {code: is, name: Icelandic, script: "[A-Za-zÁÐÉÍÓÚÝÞÆÖáðéíóúýþæö]"}
benchmarks:
  - key: iceland_exam
    title: Icelandic medical exam
    languages: [is]
    letters: ABCD
    regime: native_3shot
    data:
      format: csv
      test: exam/test.csv
      train: exam/train.csv
      fields: {question: spurning, options: [a, b, c, d], answer: svar, id: nr}
      answer_format: index1
"""


def write_csv(path, rows, offset):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["nr", "spurning", "a", "b", "c", "d", "svar"])
        for i, (question, options, answer) in enumerate(rows):
            writer.writerow([f"q{offset + i}", question, *options, answer])


@pytest.fixture(scope="module")
def user_run(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    write_csv(folder / "exam/test.csv", QUESTIONS, 100)
    write_csv(folder / "exam/train.csv", TRAIN, 200)
    (folder / "iceland.yaml").write_text(SPEC, encoding="utf-8")
    out, store = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("store")
    env = {spec.SPEC_PATH_ENV: str(folder), "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    proc = run_lm_eval(tiny_llama, "iceland_exam_is", out, store=store, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_run(out)


def test_plain_lm_eval_runs_a_benchmark_in_a_language_the_package_does_not_know(user_run):
    results, samples = user_run
    rows = samples["iceland_exam_is"]
    assert [s["doc"]["id"] for s in rows] == [f"q{100 + i}" for i in range(len(QUESTIONS))]  # every question, once
    assert [s["doc"]["answer"] for s in rows] == ["B", "B", "D", "A", "B"]  # index1 answers -> letters
    config = results["configs"]["iceland_exam_is"]
    assert config["metadata"]["regime"] == "native_3shot" and results["n-shot"]["iceland_exam_is"] == 3


def test_the_score_follows_from_the_samples(user_run):
    results, samples = user_run
    rows = samples["iceland_exam_is"]
    logliks = [[float(s["resps"][i][0][0]) for i in range(4)] for s in rows]  # samples store them as text
    correct = [max(range(4), key=ll.__getitem__) == "ABCD".index(s["doc"]["answer"]) for ll, s in zip(logliks, rows)]
    assert results["results"]["iceland_exam_is"]["acc,none"] == pytest.approx(sum(correct) / len(rows))
    assert all(math.isfinite(x) and x < 0 for ll in logliks for x in ll)


def test_the_examples_are_the_exams_own_in_its_language(user_run):
    _, samples = user_run
    first = samples["iceland_exam_is"][0]
    prompt = first["arguments"]["gen_args_0"]["arg_0"]
    shown = sorted((prompt.index(f"**Question:** {q} "), q, o, a) for q, o, a in TRAIN if f"**Question:** {q} " in prompt)
    assert len(shown) == 3  # three examples from the train file, in the run's seeded order
    doc = first["doc"]
    examples = [{"question": q, "options": dict(zip("ABCD", o)), "answer": "ABCD"[a - 1]} for _, q, o, a in shown]
    assert prompt == build_prompt(doc | {"options": dict(zip("ABCD", doc["options"]))}, examples)
    assert all(s["arguments"]["gen_args_0"]["arg_0"].startswith(prompt.rsplit("**Question:**", 1)[0])
               for s in samples["iceland_exam_is"])  # the same examples for every question
