"""Leaderboards from the tidy table: task x language x model, mean ± population std over few-shot seeds.

Views (a registry; each returns a Grid, or a list of them, that render.py writes as Markdown, CSV or LaTeX):
  summary     models x languages: per-language macro average, overall, chance-centred overall
  tasks       models x the ten tasks of ONE language + averages, with a chance row
  headline    BioMistral's headline table layout (its column names, mean over seeds)
  grid        task x language rows, a chance column, one column per model
  native      translated suite vs native exams per language; native vs translated exam, paired (results/native.py)
  categories  per-category scores of the tasks whose questions have a category (HEAD-QA), from the samples
Averages are taken per few-shot seed, then summarised over seeds (so the std of an average is
the spread of the per-seed averages). An average over an incomplete set of tasks is left empty,
never computed over fewer tasks; rows of different data, task versions or regimes are never mixed.
Benchmarks outside the ten-task suite (TruthfulQA's medical categories) never enter a view's tasks
or averages: summary and tasks views show them in columns of their own, in their own regime.
Values are fractions 0..1 under lm-eval's metric names, as its score table prints them. A cell scored
on fewer questions than its test split holds (lm_eval --limit) carries LIMITED_MARK, explained in a note.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from medtasks.spec import (
    BENCHMARKS,
    EXTRA_BENCHMARKS,
    LANGUAGES,
    METRICS,
    SOURCE_LANGUAGE,
)
from results.load import ResultsError
from results.metrics import ACCURACY_METRICS, PRIMARY
from results.samples import UNKNOWN_DATA
from results.stats import chance_centred, macro_average, mean_std

HIGHER_IS_BETTER = {name: metric.higher_is_better for name, metric in METRICS.items()}  # the spec's table
UNIT = "fractions 0..1, as lm-eval reports them"  # the one unit of every table and figure
LIMITED_MARK = "†"


@dataclass
class Cell:
    mean: float
    std: float = math.nan
    seeds: int = 0
    best: bool = False
    questions: int = 0  # questions scored per seed (summed over the tasks of an average); 0: a reference cell
    questions_full: int = 0  # questions in the test split(s)

    @property
    def limited(self) -> bool:
        """Scored on fewer questions than the split holds (lm_eval --limit): not comparable with full runs."""
        return self.questions < self.questions_full


def limited_note(counts: dict[str, tuple[int, int]]) -> str:
    """The legend of LIMITED_MARK for {task: (questions scored, questions in the split)}; "" when none is cut."""
    cut = {t: c for t, c in counts.items() if c[0] < c[1]}
    if not cut:
        return ""
    scored, full = (sum(c[i] for c in cut.values()) for i in (0, 1))
    return (f"{LIMITED_MARK} limited run (lm_eval --limit): {len(cut)} of {len(counts)} tasks scored on a subset, "
            f"{scored} of {full} questions; not comparable with scores on the full test split")


@dataclass
class Grid:
    title: str
    columns: list[str]
    rows: list[tuple[str, list[Cell | None]]]
    notes: list[str] = field(default_factory=list)
    higher_is_better: bool = True
    best_along: str = "column"  # "column": best model per column; "row": best model per row
    reference_rows: tuple[str, ...] = ("chance",)  # rows never marked best
    reference_columns: tuple[str, ...] = ("chance",)
    show_std: bool = True
    name: str = ""  # file-name part when a view writes several grids (native: "", "head_qa_es_en", ...)

    def mark_best(self) -> "Grid":
        better = max if self.higher_is_better else min
        if self.best_along == "column":
            lines = [[row[1][j] for row in self.rows if row[0] not in self.reference_rows]
                     for j in range(len(self.columns))]
        else:
            keep = [j for j, c in enumerate(self.columns) if c not in self.reference_columns]
            lines = [[cells[j] for j in keep] for _, cells in self.rows]
        for line in lines:
            valid = [c for c in line if c is not None and not math.isnan(c.mean)]
            if valid:
                top = better(c.mean for c in valid)
                for c in valid:
                    c.best = math.isclose(c.mean, top, abs_tol=1e-12)
        return self


def check_metric(metric: str) -> str:
    if metric not in HIGHER_IS_BETTER:
        raise ResultsError(f"unknown metric {metric!r}; valid: {', '.join(HIGHER_IS_BETTER)}")
    return metric


def select(table, metric: str = PRIMARY, regime: str | None = None, models=None, languages=None,
           benchmarks=BENCHMARKS):
    """Rows of one metric and one regime, checked comparable: one task version and one question
    count per task across the selected models. Only `benchmarks` (default: the ten-task suite)."""
    check_metric(metric)
    rows = table[(table["metric"] == metric) & table["benchmark"].isin(list(benchmarks))]
    if models:
        unknown = sorted(set(models) - set(rows["model"]))
        if unknown:
            raise ResultsError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(sorted(rows['model'].unique()))}")
        rows = rows[rows["model"].isin(models)]
    if languages:
        rows = rows[rows["language"].isin(languages)]
    regimes = sorted(rows["regime"].unique())
    if regime is None and len(regimes) > 1:
        raise ResultsError(f"the results mix regimes {', '.join(regimes)}: pick one (--regime)")
    if regime is not None:
        if regime not in regimes:
            raise ResultsError(f"no results in regime {regime!r}; present: {', '.join(regimes)}")
        rows = rows[rows["regime"] == regime]
    if rows.empty:
        where = " (multi-answer exams: --view native)" if METRICS[metric].answers == "multi" else ""
        raise ResultsError(f"no {metric} results to show{where}")
    check_comparable(rows)
    return rows


def check_comparable(rows) -> None:
    """Raise when a task appears with several data files (a task name means one dataset), regimes, task or
    regime versions, question counts or chance levels (other questions): such numbers are never averaged
    or ranked together. A run without samples has an unknown data checksum, which conflicts with none."""
    for task, group in rows.groupby("task"):
        data = sorted(set(group["data_sha256"]) - {UNKNOWN_DATA})
        if len(data) > 1:
            detail = "; ".join(f"data {sha[:12]}: {', '.join(sorted(group[group['data_sha256'] == sha]['model'].unique()))}"
                               for sha in data)
            raise ResultsError(f"{task} was run on different data ({detail}); a task name means one dataset: "
                               "select runs made on the same data (--models)")
        keys = group.groupby(["regime", "regime_version", "task_version", "n_questions"])["model"].unique()
        if len(keys) > 1:
            detail = "; ".join(f"regime {r} v{rv}, version {v}, {n} questions: {', '.join(sorted(m))}"
                               for (r, rv, v, n), m in keys.items())
            raise ResultsError(f"{task} cannot be compared across these runs ({detail}); "
                               "select runs of one regime, task version and --limit (--models)")
    task_chance(rows)


def data_note(rows) -> str:
    """The data each task was scored on: the store file's sha256 (first 12 hex digits) from the samples."""
    known = rows[rows["data_sha256"] != UNKNOWN_DATA].groupby("task")["data_sha256"].first()  # one, once comparable
    checksums = {task: known.get(task, UNKNOWN_DATA) for task in sorted(rows["task"].unique())}
    return "data (sha256 of the store file, first 12): " + ", ".join(
        f"{task} {sha[:12] if sha != UNKNOWN_DATA else UNKNOWN_DATA + ' (no samples)'}" for task, sha in checksums.items())


