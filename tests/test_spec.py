"""The benchmark spec: the naming grammar, the tables, and users' spec files."""
from pathlib import Path

import pytest

from medtasks import spec
from medtasks.common import UsageError
from medtasks.spec import names


@pytest.fixture
def spec_path(tmp_path, monkeypatch):
    """Point MEDEVAL_SPEC_PATH at a folder of the test's own; the registry is re-read around the test."""
    folder = tmp_path / "specs"
    folder.mkdir()
    monkeypatch.setenv(spec.SPEC_PATH_ENV, str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec.reload()
    yield folder
    monkeypatch.delenv(spec.SPEC_PATH_ENV)
    spec.reload()


def write_spec(folder: Path, text: str, data: dict[str, str] | None = None) -> Path:
    for name, content in (data or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, encoding="utf-8")
    path = folder / "exam.yaml"
    path.write_text(text, encoding="utf-8")
    spec.reload()
    return path


HINDI_EXAM = """
languages:
  - {code: hi, name: Hindi, script: "[\\\\u0900-\\\\u097F]"}
benchmarks:
  - key: hindi_exam
    title: Hindi medical exam
    languages: [hi]
    letters: ABCD
    data:
      test: exam/test.jsonl
      fields: {question: q, options: [a, b, c, d], answer: gold}
"""


def test_every_task_name_parses_back_to_its_benchmark_and_language():
    pairs = spec.task_pairs()
    assert len(pairs) == len(set(pairs))
    for benchmark, language in pairs:
        bench, lang = spec.parse_task(spec.task_name(benchmark, language))
        assert (bench.key, lang) == (benchmark, language)
    assert spec.parse_task("medqa5_mainland_zh")[0].key == "medqa5_mainland"
    assert spec.parse_task("mmlu_college_medicine_ar")[0].key == "mmlu_college_medicine"


@pytest.mark.parametrize("name", ["medqa", "medqa_xx", "head_qa_de", "frenchmedmcqa_en", "nothing_en"])
def test_names_outside_the_spec_are_refused(name):
    with pytest.raises(KeyError, match="not a task of this spec"):
        spec.parse_task(name)


def test_the_suite_is_ten_benchmarks_in_eight_languages_and_natives_stay_out_of_it():
    assert len(spec.BENCHMARKS) == 10 and spec.suite_languages() == ("en", "es", "de", "pt", "ru", "fr", "ar", "zh")
    assert not set(spec.NATIVE_BENCHMARKS) & set(spec.BENCHMARKS)
    assert {b.kind for b in spec.NATIVE_BENCHMARKS.values()} == {"native"}
    assert spec.get_benchmark("head_qa").native_languages == ("es",)  # head_qa_en is the authors' translation


def test_metric_table_and_regimes_agree():
    assert spec.metrics_for("single") == ("acc", "strict_acc", "ece", "brier")
    assert spec.metrics_for("multi") == ("hamming", "emr")
    for bench in spec.ALL_BENCHMARKS.values():
        regime = spec.regime_of(bench)
        if regime.shots == "english":
            assert bench.shots_from, bench.key
        assert bench.answers in ("single", "multi")


def test_chance_is_a_constant_only_where_it_is_one():
    assert spec.get_benchmark("pubmedqa").chance == pytest.approx(1 / 3)
    assert spec.get_benchmark("truthfulqa_med").chance is None  # varies with the categories evaluated
    assert spec.get_benchmark("frenchmedmcqa").chance is None


def test_group_names_are_reserved_and_distinct():
    reserved = names.reserved_names(spec.LANGUAGES)
    tags = {spec.benchmark_tag(b) for b in spec.ALL_BENCHMARKS}
    assert not reserved & tags
    assert not reserved & set(spec.task_names())


def test_a_user_spec_adds_a_language_and_a_benchmark(spec_path):
    write_spec(spec_path, HINDI_EXAM, {"exam/test.jsonl": '{"q": "x", "a": "1", "b": "2", "c": "3", "d": "4", "gold": "A"}\n'})
    assert "hi" in spec.LANGUAGES and "hindi_exam" in spec.ALL_BENCHMARKS
    bench, language = spec.parse_task("hindi_exam_hi")
    assert (bench.key, language, bench.builtin, bench.regime) == ("hindi_exam", "hi", False, "zero_shot")
    assert "mmlu_anatomy_hi" in spec.task_names()  # the suite in the new language
    assert "hi" not in spec.suite_languages()  # the `medeval` group keeps BioMistral's eight
    assert bench.data.files[("hi", "test")] == (spec_path / "exam/test.jsonl").resolve()


@pytest.mark.parametrize("change, message", [
    (("letters: ABCD", "letters: ABD"), "letters"),
    (("languages: [hi]", "languages: [xx]"), "unknown language 'xx'"),
    (("key: hindi_exam", "key: Hindi-Exam"), "key"),
    (("key: hindi_exam", "key: medqa"), "already defined by the package"),
    (("key: hindi_exam", "key: native"), "is a group name"),
    (("test: exam/test.jsonl", "test: exam/missing.jsonl"), "does not exist"),
    (("    letters: ABCD", "    letters: ABCD\n    regime: native_3shot"), "needs a train or dev file"),
    (("    letters: ABCD", "    letters: ABCD\n    colour: red"), "unknown field 'colour'"),
    (("fields: {question: q,", "fields: {query: q,"), "at least question, options and answer"),
    (("{code: hi,", "{code: en,"), "language 'en'"),
])
def test_a_bad_spec_file_is_one_error_naming_the_file_and_the_field(spec_path, change, message):
    text = HINDI_EXAM.replace(*change)
    assert text != HINDI_EXAM
    path = write_spec(spec_path, "", {"exam/test.jsonl": "{}\n"})
    path.write_text(text, encoding="utf-8")
    with pytest.raises(spec.SpecError, match=message) as err:
        spec.reload()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_spec_path_that_does_not_exist_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(spec.SPEC_PATH_ENV, str(tmp_path / "nowhere"))
    try:
        with pytest.raises(UsageError, match="does not exist"):
            spec.reload()
    finally:
        monkeypatch.delenv(spec.SPEC_PATH_ENV)
        spec.reload()


def test_user_tasks_are_generated_into_a_content_addressed_folder(spec_path):
    from medtasks.tasks.generate import user_task_folder

    write_spec(spec_path, HINDI_EXAM, {"exam/test.jsonl": "{}\n"})
    folder = user_task_folder()
    assert (folder / "native" / "hindi_exam_hi.yaml").exists() and (folder / "hi" / "_medeval_hi.yaml").exists()
    assert user_task_folder() == folder  # same content, same folder
    write_spec(spec_path, HINDI_EXAM.replace("Hindi medical exam", "Another title"), {"exam/test.jsonl": "{}\n"})
    assert user_task_folder() != folder


def test_no_name_of_ours_shadows_an_lm_eval_builtin_task_group_or_tag():
    import sys

    from lm_eval.tasks import TaskManager

    from medtasks.tasks.generate import NATIVE_MULTI_GROUP

    index = TaskManager.__init__.__wrapped__.__globals__["TaskIndex"]().build(
        [Path(sys.modules["lm_eval.tasks.manager"].__file__).parent])
    builtin = set(index)
    assert {"headqa_es", "headqa_en"} <= builtin  # lm-eval's own HEAD-QA: ours is head_qa_*
    languages = spec.LANGUAGES
    ours = (set(spec.task_names()) | names.reserved_names(languages) | {NATIVE_MULTI_GROUP}
            | {spec.benchmark_tag(b) for b in spec.ALL_BENCHMARKS})
    assert not ours & builtin
