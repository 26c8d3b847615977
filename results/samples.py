"""Per-question outcomes from lm-eval's samples_<task>_<stamp>.jsonl, validated line by line.

Each line holds the doc (with our stable question `id` and its `options`), and the per-question
metrics that medtasks.metrics.process_results computed: acc, strict_acc, ece = [confidence, correct],
brier.
We read those numbers rather than recompute them, so results and samples cannot disagree; and
we check that the file is complete and that its mean matches the results file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtasks.records import DataError


@dataclass
class Samples:
    source: str
    ids: list[str]
    acc: np.ndarray  # 0/1 per question
    strict_acc: np.ndarray
    confidence: np.ndarray  # largest letter probability (BioMistral's ECE confidence)
    brier: np.ndarray
    options: np.ndarray  # how many options each question offered

    @property
    def chance(self) -> float:
        """Expected acc of a uniform guess over these questions: the mean of 1/options."""
        return float(np.mean(1.0 / self.options))

    def metric(self, name: str) -> np.ndarray:
        if name not in ("acc", "strict_acc"):
            raise ValueError(f"per-question metric must be acc or strict_acc, not {name!r}")
        return getattr(self, name)

    def __len__(self) -> int:
        return len(self.ids)


def _flag(value, path, line, name) -> float:
    if isinstance(value, bool) or value not in (0, 1, 0.0, 1.0):
        raise DataError(str(path), line, name, f"expected 0 or 1, got {value!r}")
    return float(value)


def _skip_prompts(text: str) -> str:
    """The line without its "arguments" (the few-shot prompt, once per letter: most of the bytes).
    Unescaped `"resps": ` cannot occur inside a JSON string, so the cut is exact where lm-eval's key
    order holds; anything else falls back to parsing the whole line."""
    start = text.find(', "arguments": ')
    end = text.find(', "resps": ', start)
    return text[:start] + text[end:] if 0 < start < end else text


def parse_line(text: str, path, line: int) -> tuple:
    try:
        sample = json.loads(_skip_prompts(text))
    except json.JSONDecodeError:
        try:
            sample = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(str(path), line, None, f"not valid JSON (truncated or corrupt?): {err.msg}") from None
    if not isinstance(sample, dict):
        raise DataError(str(path), line, None, "expected a JSON object (an lm-eval sample)")
    doc = sample.get("doc")
    if not isinstance(doc, dict):
        raise DataError(str(path), line, "doc", "missing: not an lm-eval samples file of a medeval task")
    qid = doc.get("id") or sample.get("doc_hash")
    if not isinstance(qid, str) or not qid:
        raise DataError(str(path), line, "doc.id", "missing: questions cannot be paired without an id")
    options = doc.get("options")
    if not isinstance(options, (list, dict)) or len(options) < 2:
        raise DataError(str(path), line, "doc.options", f"expected the question's options (2 or more), got {options!r}")
    for name in ("acc", "strict_acc", "ece", "brier"):
        if name not in sample:
            raise DataError(str(path), line, name, "missing per-question metric")
    ece = sample["ece"]
    if not (isinstance(ece, list) and len(ece) == 2 and isinstance(ece[0], (int, float))
            and 0.0 <= ece[0] <= 1.0 and isinstance(ece[1], bool)):
        raise DataError(str(path), line, "ece", f"expected [confidence in 0..1, correct], got {ece!r}")
    brier = sample["brier"]
    if isinstance(brier, bool) or not isinstance(brier, (int, float)) or not 0.0 <= brier <= 2.0:
        raise DataError(str(path), line, "brier", f"expected a number in [0, 2], got {brier!r}")
    return (qid, _flag(sample["acc"], path, line, "acc"), _flag(sample["strict_acc"], path, line, "strict_acc"),
            float(ece[0]), float(brier), len(options))


def read_samples(path, expected: int | None = None, results_acc: float | None = None) -> Samples:
    """All questions of one samples file; `expected` (n-samples) and `results_acc` are cross-checks."""
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
    columns = np.array([r[1:] for r in rows], dtype=np.float64)
    samples = Samples(str(path), ids, *columns.T)
    if results_acc is not None and not math.isclose(samples.acc.mean(), results_acc, abs_tol=1e-6):
        raise DataError(str(path), None, "acc", f"mean {samples.acc.mean():.6f} differs from the results "
                        f"file's {results_acc:.6f}: the files do not belong together")
    return samples


def samples_of(table, progress: bool = False) -> dict[tuple, Samples]:
    """(model, task, task_version, regime, fewshot_seed) -> Samples for every run in `table`
    (load.load_table's DataFrame). A run without a samples file raises: it cannot be paired."""
    rows = table[table["metric"] == "acc"]
    missing = rows[rows["samples"] == ""]
    if len(missing):
        raise DataError(str(missing.iloc[0]["source"]), None, None,
                        f"no samples file for task {missing.iloc[0]['task']}: rerun lm_eval with --log_samples")
    items = list(rows.itertuples(index=False))
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="samples files", unit="file")
    return {(row.model, row.task, row.task_version, row.regime, row.fewshot_seed):
            read_samples(row.samples, expected=row.n_questions, results_acc=row.value) for row in items}
