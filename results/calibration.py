"""Calibration from the per-question samples: ECE (medtasks.metrics, BioMistral's 5 equal-width bins,
confidence = largest letter probability, not renormalised) and Brier, per task and per language,
plus the reliability-diagram bins. Values are fractions under lm-eval's names (`ece`, `brier`).

Per task and per seed the ECE is computed over that run's questions (lm-eval's number for the task).
A language has two figures: `Avg`, the mean of its tasks' values (what lm-eval reports for the group
medeval_<lang>), and `pooled`, one value over the questions of all its tasks (what a reliability
diagram of the language draws). All are summarised over seeds as mean ± population std, like accuracy.
"""
from __future__ import annotations

import math

import numpy as np

from medtasks.metrics import expected_calibration_error
from medtasks.spec import BENCHMARKS, LANGUAGES, METRICS, language_group
from results.leaderboard import UNIT, Cell, Grid, limited_note, question_counts, select
from results.load import ResultsError
from results.metrics import CALIBRATION_METRICS
from results.samples import BINNED, Samples, samples_of
from results.stats import mean_std, reliability_bins

AVERAGE, POOLED = "Avg", "pooled"
ECE = next(m for m in CALIBRATION_METRICS if METRICS[m].aggregation == BINNED)
BRIER = next(m for m in CALIBRATION_METRICS if m != ECE)


def ece_of(parts: list[Samples]) -> float:
    conf = np.concatenate([s.confidence[ECE] for s in parts])
    ok = np.concatenate([s.correct[ECE] for s in parts]) > 0.5
    return expected_calibration_error(conf.tolist(), ok.tolist())


def brier_of(parts: list[Samples]) -> float:
    return float(np.concatenate([s.metric(BRIER) for s in parts]).mean())


def _per_seed(per_task: dict[str, Samples], tasks: list[str]) -> dict[str, tuple[float, float, int]]:
    """One seed of one language: {task | AVERAGE | POOLED: (ece, brier, questions)}."""
    out = {t: (ece_of([s]), brier_of([s]), len(s)) for t, s in per_task.items()}
    if set(per_task) == set(tasks):  # an average over fewer tasks is no average
        out[AVERAGE] = (float(np.mean([out[t][0] for t in tasks])), float(np.mean([out[t][1] for t in tasks])),
                        sum(out[t][2] for t in tasks))
    parts = list(per_task.values())
    out[POOLED] = (ece_of(parts), brier_of(parts), sum(len(s) for s in parts))
    return out


def calibration_records(table, regime=None, models=None, languages=None, progress=False) -> list[dict]:
    """One record per (model, language, task | AVERAGE | POOLED): ece and brier, mean and std over seeds,
    with the questions scored per seed and the questions in the split(s)."""
    rows = select(table, ECE, regime, models, languages)
    full = {t: c[1] for t, c in question_counts(rows).items()}
    where = dict(zip(rows["task"], zip(rows["benchmark"], rows["language"])))
    order = {key: i for i, key in enumerate(BENCHMARKS)}
    runs = samples_of(rows, progress=progress)
    grouped: dict = {}  # (model, language) -> seed -> task -> Samples
    for (model, task, _version, _regime, seed), samples in runs.items():
        grouped.setdefault((model, where[task][1]), {}).setdefault(seed, {})[task] = samples
    records = []
    for (model, lang), seeds in sorted(grouped.items()):
        tasks = sorted({t for per_task in seeds.values() for t in per_task}, key=lambda t: order[where[t][0]])
        scores: dict = {}
        for per_task in seeds.values():
            for name, value in _per_seed(per_task, tasks).items():
                scores.setdefault(name, []).append(value)
        for name in [t for t in tasks + [AVERAGE, POOLED] if t in scores]:
            ece, brier = mean_std([v[0] for v in scores[name]]), mean_std([v[1] for v in scores[name]])
            records.append({"model": model, "language": lang, "task": name, "benchmark": where.get(name, ("",))[0],
                            "seeds": len(scores[name]),
                            "questions": scores[name][0][2],
                            "questions_full": full[name] if name in full else sum(full[t] for t in tasks),
                            ECE: ece[0], f"{ECE}_std": ece[1], BRIER: brier[0], f"{BRIER}_std": brier[1]})
    return records


def reliability(table, model: str, language: str, regime=None) -> tuple[list[dict], float]:
    """Reliability bins and ECE of one model in one language, pooling its tasks and seeds."""
    rows = select(table, ECE, regime, [model], [language])
    parts = list(samples_of(rows).values())
    conf = np.concatenate([s.confidence[ECE] for s in parts])
    ok = np.concatenate([s.correct[ECE] for s in parts])
    return reliability_bins(conf, ok), ece_of(parts)


def check_calibration_metric(metric: str) -> str:
    if metric not in CALIBRATION_METRICS:
        raise ResultsError(f"calibration metric must be {' or '.join(CALIBRATION_METRICS)}, not {metric!r}")
    return metric


def calibration_grid(records: list[dict], metric: str = ECE) -> Grid:
    """Rows model [language], columns the benchmarks present, the language's Avg and its pooled figure."""
    check_calibration_metric(metric)
    tasks = [r for r in records if r["task"] not in (AVERAGE, POOLED)]
    present = {r["benchmark"] for r in tasks}
    columns = [BENCHMARKS[b].short for b in BENCHMARKS if b in present] + [AVERAGE, POOLED]
    by_row: dict = {}  # (model, language) -> {column: Cell}
    for r in records:
        key = r["task"] if r["task"] in (AVERAGE, POOLED) else BENCHMARKS[r["benchmark"]].short
        by_row.setdefault((r["model"], r["language"]), {})[key] = Cell(
            r[metric], r[f"{metric}_std"], r["seeds"], questions=r["questions"], questions_full=r["questions_full"])
    order = {code: i for i, code in enumerate(LANGUAGES)}
    keys = sorted(by_row, key=lambda k: (order[k[1]], math.inf if POOLED not in by_row[k] else by_row[k][POOLED].mean))
    rows = [(f"{model} [{lang}]", [by_row[(model, lang)].get(c) for c in columns]) for model, lang in keys]
    name = METRICS[metric].description
    notes = [f"{metric} ({name}; {UNIT}) from the per-question samples; lower is better; "
             "mean ± population std over few-shot seeds",
             f"{AVERAGE}: mean of the tasks' {metric} (lm-eval's value for {language_group('<lang>')}); "
             f"{POOLED}: one {metric} over the questions of all the language's tasks",
             limited_note({r["task"]: (r["questions"], r["questions_full"]) for r in tasks})]
    return Grid(f"Calibration: {metric} ({name})", columns, rows, [n for n in notes if n],
                higher_is_better=False).mark_best()
