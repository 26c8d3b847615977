"""lm-eval output folders -> one tidy table (one row per model x task x seed x metric), with provenance.

lm-eval writes, per run, `<output>/<model_name_sanitized>/results_<stamp>.json` and, with
`--log_samples`, one `samples_<task>_<stamp>.jsonl` per task beside it. Every file is
schema-checked: a truncated, corrupt or foreign file is a DataError naming the file (and the
line and field for samples), never a silent number. Tasks that are not ours are skipped with a
warning; lm-eval's group rows are skipped because we compute our own averages.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from medtasks.common import UsageError
from medtasks.records import DataError
from medtasks.spec import ALL_BENCHMARKS, LANGUAGES
from results.provenance import model_revision, project_commit
from results.samples import read_samples

log = logging.getLogger(__name__)

COLUMNS = ("model", "model_path", "model_revision", "task", "task_version", "benchmark", "language",
           "regime", "n_shot", "fewshot_seed", "metric", "value", "stderr", "n_questions",
           "n_questions_full", "chance", "lm_eval_version", "project_commit", "eval_date", "source", "samples")
METRICS = ("acc", "strict_acc", "ece", "brier")  # what our task YAMLs report
DEFAULT_FEWSHOT_SEED = 1  # medtasks.loader's default when --metadata names no fewshot_seed
_RESULTS_RE = re.compile(r"^results_(?P<stamp>.+)\.json$")
_REQUIRED = {"results": dict, "versions": dict, "n-shot": dict, "n-samples": dict, "config": dict,
             "configs": dict, "lm_eval_version": str, "model_name": str}


class ResultsError(UsageError, ValueError):
    """Results that cannot be used together (different task versions, regimes, models, questions)."""


@dataclass(frozen=True)
class TaskName:
    task: str
    benchmark: str
    language: str


def parse_task(name: str) -> TaskName | None:
    """`<benchmark>_<language>` per medtasks' tables (suite or extra, e.g. truthfulqa_med), else None."""
    stem, _, lang = name.rpartition("_")
    if stem in ALL_BENCHMARKS and lang in LANGUAGES:
        return TaskName(name, stem, lang)
    return None


def regime_name(n_shot: int, chat: bool = False, system: bool = False) -> str:
    """Named evaluation regime: BioMistral's protocol is 3 English shots, no chat template."""
    name = "biomistral-3shot" if n_shot == 3 else f"{n_shot}shot"
    return name + ("+chat" if chat else "") + ("+system" if system else "")


