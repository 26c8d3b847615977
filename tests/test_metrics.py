"""The scoring functions against values computed by hand."""
import math

import pytest

from medtasks.metrics import brier_score, expected_calibration_error, process_results, score_question, softmax


@pytest.mark.parametrize("conf, correct, expected", [
    # one bin [0.8, 1.0]: mean conf 0.9, accuracy 1.0 -> 0.1
    ([0.9, 0.9], [True, True], 0.1),
    # bins: [0.0,0.2): (0.1, wrong) -> |0-0.1|*1/4 ; [0.6,0.8): (0.7 right, 0.7 wrong) -> |0.5-0.7|*2/4 ;
    # [0.8,1]: (1.0 right) -> 0 ; total 0.025 + 0.1 = 0.125
    ([0.1, 0.7, 0.7, 1.0], [False, True, False, True], 0.125),
    # a confidence exactly on a bin edge goes to the upper bin: 0.2 -> bin 1 with 0.3
    ([0.2, 0.3], [True, True], 0.75),
    ([0.5], [True], 0.5),
])
def test_ece_by_hand(conf, correct, expected):
    assert expected_calibration_error(conf, correct) == pytest.approx(expected)


def test_ece_rejects_bad_input():
    with pytest.raises(ValueError, match="outside"):
        expected_calibration_error([1.5], [True])
    with pytest.raises(ValueError, match="2 confidences but 1"):
        expected_calibration_error([0.1, 0.2], [True])
    assert math.isnan(expected_calibration_error([], []))


@pytest.mark.parametrize("probs, gold, expected", [
    ([1.0, 0.0, 0.0], 0, 0.0),
    ([0.0, 1.0], 0, 2.0),
    ([0.5, 0.25, 0.25], 1, 0.25 + 0.5625 + 0.0625),
])
def test_brier_by_hand(probs, gold, expected):
    assert brier_score(probs, gold) == pytest.approx(expected)


def test_score_question_separates_acc_from_strict_acc():
    # letters A..D: B has the highest letter likelihood but is not the vocabulary-wide greedy token
    logliks = [math.log(0.1), math.log(0.3), math.log(0.05), math.log(0.05)]
    scores = score_question(logliks, [False, False, False, False], gold=1)
    assert scores["acc"] == 1.0 and scores["strict_acc"] == 0.0
    assert scores["ece"] == (pytest.approx(0.3), True)  # not renormalised
    renorm = softmax(logliks)
    assert renorm[1] == pytest.approx(0.6)
    assert scores["brier"] == pytest.approx(brier_score(renorm, 1))


def test_process_results_reads_lm_eval_pairs():
    doc = {"answer": "C", "options": ["x", "y", "z"]}
    out = process_results(doc, [(-3.0, False), (-2.0, False), (-0.1, True)])
    assert out["acc"] == 1.0 and out["strict_acc"] == 1.0