def task_chance(rows) -> dict[str, float]:
    """{task: chance level} from the tidy table (load.chance_level: measured on the questions evaluated
    where the option count varies; NaN where runs without samples leave it unknown). Runs of one task
    with different chance levels evaluated different questions, and are refused."""
    out = {}
    for task, values in rows.groupby("task")["chance"]:
        levels = sorted({round(v, 9) for v in values if not math.isnan(v)})
        if len(levels) > 1:
            raise ResultsError(f"{task}: the runs evaluated different questions (chance levels "
                               f"{', '.join(f'{c:.4f}' for c in levels)}); select runs of one question set (--models)")
        out[task] = levels[0] if levels else math.nan
    return out


def _per_seed(rows) -> dict:
    """model -> seed -> task -> value."""
    out: dict = {}
    for r in rows[["model", "fewshot_seed", "task", "value"]].itertuples(index=False):
        out.setdefault(r.model, {}).setdefault(r.fewshot_seed, {})[r.task] = r.value
    return out


def question_counts(rows) -> dict[str, tuple[int, int]]:
    """{task: (questions scored, questions in the split)}; one count per task once check_comparable passed."""
    counts = rows.groupby("task")[["n_questions", "n_questions_full"]].max()
    return {t: (int(n), int(full)) for t, n, full in counts.itertuples()}


