"""Metrics and named regimes: what a score means and how the prompt around a question is built.

A regime fixes the few-shot source, the number of shots and the seeds; every task YAML records
its regime's name and version in `metadata`, and results read them from there (never guessed).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    aggregation: str  # "mean", or "ece" (binned over the whole task: medtasks.metrics.ece_aggregation)
    higher_is_better: bool
    answers: str  # "single" or "multi": the kind of question it scores
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc", "mean", True, "single", "argmax over the option letters is the gold letter"),
        Metric("strict_acc", "mean", True, "single",
               "the gold letter is the greedy token over the whole vocabulary (BioMistral's accuracy)"),
        Metric("ece", "ece", False, "single",
               "expected calibration error, 5 equal-width bins, confidence = largest letter probability"),
        Metric("brier", "mean", False, "single", "Brier score over the letter probabilities renormalised"),
        Metric("hamming", "mean", True, "multi",
               "Hamming score: |predicted ∩ gold| / |predicted ∪ gold| (FrenchMedMCQA's official metric)"),
        Metric("emr", "mean", True, "multi", "exact match ratio: the predicted set of letters is the gold set"),
    )
}


HEADLINE_METRIC = "strict_acc"  # what BioMistral's tables report: the gold letter must be the greedy token


def metrics_for(answers: str) -> tuple[str, ...]:
    """The metric names of a single- or multi-answer task, in table order."""
    return tuple(name for name, metric in METRICS.items() if metric.answers == answers)


def primary_metric(answers: str) -> str:
    return metrics_for(answers)[0]


@dataclass(frozen=True)
class Regime:
    name: str
    version: int  # bumped whenever what it selects or how changes
    num_fewshot: int
    shots: str  # "english": the benchmark's English examples | "native": the task's own language | "none"
    description: str


REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("biomistral_3shot", 1, 3, "english",
               "BioMistral's protocol: 3 English examples of the benchmark, the same for every question of a "
               "run, chosen by the few-shot seed (`--metadata '{\"fewshot_seed\": 2}'`): BioInstructQA's fixed "
               "set k, else the pool shuffled with k. Letters scored as single tokens."),
        Regime("native_3shot", 1, 3, "native",
               "3 examples from the exam's own train split (else dev) in the task's language, the same for "
               "every question of a run, chosen by the few-shot seed (`--metadata '{\"fewshot_seed\": 2}'`)."),
        Regime("zero_shot", 1, 0, "none",
               "No examples: the instruction and the question. There is no few-shot split: `--num_fewshot N` "
               "would draw examples from the test questions themselves."),
    )
}
SUITE_REGIME = "biomistral_3shot"  # BioMistral's protocol: the suite's regime, and the default of a benchmark
FEWSHOT_SEEDS = (1, 2, 3)  # BioMistral's three runs: report mean ± population std over them
DEFAULT_FEWSHOT_SEED = 1


def get_regime(name: str) -> Regime:
    try:
        return REGIMES[name]
    except KeyError:
        raise KeyError(f"unknown regime {name!r}; valid: {', '.join(REGIMES)}") from None
