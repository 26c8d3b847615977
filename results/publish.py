"""Publishing one model's results: the Hugging Face model card `model-index` block and a standalone JSON.

Values are means over few-shot seeds as lm-eval reports them (fractions 0..1, rounded to lm-eval's
four decimals); the std, the seeds, the question counts (a run made with --limit says so), the task
version and the provenance travel with every number.
The model-index block is built with huggingface_hub's own EvalResult / ModelCardData, so it is
what the hub parses to show evaluation results.
"""
from __future__ import annotations

import math

from medtasks.sources.hub import BIOINSTRUCTQA
from medtasks.spec import BENCHMARKS, LANGUAGES, METRICS, get_benchmark
from results.leaderboard import UNIT, select, summary_view
from results.load import ResultsError, table_provenance
from results.metrics import ACCURACY_METRICS, PRIMARY
from results.render import DECIMALS
from results.stats import mean_std

SCHEMA = "medeval-results/2"  # 2: values are fractions as lm-eval reports them (1: percent); tasks carry data_sha256
SOURCE_NAME = "medeval (lm-evaluation-harness)"


def hub_dataset(benchmark: str, language: str) -> tuple[str, str]:
    """(dataset id, config) the numbers refer to: a benchmark of BioMistral's suite is named by its corpus in
    BioMistral's BioInstructQA (which holds the English originals and the seven translations); any other
    by its medeval task, whose data the `data_sha256` of each result pins down."""
    bench = get_benchmark(benchmark)
    if bench.corpus_name:
        return BIOINSTRUCTQA[0], f"{bench.corpus_name}-{LANGUAGES[language].name}"
    return f"medeval/{bench.key}", language


def model_summary(table, model: str, regime: str | None = None) -> dict:
    """Everything published about one model: per task, per language and overall, every metric."""
    if model not in set(table["model"]):
        raise ResultsError(f"unknown model {model!r}; valid: {', '.join(sorted(table['model'].unique()))}")
    part = table[(table["model"] == model) & table["benchmark"].isin(list(BENCHMARKS))]  # the ten-task suite
    rows = select(part, PRIMARY, regime)
    regime = rows["regime"].iloc[0]
    part = part[part["regime"] == regime]
    tasks = []
    for task, group in part.groupby("task", sort=False):
        first = group.iloc[0]
        metrics = {}
        for metric, values in group.groupby("metric")["value"]:
            mean, std = mean_std(values.tolist())
            metrics[metric] = {"value": round(mean, DECIMALS), "std": round(std, DECIMALS),
                               "seeds": sorted(group[group["metric"] == metric]["fewshot_seed"].tolist())}
        dataset, config = hub_dataset(first["benchmark"], first["language"])
        tasks.append({"task": task, "benchmark": first["benchmark"], "language": first["language"],
                      "title": f"{BENCHMARKS[first['benchmark']].title} [{LANGUAGES[first['language']].name}]",
                      "task_version": first["task_version"], "n_shot": int(first["n_shot"]),
                      "questions": int(first["n_questions"]), "questions_in_split": int(first["n_questions_full"]),
                      "limited": bool(first["n_questions"] < first["n_questions_full"]),
                      "regime": first["regime"], "regime_version": int(first["regime_version"]),
                      "data_sha256": first["data_sha256"],
                      "dataset": dataset, "dataset_config": config, "metrics": metrics})
    order = {(b, lang): i for i, (b, lang) in enumerate((b, lang) for lang in LANGUAGES for b in BENCHMARKS)}
    tasks.sort(key=lambda t: order[(t["benchmark"], t["language"])])
    averages = {}
    for metric in ACCURACY_METRICS:
        if metric in set(part["metric"]):
            grid = summary_view(part, metric=metric, regime=regime)
            averages[metric] = {col: None if c is None or math.isnan(c.mean) else round(c.mean, DECIMALS)
                                for col, c in zip(grid.columns, grid.rows[0][1])}
    first = part.iloc[0]
    return {"schema": SCHEMA, "unit": UNIT, "model": {"name": model, "path": first["model_path"],
                                        "revision": first["model_revision"]},
            "regime": regime, "tasks": tasks, "averages": averages,
            "provenance": table_provenance(part)}


def to_model_index(summary: dict, url: str | None = None) -> str:
    """The YAML front-matter block (`model-index:` ...) for the model card README.md."""
    from huggingface_hub import EvalResult, ModelCardData

    prov = summary["provenance"]
    source = f"{SOURCE_NAME} {', '.join(prov['lm_eval_versions'])}, medeval commit {prov['results_commit'][:12]}"
    results = []
    for task in summary["tasks"]:
        for metric, m in task["metrics"].items():
            results.append(EvalResult(
                task_type="multiple-choice", task_name="Medical multiple-choice QA",
                dataset_type=task["dataset"], dataset_name=task["title"], dataset_config=task["dataset_config"],
                dataset_split="test", dataset_args={"num_few_shot": task["n_shot"], "language": task["language"]},
                metric_type=metric, metric_value=m["value"], metric_name=METRICS[metric].description,
                metric_args={"std": m["std"], "fewshot_seeds": m["seeds"], "questions": task["questions"],
                             "questions_in_split": task["questions_in_split"], "unit": UNIT,
                             "task": task["task"], "task_version": task["task_version"],
                             "data_sha256": task["data_sha256"],
                             "regime": summary["regime"], "model_revision": summary["model"]["revision"],
                             "evaluated_with": source},
                # the hub wants a URL with a source name; without one the source stays in metric_args
                source_name=source if url else None, source_url=url))
    return ModelCardData(model_name=summary["model"]["name"], eval_results=results).to_yaml() + "\n"
