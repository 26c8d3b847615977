"""The statistics of the results package, as pure functions (tested against hand-computed tables).

ECE and Brier themselves live in medtasks.metrics; here are only the summaries built on them.
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np

from medtasks.metrics import ECE_BINS


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and POPULATION standard deviation (ddof=0), BioMistral's convention over few-shot seeds."""
    if len(values) == 0:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def macro_average(values: Sequence[float]) -> float:
    """Unweighted mean of task scores (BioMistral's "average"); NaN when any task is missing."""
    if len(values) == 0 or any(math.isnan(v) for v in values):
        return math.nan
    return sum(values) / len(values)


def chance_centred(score: float, chance: float) -> float:
    """0 at random guessing, 1 at perfect: (score - chance) / (1 - chance), so that tasks with 3 and
    5 options weigh alike in an average."""
    return (score - chance) / (1.0 - chance)


def _rng(seed: int, key: str) -> np.random.Generator:
    # One stream per (seed, key): adding a task to a comparison leaves the other tasks' intervals unchanged.
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def bootstrap_means(diffs: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n_boot bootstrap replicates of mean(diffs), resampling items with replacement.

    The counts of each distinct value in a resample of n items are Multinomial(n, frequencies), so
    drawing those counts is the same distribution as drawing indices, at O(distinct values) per
    replicate instead of O(n): paired 0/1 outcomes have at most 3 distinct differences."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.size == 0:
        raise ValueError("no paired items to bootstrap")
    values, counts = np.unique(diffs, return_counts=True)
    draws = rng.multinomial(diffs.size, counts / diffs.size, size=n_boot)
    return draws @ values / diffs.size


def stratified_bootstrap(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], n_boot: int = 10_000,
                         seed: int = 0, level: float = 0.95, key: str = "") -> tuple[float, float, float]:
    """(delta, low, high): candidate - base, paired by item, with its percentile bootstrap interval. With
    several strata (tasks) the delta is their MACRO average: each stratum is resampled on its own and
    the replicate deltas are averaged, as the macro average itself is. One stratum: a paired bootstrap."""
    if not pairs:
        raise ValueError("no strata to bootstrap")
    rng = _rng(seed, key)
    diffs = []
    for base, candidate in pairs:
        base, candidate = np.asarray(base, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
        if base.shape != candidate.shape:
            raise ValueError(f"paired arrays differ in length: {base.size} vs {candidate.size}")
        diffs.append(candidate - base)
    delta = float(np.mean([d.mean() for d in diffs]))
    replicates = np.mean([bootstrap_means(d, n_boot, rng) for d in diffs], axis=0)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return delta, float(low), float(high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (b: only base right, c: only
    candidate right): 2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    Computed in exact integer arithmetic, so it neither overflows nor underflows early."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    term = total = 1  # C(n, 0)
    for i in range(1, k + 1):
        term = term * (n - i + 1) // i
        total += term
    return min(1.0, 2 * total / 2 ** n)


def discordant(base: Sequence[float], candidate: Sequence[float]) -> tuple[int, int]:
    """(b, c) of McNemar's table for paired 0/1 outcomes."""
    base, candidate = np.asarray(base) > 0.5, np.asarray(candidate) > 0.5
    return int(np.sum(base & ~candidate)), int(np.sum(~base & candidate))


def reliability_bins(confidences: Sequence[float], correct: Sequence[float], bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of [0, 1]: count, mean confidence, accuracy (NaN when empty). Same binning
    as medtasks.metrics.expected_calibration_error (1.0 falls in the last bin), whose ECE is
    sum(count / n * |accuracy - confidence|) over these bins."""
    conf = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append({"low": b / bins, "high": (b + 1) / bins, "count": count,
                    "confidence": float(conf[mask].mean()) if count else math.nan,
                    "accuracy": float(ok[mask].mean()) if count else math.nan})
    return out
