"""Multi-answer records: the answer of a multi-answer benchmark is its correct letters, concatenated."""
import pytest

from medtasks.records import DataError, Exclusion, Record, join_letters, validate

FIVE = dict(zip("ABCDE", ["a", "b", "c", "d", "e"]))
FOUR = dict(zip("ABCD", ["a", "b", "c", "d"]))


def record(benchmark, answer, options=FIVE, language="fr"):
    return Record("q1", benchmark, language, "test", "Which?", dict(options), answer)


@pytest.mark.parametrize("answer", ["A", "AC", "ABCDE", "BE"])
def test_multi_answer_benchmarks_accept_sorted_unique_letters(answer):
    assert validate(record("frenchmedmcqa", answer), "f.json", 3).answer == answer


@pytest.mark.parametrize("benchmark,answer,options,problem", [
    ("frenchmedmcqa", "CA", FIVE, "not in letter order"),
    ("frenchmedmcqa", "AA", FIVE, "repeats a letter"),
    ("frenchmedmcqa", "", FIVE, "letters concatenated"),
    ("frenchmedmcqa", "AF", FIVE, "'F' is not one of the options"),
    ("frenchmedmcqa", "a", FIVE, "'a' is not one of the options"),
    ("frenchmedmcqa", "A,C", FIVE, "',' is not one of the options"),
    ("cmexam_multi", "AE", FOUR, "'E' is not one of the options"),  # a 4-option question
    ("frenchmedmcqa_single", "AC", FIVE, "is not one of the options"),  # single-answer subset
    ("medqa", "AC", FOUR, "is not one of the options"),  # the suite: unchanged
    ("cmexam", "AB", FIVE, "is not one of the options"),
])
def test_bad_answers_name_the_field(benchmark, answer, options, problem):
    with pytest.raises(DataError) as err:
        validate(record(benchmark, answer, options, "zh" if "cmexam" in benchmark else "fr"), "f.json", 3)
    assert err.value.field == "answer" and err.value.where == 3 and problem in str(err.value)


def test_native_benchmarks_and_their_option_counts_are_read_from_the_spec():
    assert validate(record("cmexam", "D", FOUR, "zh"), "x", 1)  # cmexam: 4 or 5 options (min_options=4)
    assert validate(record("head_qa", "B", FOUR, "en"), "x", 1)
    with pytest.raises(DataError, match="unknown language 'xx'"):
        validate(record("head_qa", "B", FOUR, "xx"), "x", 1)
    with pytest.raises(DataError) as err:
        validate(record("medqa_mainland", "A", FIVE, "zh"), "x", 1)  # 4 options only
    assert err.value.field == "options"


def test_join_letters_orders_by_option():
    assert join_letters({"C", "A"}, FIVE) == "AC"
    assert join_letters(["E", "B", "D"], FIVE) == "BDE"


def test_an_exclusion_names_its_group():
    ex = Exclusion("head_qa-X-3", "needs an image", "head_qa", "es", "test", "headqa/es/test_HEAD.json", "X/3")
    assert ex.group == "head_qa/es/test"