def seed_cell(values, tasks=(), counts=None) -> Cell | None:
    """Mean ± std over seeds of a score over `tasks` (whose question counts it carries)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    mean, std = mean_std(values)
    scored = [counts[t] for t in tasks if t in counts] if counts else []
    return Cell(mean, std, len(values), questions=sum(c[0] for c in scored), questions_full=sum(c[1] for c in scored))


def _tasks_by_language(rows) -> dict[str, list[str]]:
    order = {key: i for i, key in enumerate(BENCHMARKS)}
    present = rows[["language", "benchmark", "task"]].drop_duplicates()
    out: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        part = present[present["language"] == lang]
        if len(part):
            out[lang] = [t for _, t in sorted(zip(part["benchmark"].map(order), part["task"]))]
    return out


def _averages(seeds: dict, tasks_by_lang: dict, chance: dict | None = None) -> dict:
    """Per seed: macro per language, and the mean of the language averages ("all"); chance-centred
    scores when given the tasks' chance levels."""
    out = {}
    for seed, values in seeds.items():
        per_lang = {}
        for lang, tasks in tasks_by_lang.items():
            scores = [values.get(t, math.nan) for t in tasks]
            if chance:
                scores = [chance_centred(s, chance[t]) for s, t in zip(scores, tasks)]
            per_lang[lang] = macro_average(scores)
        per_lang["all"] = macro_average(list(per_lang.values()))
        out[seed] = per_lang
    return out


def _summary_cells(seeds: dict, tasks_by_lang: dict, metric: str, counts: dict, chance: dict) -> dict[str, Cell | None]:
    plain = _averages(seeds, tasks_by_lang)
    every = [t for tasks in tasks_by_lang.values() for t in tasks]
    cells = {lang: seed_cell([plain[s][lang] for s in plain], tasks, counts) for lang, tasks in tasks_by_lang.items()}
    cells["all"] = seed_cell([plain[s]["all"] for s in plain], every, counts)
    if metric in ACCURACY_METRICS:
        centred = _averages(seeds, tasks_by_lang, chance)
        cells["centred"] = seed_cell([centred[s]["all"] for s in centred], every, counts)
    return cells


def _sort_key(cell: Cell | None, higher: bool) -> float:
    if cell is None or math.isnan(cell.mean):
        return math.inf
    return -cell.mean if higher else cell.mean


def _notes(rows, metric: str, counts: dict, std: bool = True) -> list[str]:
    seeds = ", ".join(map(str, sorted(rows["fewshot_seed"].unique())))
    dates = f"{rows['eval_date'].min()[:10]} to {rows['eval_date'].max()[:10]}"
    spread = f"mean ± population std over few-shot seeds {seeds}" if std else f"mean over few-shot seeds {seeds}"
    notes = [f"metric: {metric} ({UNIT}); {spread}",
             f"regime: {regime_label(rows)}; evaluated {dates}; lm-eval {', '.join(sorted(rows['lm_eval_version'].unique()))}",
             "Avg: macro average per language (mean of the languages' averages for all languages); "
             "empty when a task is missing", data_note(rows)]
    return notes + [n for n in [limited_note(counts)] if n]


