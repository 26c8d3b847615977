"""Translated vs native: does a model's score on BioMistral's suite, translated into a language, predict
its score on the exams written in that language? (issue 12 §4)

  native_view    one grid of rows model [language]: the suite's macro average (medeval_<lang>; translated
                 from English except in English), the native single-answer exams of the language
                 (medeval_native_<lang>) one by one and averaged, their difference, and the multi-answer
                 exams in columns of their own (hamming, emr); then, for every native exam that also exists
                 in translation (HEAD-QA: Spanish, and the authors' English), one grid pairing the two
                 languages question by question: the difference with its bootstrap interval, overall and
                 per category (medicine, nursing, ...)
  category_view  per-category scores of every task whose questions have a category, from the samples

Which exam is native where, and which metrics a task has, come from the spec (medtasks.spec); every task
is shown in its own regime (recorded by its YAML), and the notes say which.
"""
from __future__ import annotations

import math

import numpy as np

from medtasks import spec
from results.gate import Gate
from results.leaderboard import (
    HIGHER_IS_BETTER,
    UNIT,
    Cell,
    Grid,
    check_comparable,
    check_metric,
    data_note,
    limited_note,
    question_counts,
    seed_cell,
)
from results.load import ResultsError
from results.metrics import ACCURACY_METRICS, MULTI, PRIMARY
from results.samples import samples_of
from results.stats import macro_average, mean_std, stratified_bootstrap

SUITE, NATIVE, DIFFERENCE = "suite", "native", "native − suite"
ALL = "all"  # the row of every category together


def is_native(benchmark: str, language: str) -> bool:
    """Whether the questions of this benchmark were written in this language (the spec's native_languages)."""
    return language in spec.get_benchmark(benchmark).native_languages


def translated_pairs() -> list[tuple[str, str, str]]:
    """(benchmark, native language, translated language) of every native exam that also exists in a
    translation of the same questions (head_qa: es, en)."""
    registry = spec.current()
    return [(key, native, other) for key, bench in spec.NATIVE_BENCHMARKS.items()
            for native in bench.native_languages for other in registry.languages_of(bench)
            if other not in bench.native_languages]


def _models(table, models) -> list[str]:
    present = sorted(table["model"].unique())
    unknown = sorted(set(models or ()) - set(present))
    if unknown:
        raise ResultsError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(present)}")
    return list(models) if models else present


def _per_seed(rows) -> dict:
    """(model, task) -> {seed: value}."""
    out: dict = {}
    for r in rows[["model", "task", "fewshot_seed", "value"]].itertuples(index=False):
        out.setdefault((r.model, r.task), {})[r.fewshot_seed] = r.value
    return out


def _macro(values: dict, model: str, tasks: list[str]) -> dict[int, float]:
    """Per seed, the macro average of `tasks` (NaN for a seed missing one: never an average over fewer)."""
    seeds = {s for t in tasks for s in values.get((model, t), {})}
    return {s: macro_average([values.get((model, t), {}).get(s, math.nan) for t in tasks]) for s in sorted(seeds)}


def _ordered(rows, kind_order: dict) -> list[str]:
    pairs = rows[["task", "benchmark"]].drop_duplicates()
    return [t for _, t in sorted(zip(pairs["benchmark"].map(kind_order), pairs["task"]))]


def row_label(model: str, language: str) -> str:
    """The label of a row of the per-language grid."""
    return f"{model} [{language}]"


