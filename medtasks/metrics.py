"""Scoring, as pure functions, plus the lm-eval hooks that apply them to one question.

From the per-letter log-likelihoods (full-vocabulary log-softmax at the answer position) and
lm-eval's is-greedy flags we get, at no extra model cost:
  acc         argmax over the letters is the gold letter (lm-eval's usual multiple-choice score)
  strict_acc  the gold letter is the greedy token over the WHOLE vocabulary (BioMistral's accuracy)
  ece         expected calibration error: 5 equal-width bins, confidence = largest letter
              probability, NOT renormalised over the letters (BioMistral's definition)
  brier       multi-class Brier score over the letter probabilities renormalised to sum to 1

Multi-answer questions (FrenchMedMCQA, CMExam's multi-answer ones: 1 to 5 correct letters) keep
lm-eval's multiple_choice output: the choices are every non-empty set of the question's letters,
written "A, C)" after the prompt's "**Answer:**(" (medtasks.prompts.doc_to_subset_choices: 31 for 5
options, 15 for 4, by size then letter order). The predicted set is the choice with the highest
log-likelihood (first in that order on ties); per question, against the gold set:
  hamming     |predicted ∩ gold| / |predicted ∪ gold|   (FrenchMedMCQA's Hamming score)
  emr         1 if predicted == gold else 0                (exact match ratio)
each averaged over questions. The ")" ends every set: without it "A" would be a prefix of "A, C" and
at least as likely, so a set of two or more letters could never win.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from medtasks.prompts import LETTERS, letter_subsets

ECE_BINS = 5


def argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: values[i])  # first index wins ties


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float:
    """sum_b |B_b|/n * |acc(B_b) - conf(B_b)| over equal-width bins of [0, 1]; 1.0 lands in the last bin."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness flags")
    if not confidences:
        return float("nan")
    sums = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum confidence, sum correct
    for conf, ok in zip(confidences, correct):
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"confidence {conf} is outside [0, 1]")
        b = min(int(conf * bins), bins - 1)
        sums[b][0] += 1
        sums[b][1] += conf
        sums[b][2] += float(ok)
    n = len(confidences)
    return sum(abs(s_ok - s_conf) / n for count, s_conf, s_ok in sums if count)


def brier_score(probabilities: Sequence[float], gold: int) -> float:
    return sum((p - (1.0 if i == gold else 0.0)) ** 2 for i, p in enumerate(probabilities))


def score_question(logliks: Sequence[float], is_greedy: Sequence[bool], gold: int) -> dict:
    """All per-question metrics from one question's letter log-likelihoods."""
    probs = [math.exp(x) for x in logliks]
    pred = argmax(logliks)
    return {
        "acc": float(pred == gold),
        "strict_acc": float(bool(is_greedy[gold])),
        "ece": (max(probs), pred == gold),
        "brier": brier_score(softmax(logliks), gold),
    }


# --- lm-eval hooks (referenced from the task template) ---

def process_results(doc, results) -> dict:
    logliks = [ll for ll, _ in results]
    greedy = [g for _, g in results]
    gold = LETTERS.index(doc["answer"])
    return score_question(logliks, greedy, gold)


def ece_aggregation(items: Iterable[tuple[float, bool]]) -> float:
    items = list(items)
    return expected_calibration_error([c for c, _ in items], [ok for _, ok in items])


# --- multi-answer questions ---

def hamming_score(pred: Iterable[str], gold: Iterable[str]) -> float:
    """|pred ∩ gold| / |pred ∪ gold| over letter sets ("AC" or {"A", "C"}); 1.0 when both are empty."""
    pred, gold = set(pred), set(gold)
    union = pred | gold
    return len(pred & gold) / len(union) if union else 1.0


def exact_match(pred: Iterable[str], gold: Iterable[str]) -> float:
    return float(set(pred) == set(gold))


def process_multi_results(doc, results) -> dict:
    """lm-eval hook: `results` holds one (log-likelihood, is_greedy) per choice of doc_to_subset_choices."""
    subsets = letter_subsets(len(doc["options"]))
    if len(results) != len(subsets):
        raise ValueError(f"question {doc.get('id')!r}: {len(results)} results for {len(subsets)} letter sets")
    pred = subsets[argmax([ll for ll, _ in results])]
    return {"hamming": hamming_score(pred, doc["answer"]), "emr": exact_match(pred, doc["answer"])}