def regime_label(rows) -> str:
    """`name vN` of the regime of comparable rows (one regime, one version)."""
    return ", ".join(f"{r} v{v}" for r, v in sorted(set(zip(rows["regime"], rows["regime_version"]))))


def extra_columns(table, metric, regime=None, models=None, languages=None) -> tuple[list[str], dict, dict, list[str]]:
    """Columns "<short> <lang>" of the benchmarks beside the suite (e.g. "TruthfulQA fr"): their names,
    {model: {column: Cell}} (mean ± std over seeds), {column: chance level} and notes; nothing when no
    such results exist.
    They keep their own regime (TruthfulQA is zero-shot); `regime` decides only when they mix several."""
    rows = table[(table["metric"] == metric) & table["benchmark"].isin(list(EXTRA_BENCHMARKS))]
    if models:
        rows = rows[rows["model"].isin(models)]
    if languages:
        rows = rows[rows["language"].isin(languages)]
    regimes = sorted(rows["regime"].unique())
    if len(regimes) > 1:
        if regime not in regimes:
            raise ResultsError(f"the {', '.join(sorted(rows['benchmark'].unique()))} results mix regimes "
                               f"{', '.join(regimes)}: pick one (--regime)")
        rows = rows[rows["regime"] == regime]
    if rows.empty:
        return [], {}, {}, []
    check_comparable(rows)
    counts, chance = question_counts(rows), task_chance(rows)
    order = {(b, lang): i for i, (b, lang) in enumerate((b, lang) for b in EXTRA_BENCHMARKS for lang in LANGUAGES)}
    keys = sorted({(b, lang) for b, lang in zip(rows["benchmark"], rows["language"])}, key=order.get)
    names = {key: f"{EXTRA_BENCHMARKS[key[0]].short} {key[1]}" for key in keys}
    levels = {names[(b, lang)]: chance[task] for task, b, lang in rows[["task", "benchmark", "language"]].drop_duplicates()
              .itertuples(index=False)}
    cells: dict = {}
    for (model, bench, lang), group in rows.groupby(["model", "benchmark", "language"]):
        cells.setdefault(model, {})[names[(bench, lang)]] = seed_cell(group["value"].tolist(), group["task"].unique(), counts)
    titles = ", ".join(sorted({f"{b.title} ({b.key})" for b in map(EXTRA_BENCHMARKS.get, rows["benchmark"].unique())}))
    notes = [f"{titles}: regime {regime_label(rows)}; in columns of its own, never in Avg", data_note(rows),
             limited_note(counts)]
    return [names[k] for k in keys], cells, levels, [n for n in notes if n]


def summary_view(table, metric=PRIMARY, regime=None, models=None, languages=None) -> Grid:
    rows = select(table, metric, regime, models, languages)
    higher = HIGHER_IS_BETTER[metric]
    tasks_by_lang = _tasks_by_language(rows)
    counts, chance = question_counts(rows), task_chance(rows)
    columns = [LANGUAGES[lang].code for lang in tasks_by_lang] + ["Avg"]
    keys = list(tasks_by_lang) + ["all"]
    if metric in ACCURACY_METRICS:
        columns.append("Avg (chance-centred)")
        keys.append("centred")
    extra, extra_cells, _, extra_note = extra_columns(table, metric, regime, models, languages)
    body = []
    for model, seeds in _per_seed(rows).items():
        cells = _summary_cells(seeds, tasks_by_lang, metric, counts, chance)
        body.append((model, [cells[k] for k in keys] + [extra_cells.get(model, {}).get(c) for c in extra]))
    body.sort(key=lambda r: _sort_key(r[1][keys.index("all")], higher))
    return Grid(f"medeval leaderboard: {metric} per language", columns + extra, body,
                _notes(rows, metric, counts) + extra_note, higher).mark_best()


