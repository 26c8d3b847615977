"""The benchmark spec: the one home of what a task is.

    languages   medtasks/spec/languages.py   per-language facts (script, translation codes, ...)
    benchmarks  medtasks/spec/benchmarks.py  suite, extra and native benchmarks (family, options, regime, ...)
    regimes     medtasks/spec/regimes.py     the metric table and the named regimes (shots, seeds)
    names       medtasks/spec/names.py       the naming grammar of tasks, groups and tags (build and parse)
    user        medtasks/spec/user.py        users' spec files ($MEDEVAL_SPEC_PATH): new benchmarks, languages
    registry    medtasks/spec/registry.py    built-ins + spec files, validated together

The task YAML generator, the loader, the importers and `results` read this; nothing else spells a
task name, a metric list or a regime.
"""
from medtasks.spec.benchmarks import PUBMEDQA_LABELS, Benchmark
from medtasks.spec.languages import SOURCE_LANGUAGE, Language, script_share
from medtasks.spec.names import (NATIVE_GROUP, SUITE_GROUP, TRUTHFULQA_GROUP, benchmark_tag, language_group,
                                 native_group, task_name)
from medtasks.spec.regimes import (DEFAULT_FEWSHOT_SEED, FEWSHOT_SEEDS, HEADLINE_METRIC, METRICS, REGIMES,
                                   SUITE_REGIME, Metric, Regime, get_regime, metrics_for, primary_metric)
from medtasks.spec.registry import (ALL_BENCHMARKS, BENCHMARKS, EXTRA_BENCHMARKS, LANGUAGES, NATIVE_BENCHMARKS,
                                    current, get_benchmark, get_language, parse_task, regime_of, reload,
                                    suite_languages, task_names, task_pairs)
from medtasks.spec.user import SPEC_PATH_ENV, DataSource, SpecError

__all__ = [
    "ALL_BENCHMARKS", "BENCHMARKS", "Benchmark", "DEFAULT_FEWSHOT_SEED", "DataSource", "EXTRA_BENCHMARKS",
    "FEWSHOT_SEEDS", "HEADLINE_METRIC", "LANGUAGES", "Language", "METRICS", "Metric", "NATIVE_BENCHMARKS",
    "NATIVE_GROUP", "PUBMEDQA_LABELS", "REGIMES", "Regime", "SOURCE_LANGUAGE", "SPEC_PATH_ENV", "SUITE_GROUP",
    "SUITE_REGIME", "SpecError", "TRUTHFULQA_GROUP", "benchmark_tag", "current", "get_benchmark", "get_language",
    "get_regime", "language_group", "metrics_for", "native_group", "parse_task", "primary_metric", "regime_of",
    "reload", "script_share", "suite_languages", "task_name", "task_names", "task_pairs",
]