def find_result_files(paths) -> list[Path]:
    """Every results_*.json under the given folders (or the given files themselves), sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in path.rglob("results_*.json") if p.is_file())
        else:
            raise ResultsError(f"{path}: no such file or folder")
    if not found:
        raise ResultsError(f"no lm-eval results_*.json under {', '.join(map(str, paths))}: "
                           "point at the --output_path of an lm_eval run")
    return sorted(set(found))


def read_results_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(str(path), None, None, f"not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise DataError(str(path), err.lineno, None, f"not valid JSON (truncated or corrupt?): {err.msg}") from None
    if not isinstance(data, dict):
        raise DataError(str(path), None, None, "not an lm-eval results file (expected a JSON object)")
    for key, kind in _REQUIRED.items():
        if key not in data:
            raise DataError(str(path), None, key, "missing: not an lm-eval results file (or a truncated one)")
        if not isinstance(data[key], kind):
            raise DataError(str(path), None, key, f"expected {kind.__name__}, got {type(data[key]).__name__}")
    return data


def _number(value, path: Path, where: str, field_name: str, allow_na: bool = False) -> float:
    if allow_na and value in ("N/A", None):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(str(path), where, field_name, f"expected a number, got {value!r}")
    return float(value)


def samples_path(results_file: Path, task: str) -> Path | None:
    stamp = _RESULTS_RE.match(results_file.name)
    if not stamp:
        return None
    candidate = results_file.with_name(f"samples_{task}_{stamp.group('stamp')}.jsonl")
    return candidate if candidate.is_file() else None


def chance_level(benchmark: str, samples: Path | None, questions: int) -> float:
    """Expected acc of a uniform guess over the questions evaluated: 1/options where every question has
    the benchmark's options; where the count varies (TruthfulQA: 2 to 13, by the categories chosen), the
    mean of 1/options over the questions in the samples file, NaN when the run has none."""
    bench = ALL_BENCHMARKS[benchmark]
    if not bench.min_options:
        return 1.0 / len(bench.letters)
    return read_samples(samples, expected=questions).chance if samples else math.nan


def pretrained_of(model_args) -> str:
    """The model path or hub id: model_args is a dict in lm-eval 0.4.13, a "k=v,k=v" string before."""
    if isinstance(model_args, dict):
        return str(model_args.get("pretrained") or "")
    if isinstance(model_args, str):
        pairs = dict(part.split("=", 1) for part in model_args.split(",") if "=" in part)
        return pairs.get("pretrained", "")
    return ""


def rows_from_results(path: Path, data: dict | None = None, hash_models: bool = True) -> list[dict]:
    """The tidy rows of one results file (one per task x metric), provenance attached."""
    path = Path(path)
    data = data if data is not None else read_results_json(path)
    config = data["config"]
    model_path = pretrained_of(config.get("model_args")) or data["model_name"]
    revision = model_revision(model_path, config.get("model_sha") or "", config.get("model_revision") or "",
                              hash_models=hash_models)
    date = data.get("date")
    eval_date = _dt.datetime.fromtimestamp(float(date), _dt.timezone.utc).isoformat(timespec="seconds") \
        if isinstance(date, (int, float)) else ""
    groups = set(data.get("group_subtasks") or {}) | set(data.get("groups") or {})
    common = {
        "model_path": model_path, "model_revision": revision,
        "lm_eval_version": data["lm_eval_version"],
        "project_commit": data.get("git_hash") or "unknown",
        "eval_date": eval_date, "source": str(path),
    }
    chat = bool(data.get("chat_template_sha") or data.get("chat_template"))
    system = bool(data.get("system_instruction_sha") or data.get("system_instruction"))
    rows, foreign = [], []
    for task, metrics in data["results"].items():
        if task in groups:
            continue
        name = parse_task(task)
        if name is None:
            foreign.append(task)
            continue
        where = f"results[{task!r}]"
        if not isinstance(metrics, dict):
            raise DataError(str(path), where, None, "expected an object of metrics")
        for key in ("versions", "n-shot", "n-samples"):
            if task not in data[key]:
                raise DataError(str(path), None, f"{key}[{task!r}]", "missing for a task that has results")
        n_shot = int(_number(data["n-shot"][task], path, None, f"n-shot[{task!r}]"))
        counts = data["n-samples"][task]
        if not isinstance(counts, dict) or "effective" not in counts:
            raise DataError(str(path), None, f"n-samples[{task!r}]", "expected {original, effective}")
        metadata = ((data["configs"].get(task) or {}).get("metadata") or {})
        seed = metadata.get("fewshot_seed", DEFAULT_FEWSHOT_SEED)
        questions = int(_number(counts["effective"], path, None, f"n-samples[{task!r}].effective"))
        samples = samples_path(path, task)
        base = {**common, "task": task, "task_version": str(data["versions"][task]),
                "benchmark": name.benchmark, "language": name.language,
                "regime": regime_name(n_shot, chat, system), "n_shot": n_shot, "fewshot_seed": int(seed),
                "n_questions": questions,
                "n_questions_full": int(_number(counts.get("original", counts["effective"]), path, None,
                                                f"n-samples[{task!r}].original")),
                "chance": chance_level(name.benchmark, samples, questions), "samples": str(samples or "")}
        found = False
        for metric in METRICS:
            key = f"{metric},none"
            if key not in metrics:
                continue
            found = True
            rows.append({**base, "metric": metric,
                         "value": _number(metrics[key], path, where, key),
                         "stderr": _number(metrics.get(f"{metric}_stderr,none"), path, where,
                                           f"{metric}_stderr,none", allow_na=True)})
        if not found:
            raise DataError(str(path), where, None, f"none of the metrics {', '.join(METRICS)} is present")
    if foreign:
        log.warning("%s: skipped tasks that are not medeval tasks: %s", path, ", ".join(sorted(foreign)))
    return rows


def load_rows(paths, hash_models: bool = True, progress: bool = False) -> list[dict]:
    files = find_result_files(paths)
    if progress:
        from tqdm import tqdm

        files = tqdm(files, desc="results files", unit="file")
    rows = []
    for path in files:
        rows.extend(rows_from_results(path, hash_models=hash_models))
    return rows


def load_table(paths, names: dict[str, str] | None = None, hash_models: bool = True,
               on_duplicate: str = "latest", progress: bool = False):
    """A pandas DataFrame with COLUMNS. `names` maps a model path to a display name.

    A run repeated with the same model, task, version, regime and seed keeps the latest
    (`on_duplicate="latest"`, with a warning) or raises (`"error"`).
    """
    import pandas as pd

    rows = load_rows(paths, hash_models=hash_models, progress=progress)
    if not rows:
        raise ResultsError("the results files hold no medeval task results")
    table = pd.DataFrame(rows)
    table["model"] = table["model_path"].map(display_names(table["model_path"].unique(), names or {}))
    table = table[list(COLUMNS)]
    key = ["model_path", "model_revision", "task", "task_version", "regime", "fewshot_seed", "metric"]
    dup = table.duplicated(key, keep=False)
    if dup.any():
        runs = sorted(table.loc[dup, "source"].unique())
        if on_duplicate == "error":
            raise ResultsError(f"the same evaluation appears in several files: {', '.join(runs)}")
        log.warning("repeated evaluations; keeping the latest of: %s", ", ".join(runs))
        table = table.sort_values("eval_date").drop_duplicates(key, keep="last")
    return table.sort_values(["model", "language", "benchmark", "fewshot_seed", "metric"]).reset_index(drop=True)


def display_names(paths, names: dict[str, str]) -> dict[str, str]:
    """Shortest unique path suffix per model (`ckpt/a/final` vs `ckpt/b/final`), unless named."""
    paths = list(paths)
    parts = {p: Path(p).parts or (p,) for p in paths}
    out = {}
    for p in paths:
        if p in names:
            out[p] = names[p]
            continue
        for depth in range(1, len(parts[p]) + 1):
            label = "/".join(parts[p][-depth:])
            if sum(1 for q in paths if "/".join(parts[q][-depth:]) == label) == 1:
                break
        out[p] = label
    return out


def table_provenance(table) -> dict:
    """What every export carries about the table as a whole."""
    return {
        "lm_eval_versions": sorted(table["lm_eval_version"].unique().tolist()),
        "eval_commits": sorted(table["project_commit"].unique().tolist()),
        "results_commit": project_commit(),
        "eval_dates": [str(table["eval_date"].min()), str(table["eval_date"].max())],
        "sources": sorted(table["source"].unique().tolist()),
    }