def tasks_view(table, metric=PRIMARY, regime=None, models=None, language=SOURCE_LANGUAGE, headline=False) -> Grid:
    if language not in LANGUAGES:
        raise ResultsError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    rows = select(table, metric, regime, models, [language])
    higher = HIGHER_IS_BETTER[metric]
    tasks = _tasks_by_language(rows)[language]
    counts, chance = question_counts(rows), task_chance(rows)
    bench_of = dict(zip(rows["task"], rows["benchmark"]))
    benches = [BENCHMARKS[bench_of[t]] for t in tasks]
    columns = [b.short if headline else b.key for b in benches] + ["Avg"]
    centred = metric in ACCURACY_METRICS and not headline
    if centred:
        columns.append("Avg (chance-centred)")
    extra, extra_cells, extra_chance, extra_note = (([], {}, {}, []) if headline
                                                    else extra_columns(table, metric, regime, models, [language]))
    body = []
    for model, seeds in _per_seed(rows).items():
        cells = [seed_cell([seeds[s].get(t, math.nan) for s in seeds], [t], counts) for t in tasks]
        summary = _summary_cells(seeds, {language: tasks}, metric, counts, chance)
        body.append((model, cells + [summary[language]] + ([summary["centred"]] if centred else [])
                     + [extra_cells.get(model, {}).get(c) for c in extra]))
    body.sort(key=lambda r: _sort_key(r[1][len(tasks)], higher))
    if metric in ACCURACY_METRICS:
        levels = [chance[t] for t in tasks]
        body.append(("chance", [Cell(c) for c in levels] + [Cell(macro_average(levels))]
                     + ([Cell(0.0)] if centred else []) + [Cell(extra_chance[c]) for c in extra]))
    columns += extra
    title = (f"BioMistral headline layout ({LANGUAGES[language].name}, {metric})" if headline
             else f"medeval leaderboard: {metric}, {LANGUAGES[language].name} tasks")
    notes = _notes(rows, metric, counts, std=not headline) + extra_note
    return Grid(title, columns, body, notes, higher, show_std=not headline).mark_best()


def grid_view(table, metric=PRIMARY, regime=None, models=None, languages=None) -> Grid:
    rows = select(table, metric, regime, models, languages)
    higher = HIGHER_IS_BETTER[metric]
    tasks_by_lang = _tasks_by_language(rows)
    counts, chance = question_counts(rows), task_chance(rows)
    per_seed = _per_seed(rows)
    overall = {m: _summary_cells(s, tasks_by_lang, metric, counts, chance)["all"] for m, s in per_seed.items()}
    model_order = sorted(per_seed, key=lambda m: _sort_key(overall[m], higher))
    accuracy = metric in ACCURACY_METRICS
    columns = (["chance"] if accuracy else []) + model_order
    body = []
    for lang, tasks in tasks_by_lang.items():
        for task in tasks:
            cells = [seed_cell([seeds.get(task, math.nan) for seeds in per_seed[m].values()], [task], counts)
                     for m in model_order]
            body.append((task, ([Cell(chance[task])] if accuracy else []) + cells))
    body.append(("Avg", ([None] if accuracy else []) + [overall[m] for m in model_order]))
    return Grid(f"medeval: {metric}, task x language x model", columns, body, _notes(rows, metric, counts), higher,
                best_along="row").mark_best()


# Views that read the samples, in their own module; it builds on this one, so it is imported last.
from results.native import category_view, native_view

VIEWS = {
    "summary": summary_view,
    "tasks": tasks_view,
    "headline": lambda table, **kw: tasks_view(table, headline=True, **kw),
    "grid": grid_view,
    "native": native_view,
    "categories": category_view,
}


def get_view(name: str):
    try:
        return VIEWS[name]
    except KeyError:
        raise ResultsError(f"unknown leaderboard view {name!r}; valid: {', '.join(VIEWS)}") from None


def build_view(name: str, table, **options) -> Grid | list[Grid]:
    """The view's Grid; the native view gives several (per language, then each native-vs-translated pair)."""
    return get_view(name)(table, **options)
