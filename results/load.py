"""lm-eval output folders -> one tidy table (one row per model x task x seed x metric), with provenance.

lm-eval writes, per run, `<output>/<model_name_sanitized>/results_<stamp>.json` and, with
`--log_samples`, one `samples_<task>_<stamp>.jsonl` per task beside it. Every file is
schema-checked: a truncated, corrupt or foreign file is a DataError naming the file (and the
line and field for samples), never a silent number. What a task is comes from the run itself: the
benchmark and language its config passed to our loader (`dataset_kwargs`), its regime and regime
version (`metadata`), and the checksum of the data its questions came from (the samples' docs), all
checked against the benchmark spec (medtasks.spec). Tasks that are not the spec's are skipped with a
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

from medtasks import spec
from medtasks.common import UsageError
from medtasks.records import DataError
from results.provenance import model_revision, project_commit
from results.samples import UNKNOWN_DATA, first_doc, read_samples

log = logging.getLogger(__name__)

COLUMNS = ("model", "model_path", "model_revision", "task", "task_version", "benchmark", "language", "kind",
           "answers", "regime", "regime_version", "n_shot", "fewshot_seed", "metric", "value", "stderr", "n_questions",
           "n_questions_full", "chance", "data_sha256", "lm_eval_version", "project_commit", "eval_date", "source",
           "samples")
# Outputs made before the task YAMLs recorded `metadata.regime`: the regime is ASSUMED (the spec's regime of
# the benchmark when its shot count matches n-shot) and gets this version, so such runs never rank or compare
# with runs whose regime was recorded.
ASSUMED_REGIME_VERSION = 0
_RESULTS_RE = re.compile(r"^results_(?P<stamp>.+)\.json$")
_REQUIRED = {"results": dict, "versions": dict, "n-shot": dict, "n-samples": dict, "config": dict,
             "configs": dict, "lm_eval_version": str, "model_name": str}


class ResultsError(UsageError, ValueError):
    """Results that cannot be used together (different task versions, regimes, data, models, questions)."""


@dataclass(frozen=True)
class TaskName:
    task: str
    benchmark: str
    language: str


def parse_task(name: str) -> TaskName | None:
    """(benchmark, language) of one of the spec's task names (medtasks.spec.parse_task), else None."""
    try:
        bench, language = spec.parse_task(name)
    except KeyError:
        return None
    return TaskName(name, bench.key, language)


def task_of_config(task: str, config: dict) -> TaskName | None:
    """What a task of a results file is: the benchmark and language its config passed to our loader
    (`dataset_kwargs`), checked against the spec; the task name parsed for configs without them."""
    kwargs = config.get("dataset_kwargs") or {}
    if not {"benchmark", "language"} <= set(kwargs):
        return parse_task(task)
    bench, language = str(kwargs["benchmark"]), str(kwargs["language"])
    if bench not in spec.ALL_BENCHMARKS or language not in spec.current().languages_of(spec.ALL_BENCHMARKS[bench]):
        return None
    return TaskName(task, bench, language)


def regime_name(regime: str, chat: bool = False, system: bool = False) -> str:
    """The regime label of a run: its named regime, plus `+chat` / `+system` when lm-eval applied a chat
    template or a system prompt (the named regimes use neither)."""
    return regime + ("+chat" if chat else "") + ("+system" if system else "")


def run_regime(metadata: dict, benchmark: str, n_shot: int) -> tuple[str, int]:
    """(regime, version) of one task of a run, as its YAML recorded them in `metadata`. A run whose shot
    count is not its regime's (lm_eval --num_fewshot) is labelled `<regime>(n_shot=<n>)`. Outputs made before
    the YAMLs recorded a regime: see ASSUMED_REGIME_VERSION."""
    if "regime" in metadata:
        name, version = str(metadata["regime"]), int(metadata.get("regime_version", ASSUMED_REGIME_VERSION))
        known = spec.REGIMES.get(name)
        if known is not None and known.num_fewshot != n_shot:
            name = f"{name}(n_shot={n_shot})"
        return name, version
    assumed = spec.regime_of(spec.get_benchmark(benchmark))
    return (assumed.name if assumed.num_fewshot == n_shot else f"{n_shot}shot"), ASSUMED_REGIME_VERSION


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
    """Expected acc of a uniform guess over the questions evaluated: the spec's constant where the benchmark
    has one; where the option count varies (TruthfulQA: 2 to 13, by the categories chosen) the mean of
    1/options over the questions in the samples file, NaN when the run has none; NaN for multi-answer
    exams (their metrics have no single chance level)."""
    bench = spec.get_benchmark(benchmark)
    if bench.chance is not None:
        return bench.chance
    if bench.answers != "single" or not samples:
        return math.nan
    return read_samples(samples, expected=questions).chance


def data_checksum(samples: Path | None) -> str:
    """The sha256 of the store file a run's questions came from (every doc carries it), UNKNOWN_DATA
    without samples."""
    return str(first_doc(samples).get("data_sha256") or UNKNOWN_DATA) if samples else UNKNOWN_DATA


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
        config = data["configs"].get(task) or {}
        name = task_of_config(task, config)
        if name is None:
            foreign.append(task)
            continue
        bench = spec.get_benchmark(name.benchmark)
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
        metadata = config.get("metadata") or {}
        regime, regime_version = run_regime(metadata, bench.key, n_shot)
        questions = int(_number(counts["effective"], path, None, f"n-samples[{task!r}].effective"))
        samples = samples_path(path, task)
        base = {**common, "task": task, "task_version": str(data["versions"][task]),
                "benchmark": bench.key, "language": name.language, "kind": bench.kind, "answers": bench.answers,
                "regime": regime_name(regime, chat, system), "regime_version": regime_version, "n_shot": n_shot,
                "fewshot_seed": int(metadata.get("fewshot_seed", spec.DEFAULT_FEWSHOT_SEED)),
                "n_questions": questions,
                "n_questions_full": int(_number(counts.get("original", counts["effective"]), path, None,
                                                f"n-samples[{task!r}].original")),
                "chance": chance_level(bench.key, samples, questions), "data_sha256": data_checksum(samples),
                "samples": str(samples or "")}
        names = spec.metrics_for(bench.answers)
        found = False
        for metric in names:
            key = f"{metric},none"
            if key not in metrics:
                continue
            found = True
            rows.append({**base, "metric": metric,
                         "value": _number(metrics[key], path, where, key),
                         "stderr": _number(metrics.get(f"{metric}_stderr,none"), path, where,
                                           f"{metric}_stderr,none", allow_na=True)})
        if not found:
            raise DataError(str(path), where, None, f"none of the metrics {', '.join(names)} is present")
    if foreign:
        log.warning("%s: skipped tasks that are not tasks of this spec (a user's benchmark needs its spec file in "
                    "$%s): %s", path, spec.SPEC_PATH_ENV, ", ".join(sorted(foreign)))
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

    A run repeated with the same model, task, version, regime, data and seed keeps the latest
    (`on_duplicate="latest"`, with a warning) or raises (`"error"`).
    """
    import pandas as pd

    rows = load_rows(paths, hash_models=hash_models, progress=progress)
    if not rows:
        raise ResultsError("the results files hold no medeval task results")
    table = pd.DataFrame(rows)
    table["model"] = table["model_path"].map(display_names(table["model_path"].unique(), names or {}))
    table = table[list(COLUMNS)]
    key = ["model_path", "model_revision", "task", "task_version", "regime", "regime_version", "data_sha256",
           "fewshot_seed", "metric"]
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
        "data_sha256": {task: sorted(set(values)) for task, values in table.groupby("task")["data_sha256"]},
    }