def language_grid(table, metric: str = PRIMARY, models=None, languages=None) -> Grid:
    """Rows model [language]; columns: the suite's average, the native exams' average, their difference,
    each native single-answer exam, and hamming / emr of each native multi-answer exam."""
    import pandas as pd

    models = _models(table, models)
    table = table[table["model"].isin(models)]
    if languages:
        table = table[table["language"].isin(languages)]
    table = table.assign(native=[is_native(b, lang) for b, lang in zip(table["benchmark"], table["language"])])
    exams = table[(table["kind"] == "native") & table["native"]]
    single = table[(table["metric"] == metric)
                   & ((table["kind"] == "suite") | ((table["kind"] == "native") & table["native"]
                                                    & (table["answers"] == "single")))]
    multi = exams[(exams["answers"] == "multi") & exams["metric"].isin(MULTI)]
    if single.empty and multi.empty:
        raise ResultsError(f"no suite or native-exam {metric} results to compare: run the tasks of "
                           f"{spec.language_group('<lang>')} and {spec.native_group('<lang>')}")
    check_comparable(single)
    check_comparable(multi)
    counts = {**question_counts(single), **question_counts(multi)}
    order = {key: i for i, key in enumerate(spec.ALL_BENCHMARKS)}
    values = _per_seed(single)
    multi_values = {m: _per_seed(multi[multi["metric"] == m]) for m in MULTI}
    native_benches = [b for b in spec.NATIVE_BENCHMARKS if b in set(exams["benchmark"])]
    single_cols = [b for b in native_benches if spec.ALL_BENCHMARKS[b].answers == "single"]
    multi_cols = [(b, m) for b in native_benches if spec.ALL_BENCHMARKS[b].answers == "multi" for m in MULTI]
    columns = ([SUITE, NATIVE, DIFFERENCE] + [spec.ALL_BENCHMARKS[b].short for b in single_cols]
               + [f"{spec.ALL_BENCHMARKS[b].short} {m}" for b, m in multi_cols])
    body, covered = [], []
    shown_languages = [code for code in spec.LANGUAGES if code in set(single["language"]) | set(multi["language"])]
    for lang in shown_languages:
        here = single[single["language"] == lang]
        suite_tasks = _ordered(here[here["kind"] == "suite"], order)
        native_tasks = _ordered(here[here["kind"] == "native"], order)
        task_of = dict(zip(here["benchmark"], here["task"]))
        multi_task = dict(zip(multi[multi["language"] == lang]["benchmark"], multi[multi["language"] == lang]["task"]))
        suite_size = len([b for b in spec.BENCHMARKS if lang in spec.current().languages_of(spec.BENCHMARKS[b])])
        if suite_tasks:
            covered.append(f"{lang} {len(suite_tasks)} of {suite_size}")
        for model in models:
            suite_cell, native_cell = (
                seed_cell(_macro(values, model, tasks).values(), tasks, counts) if tasks else None
                for tasks in (suite_tasks, native_tasks))
            difference = (Cell(native_cell.mean - suite_cell.mean) if suite_cell and native_cell else None)
            cells = [suite_cell, native_cell, difference]
            cells += [seed_cell(values.get((model, task_of[b]), {}).values(), [task_of[b]], counts)
                      if b in task_of else None for b in single_cols]
            cells += [seed_cell(multi_values[m].get((model, multi_task[b]), {}).values(), [multi_task[b]], counts)
                      if b in multi_task else None for b, m in multi_cols]
            if any(c is not None for c in cells):
                body.append((row_label(model, lang), cells))
    shown = pd.concat([single, multi])
    regimes = sorted({f"{t}: {r} v{v}" for t, r, v in shown[["task", "regime", "regime_version"]].itertuples(index=False)})
    translated = [code for code in shown_languages if not all(is_native(b, code) for b in spec.BENCHMARKS)]
    notes = [f"{metric} ({UNIT}) for the suite and the single-answer exams; {' and '.join(MULTI)} for the "
             "multi-answer exams; mean ± population std over few-shot seeds",
             f"{SUITE}: macro average of the suite's tasks in these runs ({spec.language_group('<lang>')}; "
             f"covered: {', '.join(covered) or 'none'}), machine-translated from English in "
             f"{', '.join(translated) or 'none of these languages'}, original elsewhere; {NATIVE}: macro average of the language's "
             f"single-answer native exams ({spec.native_group('<lang>')}); {DIFFERENCE}: difference of the two means",
             "regimes (each task in its own): " + "; ".join(regimes), data_note(shown),
             limited_note(counts)]
    return Grid(f"Translated suite vs native exams ({metric})", columns, body, [n for n in notes if n],
                higher_is_better=True, reference_rows=(), reference_columns=())


