"""The regression gate of `medeval compare`: its settings (one definition, read by the CLI for its
defaults) and the rule that calls a drop a regression. Import-light: the CLI imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass

from medtasks.common import UsageError
from results.metrics import ACCURACY_METRICS, PRIMARY


@dataclass(frozen=True)
class Gate:
    threshold: float = 0.02  # a drop must exceed this (acc as lm-eval reports it, a fraction: 0.02 = 2 points)
    alpha: float = 0.05  # McNemar p below alpha, and the (1 - alpha) interval entirely below 0
    n_boot: int = 10_000  # bootstrap resamples
    seed: int = 0  # bootstrap seed: the same seed gives the same intervals
    metric: str = PRIMARY  # one of ACCURACY_METRICS: right or wrong per question, as McNemar's test needs

    def __post_init__(self):
        problems = [(not 0.0 <= self.threshold < 1.0, f"--threshold must be in [0, 1), got {self.threshold}"),
                    (not 0.0 < self.alpha < 1.0, f"--alpha must be in (0, 1), got {self.alpha}"),
                    (self.n_boot < 1, f"--bootstrap must be at least 1, got {self.n_boot}"),
                    (self.metric not in ACCURACY_METRICS,
                     f"--metric must be {' or '.join(ACCURACY_METRICS)}, got {self.metric!r}")]
        for bad, message in problems:
            if bad:
                raise UsageError(message)


def is_regression(row, gate: Gate) -> bool:
    """A drop larger than the threshold that both tests call significant (row: a compare.Row)."""
    return row.delta < -gate.threshold and row.high < 0.0 and row.p_value < gate.alpha
