"""Multi-answer scoring: the letter-set choices, the Hamming score and the exact match ratio."""
import math

import pytest

from medtasks.metrics import exact_match, hamming_score, process_multi_results
from medtasks.prompts import (doc_to_choice, doc_to_subset_choices, doc_to_subset_target, doc_to_text, format_subset,
                              letter_subsets)


def doc(answer, n=5):
    return {"id": "q1", "question": "Which are true?", "context": None,
            "options": ["one", "two", "three", "four", "five"][:n], "answer": answer}


@pytest.mark.parametrize("pred,gold,score", [
    ("AC", "AC", 1.0), ("A", "AC", 0.5), ("AC", "A", 0.5), ("ABC", "AC", 2 / 3), ("B", "AC", 0.0),
    ("ABCDE", "E", 0.2), ({"C", "A"}, "AC", 1.0), (["D"], ["D"], 1.0), ("", "", 1.0), ("", "A", 0.0),
    ("BD", "ACE", 0.0), ("ABD", "BCD", 0.5),
])
def test_hamming_score(pred, gold, score):
    assert math.isclose(hamming_score(pred, gold), score)


@pytest.mark.parametrize("pred,gold,match", [
    ("AC", "AC", 1.0), ("CA", "AC", 1.0), ("A", "AC", 0.0), ("ABC", "AC", 0.0), ({"B"}, "B", 1.0), ("E", "D", 0.0),
])
def test_exact_match(pred, gold, match):
    assert exact_match(pred, gold) == match


def test_choices_are_every_letter_set_by_size_then_letter_order():
    assert letter_subsets(3) == ["A", "B", "C", "AB", "AC", "BC", "ABC"]
    assert [len(letter_subsets(n)) for n in (1, 2, 4, 5)] == [1, 3, 15, 31]
    choices = doc_to_subset_choices(doc("AC"))
    assert choices[:6] == ["A)", "B)", "C)", "D)", "E)", "A, B)"] and choices[-1] == "A, B, C, D, E)"
    assert len(set(choices)) == 31 and len(doc_to_subset_choices(doc("A", 4))) == 15
    assert format_subset("BDE") == "B, D, E)"


def test_no_choice_is_the_beginning_of_another():
    """Otherwise the shorter set would always be at least as likely (its tokens are a prefix)."""
    choices = doc_to_subset_choices(doc("A"))
    assert not [(a, b) for a in choices for b in choices if a != b and b.startswith(a)]


@pytest.mark.parametrize("answer,n,index", [("A", 5, 0), ("E", 5, 4), ("AB", 5, 5), ("AC", 5, 6), ("ABCDE", 5, 30),
                                            ("BD", 4, 8), ("ABCD", 4, 14)])
def test_target_is_the_gold_set(answer, n, index):
    d = doc(answer, n)
    assert doc_to_subset_target(d) == index
    assert doc_to_subset_choices(d)[index] == format_subset(answer)


@pytest.mark.parametrize("answer,n", [("CA", 5), ("AE", 4), ("", 5), ("AA", 5)])
def test_a_gold_that_is_not_a_letter_set_of_the_question_fails(answer, n):
    with pytest.raises(ValueError, match="q1"):
        doc_to_subset_target(doc(answer, n))


def results_with_best(best: str, n=5, ties=()):
    subsets = letter_subsets(n)
    return [(-1.0 if s == best or s in ties else -5.0, False) for s in subsets]


@pytest.mark.parametrize("best,gold,hamming,emr", [
    ("AC", "AC", 1.0, 1.0), ("A", "AC", 0.5, 0.0), ("BCD", "BD", 2 / 3, 0.0), ("E", "AB", 0.0, 0.0),
])
def test_process_multi_results_scores_the_most_likely_set(best, gold, hamming, emr):
    scores = process_multi_results(doc(gold), results_with_best(best))
    assert math.isclose(scores["hamming"], hamming) and scores["emr"] == emr


def test_ties_go_to_the_first_choice_and_result_counts_are_checked():
    assert process_multi_results(doc("AB"), results_with_best("ABC", ties=("AB",))) == {"hamming": 1.0, "emr": 1.0}
    with pytest.raises(ValueError, match="15 results for 31"):
        process_multi_results(doc("A"), results_with_best("A", n=4))


def test_the_single_answer_prompt_is_unchanged():
    d = doc("B", 4)
    assert doc_to_text(d) == ("**Question:** Which are true? \n (A) one \n (B) two \n (C) three \n (D) four \n "
                              "**Answer:**(")
    assert doc_to_choice(d) == ["A", "B", "C", "D"]