def _paired_matrix(runs: dict, seeds: list[int], ids: list[str], metric: str) -> np.ndarray:
    """(questions, seeds) values of `metric` for `ids`, one column per seed."""
    cols = []
    for s in seeds:
        index = {qid: i for i, qid in enumerate(runs[s].ids)}
        cols.append(runs[s].metric(metric)[[index[q] for q in ids]])
    return np.stack(cols, axis=1)


def paired_grid(table, benchmark: str, native: str, translated: str, metric: str = PRIMARY, models=None,
                gate: Gate = Gate(), exclude: dict[str, set[str]] | None = None) -> Grid | None:
    """The native exam against its translation, question by question (ids shared by both languages), per
    model: overall and per category, each language's score, the difference native - translated and its
    percentile bootstrap interval (questions resampled; a question keeps its few-shot seeds together).
    `exclude` {task: question ids} leaves questions out (clean subsets). None when no model ran both tasks."""
    bench = spec.get_benchmark(benchmark)
    metric = metric if bench.answers == "single" else spec.primary_metric(bench.answers)
    tasks = (spec.task_name(benchmark, native), spec.task_name(benchmark, translated))
    rows = table[(table["metric"] == metric) & table["task"].isin(tasks) & table["model"].isin(_models(table, models))]
    both = [m for m, group in rows.groupby("model") if set(group["task"]) == set(tasks)]
    rows = rows[rows["model"].isin(both)]
    if rows.empty:
        return None
    check_comparable(rows)
    runs: dict = {}
    for (model, task, _v, _r, seed), samples in samples_of(rows).items():
        runs.setdefault((model, task), {})[seed] = samples
    counts = question_counts(rows)
    level = 1.0 - gate.alpha
    columns = [f"{native} (native)", f"{translated} (translated)", f"{native} − {translated}",
               f"{round(level * 100)}% CI low", f"{round(level * 100)}% CI high"]
    body, notes = [], []
    for model in both:
        mine, other = runs[(model, tasks[0])], runs[(model, tasks[1])]
        seeds = sorted(set(mine) & set(other))
        if not seeds:
            notes.append(f"{model}: no few-shot seed run in both languages; not paired")
            continue
        ids = set.intersection(*[set(x.ids) for x in [mine[s] for s in seeds] + [other[s] for s in seeds]])
        ids = sorted(ids - set().union(*[(exclude or {}).get(t, set()) for t in tasks]))
        if not ids:
            raise ResultsError(f"{tasks[0]} and {tasks[1]} of {model} share no question ids: were they run on the "
                               "same questions (the same --limit)?")
        category = dict(zip(mine[seeds[0]].ids, mine[seeds[0]].categories))
        nat, tra = _paired_matrix(mine, seeds, ids, metric), _paired_matrix(other, seeds, ids, metric)
        groups = [(ALL, np.ones(len(ids), dtype=bool))]
        groups += [(c, np.array([category[q] == c for q in ids])) for c in sorted({category[q] for q in ids} - {""})]
        for name, keep in groups:
            n = int(keep.sum())
            delta, low, high = stratified_bootstrap([(tra[keep].mean(axis=1), nat[keep].mean(axis=1))],
                                                    gate.n_boot, gate.seed, level, f"{model}:{benchmark}:{name}")
            full = [counts[t][1] if name == ALL else n for t in tasks]
            cells = [Cell(*mean_std(list(m[keep].mean(axis=0))), len(seeds), questions=n, questions_full=f)
                     for m, f in ((nat, full[0]), (tra, full[1]))]
            body.append((f"{model} · {name}", cells + [Cell(delta), Cell(low), Cell(high)]))
        if len(ids) < min(len(x) for x in list(mine.values()) + list(other.values())):
            notes.append(f"{model}: {len(ids)} questions answered in both languages are paired")
    names = {code: spec.get_language(code).name for code in (native, translated)}
    notes = [f"{metric} ({UNIT}); paired by question id over few-shot seeds "
             f"{', '.join(map(str, sorted(rows['fewshot_seed'].unique())))} (mean ± population std over seeds); "
             f"{native} − {translated}: native minus translated, percentile bootstrap over questions "
             f"({gate.n_boot} resamples, seed {gate.seed})",
             "categories: the exam's own, from the questions' docs; rows of a category count the questions "
             "evaluated in it", *notes, data_note(rows), limited_note(counts)]
    return Grid(f"{bench.title}: native {names[native]} vs its {names[translated]} translation, "
                f"the same questions ({metric})", columns, body, [n for n in notes if n], higher_is_better=True,
                reference_rows=(), reference_columns=(), name=f"{benchmark}_{native}_{translated}")


