"""Clean-subset scores (issue 16 §4): every metric of a task recomputed from the samples on the questions
that a contamination report (`medeval contamination`, format medeval-contamination/1, see
training/README.md) does not flag, beside the full score.

The report is read as JSON; nothing here imports `training`. A report checked a task on one data file
(its `data_sha256`); a run scored on another file is refused, since its question ids may mean other
questions. Tasks the report did not check get no clean score (NaN), never the full one.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from medtasks.records import DataError
from results.load import ResultsError
from results.samples import UNKNOWN_DATA, read_samples

REPORT_FORMAT = "medeval-contamination/1"
CLEAN = "clean"  # suffix of the clean columns of a view ("en clean", "A clean")


def read_report(path) -> dict[str, dict]:
    """{task: {"data_sha256", "contaminated_ids"}} of a contamination report, validated."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ResultsError(f"--contamination {path}: cannot read it ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(str(path), None, None, f"not a JSON contamination report ({err})") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(str(path), None, "format", f"expected {REPORT_FORMAT!r} (medeval contamination's report.json), "
                        f"got {found!r}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict):
        raise DataError(str(path), None, "tasks", "expected an object of tasks")
    out = {}
    for task, entry in tasks.items():
        ids = entry.get("contaminated_ids") if isinstance(entry, dict) else None
        sha = entry.get("data_sha256") if isinstance(entry, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DataError(str(path), None, f"tasks[{task!r}].contaminated_ids", "expected a list of question ids")
        if not isinstance(sha, str) or not sha:
            raise DataError(str(path), None, f"tasks[{task!r}].data_sha256", "expected the checksum of the data checked")
        out[task] = {"data_sha256": sha, "contaminated_ids": set(ids)}
    return out


def with_clean_scores(table, report_path, progress: bool = False):
    """The tidy table plus `clean_value` (each row's metric on the questions the report does not flag) and
    `n_questions_clean`; NaN for tasks the report did not check. Refuses a run scored on other data than
    the report checked, or one without samples."""
    report = read_report(report_path)
    table = table.copy()
    table["clean_value"], table["n_questions_clean"] = math.nan, math.nan
    checked = table[table["task"].isin(report)]
    runs = checked.groupby(["source", "task"])
    if progress:
        from tqdm import tqdm

        runs = tqdm(runs, desc="clean subsets", unit="run")
    for (source, task), rows in runs:
        entry, first = report[task], rows.iloc[0]
        if first["data_sha256"] == UNKNOWN_DATA:
            raise ResultsError(f"{task} of {source}: no samples, so no clean score against --contamination "
                               f"{report_path}; rerun lm_eval with --log_samples")
        if first["data_sha256"] != entry["data_sha256"]:
            raise ResultsError(f"--contamination {report_path} checked {task} on data {entry['data_sha256'][:12]} but "
                               f"{source} was scored on {first['data_sha256'][:12]}: check the store the run used")
        samples = read_samples(first["samples"], expected=int(first["n_questions"]))
        keep = np.array([qid not in entry["contaminated_ids"] for qid in samples.ids])
        for index, metric in zip(rows.index, rows["metric"]):
            table.at[index, "clean_value"] = samples.score(metric, keep)
            table.at[index, "n_questions_clean"] = int(keep.sum())
    return table


def clean_records(table) -> list[dict]:
    """One record per run x task x metric that has a clean score (what a submission bundle stores):
    model, task, fewshot_seed, metric, value, clean_value, n_questions, n_questions_clean, data_sha256."""
    keys = ("model", "task", "fewshot_seed", "metric", "value", "clean_value", "n_questions", "n_questions_clean",
            "data_sha256")
    rows = table[table["clean_value"].notna()] if "clean_value" in table else table.iloc[0:0]
    return [{k: (int(v) if k in ("fewshot_seed", "n_questions", "n_questions_clean") else v)
             for k, v in zip(keys, r)} for r in rows[list(keys)].itertuples(index=False)]


def clean_table(table):
    """The table with each row's value replaced by its clean value (NaN where the report did not check the
    task), for building the same view on the clean subsets; `full_value` keeps the value of the results file,
    which the samples are checked against."""
    return table.assign(full_value=table["value"], value=table["clean_value"])


def clean_note(table, report_path) -> str:
    checked = table[table["clean_value"].notna()]
    counts = checked.groupby("task")[["n_questions", "n_questions_clean"]].agg(["max", "min"])
    detail = ", ".join(f"{task} {int(c[('n_questions', 'max')] - c[('n_questions_clean', 'min')])} of "
                       f"{int(c[('n_questions', 'max')])}" for task, c in counts.iterrows()) or "none of these tasks"
    return (f"{CLEAN}: recomputed from the samples without the questions {report_path} flags as contaminated "
            f"(removed: {detail}); empty for tasks it did not check")


def clean_view(view, table, report_path, **options):
    """A leaderboard view (leaderboard.VIEWS) with every column beside its clean counterpart; `table` comes
    from with_clean_scores. Views that read the samples themselves (native, categories) leave the flagged
    questions out of them."""
    import inspect

    report = read_report(report_path)
    clean_options = dict(options)
    if "exclude" in inspect.signature(view).parameters:
        clean_options["exclude"] = {task: entry["contaminated_ids"] for task, entry in report.items()}
    full, clean = view(table, **options), view(clean_table(table), **clean_options)
    note = clean_note(table, report_path)
    if isinstance(full, list):
        return [beside(f, c, note) for f, c in zip(full, clean)]
    return beside(full, clean, note)


def beside(full, clean, note: str):
    """One grid with each column of `full` followed by the same column of `clean` ("<column> clean")."""
    from results.leaderboard import Grid

    clean_rows = dict(clean.rows)
    columns = [name for c in full.columns for name in (c, f"{c} {CLEAN}")]
    rows = []
    for label, cells in full.rows:
        other = clean_rows.get(label, [None] * len(cells))
        rows.append((label, [cell for pair in zip(cells, other) for cell in pair]))
    return Grid(full.title + f" (with {CLEAN} subsets)", columns, rows, full.notes + [note], full.higher_is_better,
                full.best_along, full.reference_rows, full.reference_columns, full.show_std, full.name)
