"""Calibration from the per-question samples: ECE (medtasks.metrics, BioMistral's 5 equal-width bins,
confidence = largest letter probability, not renormalised) and Brier, per task and per language,
plus the reliability-diagram bins.

Per task and per seed the ECE is computed over that run's questions; a language pools the
questions of all its tasks (one ECE over them, per seed); both are then summarised over seeds
as mean ± population std, like accuracy.
"""
from __future__ import annotations

import math

import numpy as np

from medtasks.benchmarks import BENCHMARKS
from medtasks.languages import LANGUAGES
from medtasks.metrics import expected_calibration_error

from results.leaderboard import Cell, Grid, select
from results.samples import Samples, samples_of
from results.stats import mean_std, reliability_bins

POOLED = "all tasks"


def ece_of(parts: list[Samples]) -> float:
    conf = np.concatenate([s.confidence for s in parts])
    ok = np.concatenate([s.acc for s in parts]) > 0.5
    return expected_calibration_error(conf.tolist(), ok.tolist())


def brier_of(parts: list[Samples]) -> float:
    return float(np.concatenate([s.brier for s in parts]).mean())


def calibration_records(table, regime=None, models=None, languages=None, progress=False) -> list[dict]:
    """One record per (model, language, task or POOLED): ece and brier, mean and std over seeds."""
    rows = select(table, "acc", regime, models, languages)
    runs = samples_of(rows, progress=progress)
    grouped: dict = {}  # (model, language) -> seed -> task -> Samples
    for (model, task, _version, _regime, seed), samples in runs.items():
        lang = task.rpartition("_")[2]
        grouped.setdefault((model, lang), {}).setdefault(seed, {})[task] = samples
    records = []
    for (model, lang), seeds in sorted(grouped.items()):
        tasks = sorted({t for per_task in seeds.values() for t in per_task},
                       key=lambda t: list(BENCHMARKS).index(t.rpartition("_")[0]))
        for task in tasks + [POOLED]:
            per_seed = [list(per_task.values()) if task == POOLED else [per_task[task]]
                        for per_task in seeds.values() if task == POOLED or task in per_task]
            ece = mean_std([ece_of(p) for p in per_seed])
            brier = mean_std([brier_of(p) for p in per_seed])
            records.append({"model": model, "language": lang, "task": task, "seeds": len(per_seed),
                            "questions": sum(len(s) for s in per_seed[0]),
                            "ece": ece[0], "ece_std": ece[1], "brier": brier[0], "brier_std": brier[1]})
    return records


def reliability(table, model: str, language: str, regime=None) -> tuple[list[dict], float]:
    """Reliability bins and ECE of one model in one language, pooling its tasks and seeds."""
    rows = select(table, "acc", regime, [model], [language])
    parts = list(samples_of(rows).values())
    conf = np.concatenate([s.confidence for s in parts])
    ok = np.concatenate([s.acc for s in parts])
    return reliability_bins(conf, ok), ece_of(parts)


def calibration_grid(records: list[dict], metric: str = "ece") -> Grid:
    """Rows model [language], columns the benchmarks present + the pooled language figure."""
    if metric not in ("ece", "brier"):
        raise ValueError(f"calibration metric must be ece or brier, not {metric!r}")
    benches = [b for b in BENCHMARKS if any(r["task"].rpartition("_")[0] == b for r in records)]
    columns = [BENCHMARKS[b].short for b in benches] + [POOLED]
    by_row: dict = {}
    for r in records:
        key = r["task"] if r["task"] == POOLED else BENCHMARKS[r["task"].rpartition("_")[0]].short
        by_row.setdefault(f"{r['model']} [{r['language']}]", {})[key] = Cell(r[metric], r[f"{metric}_std"], r["seeds"])
    rows = [(label, [cells.get(c) for c in columns]) for label, cells in by_row.items()]
    order = {code: i for i, code in enumerate(LANGUAGES)}
    rows.sort(key=lambda r: (order[r[0].rsplit("[", 1)[1][:-1]],
                             math.inf if r[1][-1] is None else r[1][-1].mean))
    name = {"ece": "expected calibration error (5 bins)", "brier": "Brier score"}[metric]
    notes = [f"{name} x100 from the per-question samples; lower is better; mean ± population std over few-shot seeds",
             f"'{POOLED}': one {metric} over the questions of all the language's tasks"]
    return Grid(f"Calibration: {name}", columns, rows, notes, higher_is_better=False).mark_best()