def native_view(table, metric: str = PRIMARY, regime=None, models=None, languages=None,
                exclude: dict[str, set[str]] | None = None) -> list[Grid]:
    """The translated-vs-native grids: per language first, then each native exam against its translation."""
    if metric not in ACCURACY_METRICS:
        raise ResultsError(f"the native view scores single-answer tasks with {' or '.join(ACCURACY_METRICS)} "
                           f"(multi-answer exams with {' and '.join(MULTI)}, in their own "
                           f"columns), not {metric!r}")
    if regime is not None:
        raise ResultsError("the native view shows every task in its own regime (recorded by its YAML): drop --regime")
    grids = [language_grid(table, metric, models, languages)]
    for benchmark, native, translated in translated_pairs():
        if languages and not {native, translated} <= set(languages):
            continue
        grid = paired_grid(table, benchmark, native, translated, metric, models, exclude=exclude)
        if grid is not None:
            grids.append(grid)
    return grids


def category_view(table, metric: str = PRIMARY, regime=None, models=None, languages=None,
                  exclude: dict[str, set[str]] | None = None) -> Grid:
    """Rows `<task> · <category>` (and `<task> · all`) of every task whose questions have a category,
    columns the models: the metric recomputed from the samples on each category's questions, per few-shot
    seed, then mean ± population std over seeds. `exclude` {task: question ids} leaves questions out."""
    check_metric(metric)
    models = _models(table, models)
    rows = table[(table["metric"] == metric) & table["model"].isin(models) & (table["samples"] != "")]
    if regime is not None:
        rows = rows[rows["regime"] == regime]
    if languages:
        rows = rows[rows["language"].isin(languages)]
    check_comparable(rows)
    per_task: dict = {}
    for (model, task, _v, _r, seed), samples in samples_of(rows, progress=True).items():
        if any(samples.categories):
            per_task.setdefault(task, {}).setdefault(model, {})[seed] = samples
    if not per_task:
        raise ResultsError(f"no {metric} results of a task whose questions have a category (HEAD-QA's have); "
                           "categories come from the samples (lm_eval --log_samples)")
    full = {t: c[1] for t, c in question_counts(rows).items()}
    body = []
    for task in sorted(per_task):
        runs = per_task[task]
        categories = sorted({c for by_seed in runs.values() for s in by_seed.values() for c in s.categories} - {""})
        for name in [ALL, *categories]:
            cells = []
            for model in models:
                by_seed = runs.get(model, {})
                dropped = (exclude or {}).get(task, set())
                keep = {seed: np.array([(name == ALL or c == name) and q not in dropped
                                        for q, c in zip(x.ids, x.categories)]) for seed, x in by_seed.items()}
                scores = [v for v in (x.score(metric, keep[seed]) for seed, x in by_seed.items()) if not math.isnan(v)]
                if not scores:
                    cells.append(None)
                    continue
                first = next(iter(by_seed))
                n = int(keep[first].sum())  # questions left out by `exclude` leave the split's count too
                whole = full[task] - (len(by_seed[first]) - n) if name == ALL else n
                cells.append(Cell(*mean_std(scores), len(scores), questions=n, questions_full=whole))
            body.append((f"{task} · {name}", cells))
    notes = [f"{metric} ({UNIT}) recomputed from the samples on the questions of each category; mean ± population "
             "std over few-shot seeds; categories are the exam's own, from the questions' docs",
             data_note(rows[rows["task"].isin(per_task)]), limited_note(question_counts(rows[rows["task"].isin(per_task)]))]
    return Grid(f"Per-category scores ({metric})", models, body, [n for n in notes if n],
                higher_is_better=HIGHER_IS_BETTER[metric], best_along="row", reference_rows=(),
                reference_columns=()).mark_best()
