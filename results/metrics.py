"""Which of the spec's metrics each part of `results` works with, derived from the metric table
(medtasks.spec.METRICS: name, aggregation, direction, single/multi answer). Import-light: the CLI reads
it for its defaults and help strings."""
from __future__ import annotations

from medtasks.spec import HEADLINE_METRIC, METRICS, metrics_for, primary_metric

PRIMARY = primary_metric("single")  # every view's default metric (acc)
MULTI = metrics_for("multi")  # multi-answer exams (hamming, emr): columns of their own
# Single-answer metrics where higher is better (acc, strict_acc): right or wrong per question, so they have
# a chance level, and compare can pair them (McNemar) and gate on them.
ACCURACY_METRICS = tuple(m for m in metrics_for("single") if METRICS[m].higher_is_better)
# Single-answer metrics where lower is better (ece, brier): calibration.
CALIBRATION_METRICS = tuple(m for m in metrics_for("single") if not METRICS[m].higher_is_better)
assert HEADLINE_METRIC in ACCURACY_METRICS, "the headline metric must be one of the spec's accuracy metrics"


def listed(names) -> str:
    return " | ".join(names)
