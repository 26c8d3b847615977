"""Per-question outcomes from lm-eval's samples_<task>_<stamp>.jsonl, validated line by line.

Each line holds the doc (our stable question `id`, its `options`, `category` where the exam has one and
`data_sha256`, the checksum of the store file the question came from) and the per-question metrics that
medtasks.metrics computed: for a single-answer task acc, strict_acc, ece = [confidence, correct], brier;
for a multi-answer task hamming, emr (the metric table: medtasks.spec.METRICS). We read those numbers
rather than recompute them, so results and samples cannot disagree; we check that the file is complete,
that it holds one data checksum, and that its mean matches the results file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtasks.metrics import expected_calibration_error
from medtasks.records import DataError
from medtasks.spec import METRICS, metrics_for, primary_metric

UNKNOWN_DATA = "unknown"  # the data checksum of a run without samples, or of docs made before they carried it
BINNED = "ece"  # the aggregation of metrics whose per-question value is [confidence, correct]


@dataclass
class Samples:
    source: str
    ids: list[str]
    answers: str  # "single" or "multi" (medtasks.spec.Metric.answers)
    values: dict[str, np.ndarray]  # per-question value of each metric averaged over questions
    confidence: dict[str, np.ndarray]  # binned metrics (ece): largest letter probability per question
    correct: dict[str, np.ndarray]  # binned metrics: whether that answer was right (0/1)
    options: np.ndarray  # how many options each question offered
    categories: list[str]  # the exam's category per question ("" where it has none)
    data_sha256: str

    @property
    def chance(self) -> float:
        """Expected acc of a uniform guess over these questions: the mean of 1/options."""
        return float(np.mean(1.0 / self.options))

    def metric(self, name: str) -> np.ndarray:
        """Per-question values of a metric averaged over questions (acc, strict_acc, brier, hamming, emr)."""
        if name not in self.values:
            raise ValueError(f"per-question metric must be one of {', '.join(self.values)}, not {name!r}")
        return self.values[name]

    def score(self, name: str, keep: np.ndarray | None = None) -> float:
        """The task-level value of a metric over the questions where `keep` is true (all by default),
        aggregated as the metric table says: a mean, or the binned ECE."""
        keep = np.ones(len(self), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        if not keep.any():
            return math.nan
        if name in self.confidence:
            return expected_calibration_error(self.confidence[name][keep].tolist(),
                                              (self.correct[name][keep] > 0.5).tolist())
        return float(self.metric(name)[keep].mean())

    def __len__(self) -> int:
        return len(self.ids)


def _skip_prompts(text: str) -> str:
    """The line without its "arguments" (the few-shot prompt, once per letter: most of the bytes).
    Unescaped `"resps": ` cannot occur inside a JSON string, so the cut is exact where lm-eval's key
    order holds; anything else falls back to parsing the whole line."""
    start = text.find(', "arguments": ')
    end = text.find(', "resps": ', start)
    return text[:start] + text[end:] if 0 < start < end else text


def _load_line(text: str, path, line: int) -> dict:
    try:
        sample = json.loads(_skip_prompts(text))
    except json.JSONDecodeError:
        try:
            sample = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(str(path), line, None, f"not valid JSON (truncated or corrupt?): {err.msg}") from None
    if not isinstance(sample, dict):
        raise DataError(str(path), line, None, "expected a JSON object (an lm-eval sample)")
    if not isinstance(sample.get("doc"), dict):
        raise DataError(str(path), line, "doc", "missing: not an lm-eval samples file of a medeval task")
    return sample


def _metric_value(name: str, value, path, line) -> float | tuple[float, float]:
    if METRICS[name].aggregation == BINNED:
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
                and 0.0 <= value[0] <= 1.0 and isinstance(value[1], bool)):
            raise DataError(str(path), line, name, f"expected [confidence in 0..1, correct], got {value!r}")
        return float(value[0]), float(value[1])
    # every per-question value of the table lies in [0, 2] (Brier's upper bound; the others are 0..1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 2.0:
        raise DataError(str(path), line, name, f"expected a number in [0, 2], got {value!r}")
    return float(value)


def parse_line(text: str, path, line: int) -> tuple:
    """(id, options, category, data_sha256, {metric: value}) of one sample line; the metrics are those of
    the answers kind (single or multi) whose metrics the line carries, every one of them required."""
    sample = _load_line(text, path, line)
    doc = sample["doc"]
    qid = doc.get("id") or sample.get("doc_hash")
    if not isinstance(qid, str) or not qid:
        raise DataError(str(path), line, "doc.id", "missing: questions cannot be paired without an id")
    options = doc.get("options")
    if not isinstance(options, (list, dict)) or len(options) < 2:
        raise DataError(str(path), line, "doc.options", f"expected the question's options (2 or more), got {options!r}")
    answers = "multi" if any(m in sample for m in metrics_for("multi")) else "single"
    values = {}
    for name in metrics_for(answers):
        if name not in sample:
            raise DataError(str(path), line, name, "missing per-question metric")
        values[name] = _metric_value(name, sample[name], path, line)
    return qid, len(options), str(doc.get("category") or ""), str(doc.get("data_sha256") or UNKNOWN_DATA), values


def first_doc(path) -> dict:
    """The doc of the first question of a samples file (its data checksum holds for the whole file, which
    read_samples checks)."""
    with open(path, encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, 1):
            if text.strip():
                return _load_line(text, path, line_no)["doc"]
    raise DataError(str(path), None, None, "empty samples file")


def read_samples(path, expected: int | None = None, results_value: float | None = None) -> Samples:
    """All questions of one samples file; `expected` (n-samples) and `results_value` (the results file's value
    of the task's primary metric: acc, or hamming for a multi-answer task) are cross-checks."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "samples file not found (was lm_eval run with --log_samples?)")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, 1):
            if text.strip():
                rows.append(parse_line(text, path, line_no))
    if not rows:
        raise DataError(str(path), None, None, "empty samples file")
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(str(path), None, "doc.id", f"question id {dup!r} appears twice")
    if expected is not None and len(rows) != expected:
        raise DataError(str(path), None, None,
                        f"{len(rows)} questions but the results file says {expected} (truncated?)")
    checksums = sorted({r[3] for r in rows})
    if len(checksums) > 1:
        raise DataError(str(path), None, "doc.data_sha256", f"questions from several data files ({', '.join(checksums)})")
    names = list(rows[0][4])
    if any(list(r[4]) != names for r in rows):
        raise DataError(str(path), None, None, "lines of single- and multi-answer questions mixed in one file")
    answers = METRICS[names[0]].answers
    values, confidence, correct = {}, {}, {}
    for name in names:
        column = [r[4][name] for r in rows]
        if METRICS[name].aggregation == BINNED:
            pairs = np.array(column, dtype=np.float64)
            confidence[name], correct[name] = pairs[:, 0], pairs[:, 1]
        else:
            values[name] = np.array(column, dtype=np.float64)
    samples = Samples(str(path), ids, answers, values, confidence, correct,
                      np.array([r[1] for r in rows], dtype=np.float64), [r[2] for r in rows], checksums[0])
    primary = primary_metric(answers)
    if results_value is not None and not math.isclose(samples.score(primary), results_value, abs_tol=1e-6):
        raise DataError(str(path), None, primary, f"mean {samples.score(primary):.6f} differs from the results "
                        f"file's {results_value:.6f}: the files do not belong together")
    return samples


def samples_of(table, progress: bool = False) -> dict[tuple, Samples]:
    """(model, task, task_version, regime, fewshot_seed) -> Samples for every run in `table` (rows of
    load.load_table's DataFrame, of any metrics; the primary metric's value, where selected, is checked
    against the samples: `full_value` where clean.clean_table replaced `value`). A run without a samples file
    raises: it cannot be paired."""
    key = ["model", "task", "task_version", "regime", "fewshot_seed"]
    rows = table.assign(is_primary=table["metric"] == table["answers"].map(primary_metric),
                        checked=table["full_value"] if "full_value" in table else table["value"])
    rows = rows.sort_values("is_primary", ascending=False, kind="stable").drop_duplicates(key)
    missing = rows[rows["samples"] == ""]
    if len(missing):
        raise DataError(str(missing.iloc[0]["source"]), None, None,
                        f"no samples file for task {missing.iloc[0]['task']}: rerun lm_eval with --log_samples")
    items = list(rows.itertuples(index=False))
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="samples files", unit="file")
    return {(row.model, row.task, row.task_version, row.regime, row.fewshot_seed):
            read_samples(row.samples, expected=row.n_questions, results_value=row.checked if row.is_primary else None)
            for row in items}
