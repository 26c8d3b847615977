"""Figures, headless (matplotlib Agg), each written as PNG and SVG. A registry: PLOTS.

  bars         per-language macro average, one bar per model, error bars = std over seeds
  heatmap      task x language for each model, values annotated
  reliability  reliability diagrams per language for each model (from the samples), ece in titles
  variants     variants of one model (merges, quantizations) as the difference to the original
Values are fractions 0..1 under lm-eval's metric names, as its score table prints them. Every figure
carries a caption with the metric and its unit, the regime, the seeds and the evaluation dates; a
label or value scored on a subset of the questions (lm_eval --limit) carries LIMITED_MARK, and the
caption says what it means.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from pathlib import Path

from medtasks.common import MODEL_CARD_JSON, require
from medtasks.metrics import ECE_BINS
from medtasks.spec import BENCHMARKS, LANGUAGES, SOURCE_LANGUAGE, language_group
from results.calibration import ECE, reliability
from results.leaderboard import (
    LIMITED_MARK,
    UNIT,
    limited_note,
    question_counts,
    regime_label,
    select,
    summary_view,
    task_chance,
)
from results.load import ResultsError
from results.metrics import ACCURACY_METRICS, PRIMARY
from results.render import number


def _pyplot():
    matplotlib = require("matplotlib", "results", "plots")
    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def caption(rows, metric: str) -> str:
    """What a figure shows and where from; a second line explains LIMITED_MARK when a task was cut."""
    seeds = ", ".join(map(str, sorted(rows["fewshot_seed"].unique())))
    dates = sorted({d[:10] for d in rows["eval_date"] if d})
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}" if dates else "unknown date"
    text = (f"metric {metric} ({UNIT}) · regime {regime_label(rows)} · few-shot seeds {seeds} · "
            f"evaluated {span} · plotted {_dt.date.today().isoformat()}")
    note = limited_note(question_counts(rows))
    return text + ("\n" + note if note else "")


def _marked(label: str, limited: bool) -> str:
    return label + LIMITED_MARK if limited else label


def _save(fig, out_dir: Path, stem: str, text: str) -> list[Path]:
    fig.text(0.01, -0.05, text, fontsize=7, color="#555555", ha="left", va="top")  # below the axes labels
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for path in paths:
        # No timestamps in the files: the same results give the same bytes (SVG) again.
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _grouped_bars(ax, groups: list[str], series: dict[str, list[tuple[float, float]]], limited: list[bool]):
    """Bars per group and series; the groups scored on a subset are hatched and their labels marked."""
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        means = [v[0] if not math.isnan(v[0]) else 0.0 for v in values]
        errs = [v[1] if not math.isnan(v[1]) else 0.0 for v in values]
        bars = ax.bar(xs, means, width, yerr=errs, capsize=2, label=label)
        for bar, cut in zip(bars, limited):
            bar.set_hatch("//" if cut else None)
    if any(limited):  # a legend entry for the hatching (a bar of height 0 draws nothing)
        ax.bar([0], [0], width, hatch="//", fill=False, label=f"hatched{LIMITED_MARK}: scored on a subset")
    ax.set_xticks(range(len(groups)), [_marked(g, cut) for g, cut in zip(groups, limited)])
    ax.grid(axis="y", alpha=0.3)


def _summary_series(grid) -> tuple[list[str], dict, list[bool]]:
    """The summary view's columns (without the chance-centred one and the columns beside the suite),
    {model: [(mean, std)]} and whether each column was scored on a subset of its questions."""
    cols = grid.columns[:grid.columns.index("Avg") + 1]
    series = {label: [(c.mean, c.std) if c else (math.nan, math.nan) for c in cells[:len(cols)]]
              for label, cells in grid.rows}
    limited = [any(cells[j] is not None and cells[j].limited for _, cells in grid.rows) for j in range(len(cols))]
    return cols, series, limited


def plot_bars(table, out_dir, metric=PRIMARY, regime=None, models=None, **_) -> list[Path]:
    plt = _pyplot()
    grid = summary_view(table, metric=metric, regime=regime, models=models)
    rows = select(table, metric, regime, models)
    cols, series, limited = _summary_series(grid)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cols) + 0.3 * len(series)), 4.2))
    _grouped_bars(ax, cols, series, limited)
    if metric in ACCURACY_METRICS:
        chance = list(task_chance(rows).values())
        ax.axhline(sum(chance) / len(chance), color="grey", ls="--", lw=1, label="chance (these tasks)")
        ax.set_ylim(0, 1)
    ax.set_ylabel(f"{metric}, macro average over tasks\n({UNIT})")
    ax.set_xlabel("language")
    ax.set_title("Medical QA by language")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, Path(out_dir), f"bars_{metric}", caption(rows, metric))


def plot_heatmap(table, out_dir, metric=PRIMARY, regime=None, models=None, **_) -> list[Path]:
    plt = _pyplot()
    rows = select(table, metric, regime, models)
    paths = []
    for model in sorted(rows["model"].unique()):
        part = rows[rows["model"] == model]
        langs = [code for code in LANGUAGES if code in set(part["language"])]
        benches = [b for b in BENCHMARKS if b in set(part["benchmark"])]
        means = part.groupby(["benchmark", "language"])["value"].mean()
        cut = {(b, lang) for b, lang, n, full in part[["benchmark", "language", "n_questions", "n_questions_full"]]
               .itertuples(index=False) if n < full}
        matrix = [[means.get((b, lang), math.nan) for lang in langs] for b in benches]
        fig, ax = plt.subplots(figsize=(1.1 * len(langs) + 3, 0.45 * len(benches) + 1.8))
        accuracy = metric in ACCURACY_METRICS
        image = ax.imshow(matrix, cmap="viridis" if accuracy else "viridis_r", aspect="auto", vmin=0,
                          vmax=1 if accuracy else None)
        for i, line in enumerate(matrix):
            for j, value in enumerate(line):
                if not math.isnan(value):
                    ax.text(j, i, _marked(number(value), (benches[i], langs[j]) in cut), ha="center", va="center",
                            fontsize=7, color="white" if value < 0.5 else "black")
        ax.set_xticks(range(len(langs)), langs)
        ax.set_yticks(range(len(benches)), [BENCHMARKS[b].title for b in benches])
        ax.set_xlabel("language")
        ax.set_title(f"{model}: {metric} per task and language ({UNIT})", fontsize=9)
        fig.colorbar(image, ax=ax, label=metric)
        paths += _save(fig, Path(out_dir), f"heatmap_{slug(model)}_{metric}", caption(part, metric))
    return paths


def plot_reliability(table, out_dir, regime=None, models=None, **_) -> list[Path]:
    """Per language: the bins of all its questions (pooled ece) and, in the title, the ece lm-eval
    reports for the language group (the mean of its tasks' ece), so the numbers can be matched."""
    plt = _pyplot()
    rows = select(table, ECE, regime, models)
    paths = []
    for model in sorted(rows["model"].unique()):
        part = rows[rows["model"] == model]
        langs = [code for code in LANGUAGES if code in set(part["language"])]
        summary = summary_view(table, ECE, regime, [model])
        group_ece = dict(zip(summary.columns, summary.rows[0][1]))
        fig, axes = plt.subplots(1, len(langs), figsize=(3.2 * len(langs), 3.6), squeeze=False, sharey=True)
        for ax, lang in zip(axes[0], langs):
            bins, pooled = reliability(table, model, lang, regime)
            cell = group_ece[lang]
            centres = [(b["low"] + b["high"]) / 2 for b in bins]
            acc = [0.0 if math.isnan(b["accuracy"]) else b["accuracy"] for b in bins]
            ax.bar(centres, acc, width=1 / ECE_BINS, edgecolor="black", alpha=0.75, label="accuracy")
            ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
            conf = [b["confidence"] for b in bins if b["count"]]
            ax.plot(conf, [b["accuracy"] for b in bins if b["count"]], "o", color="C3", ms=4, label="mean confidence")
            for x, b in zip(centres, bins):
                ax.text(x, 0.02, str(b["count"]), ha="center", fontsize=7)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            group = "–" if cell is None else _marked(number(cell.mean), cell.limited)
            ax.set_title(f"{LANGUAGES[lang].name}: {ECE} {group}\npooled {ECE} {number(pooled)}", fontsize=9)
            ax.set_xlabel("confidence", fontsize=8)
        axes[0][0].set_ylabel("accuracy")
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.suptitle(f"{model}: reliability ({ECE_BINS} bins; confidence = largest letter probability; numbers = "
                     f"questions per bin)\n{ECE} = mean of the tasks' {ECE}, as lm-eval reports {language_group('<lang>')}; "
                     f"pooled {ECE} = one {ECE} over all the questions drawn", fontsize=8)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        paths += _save(fig, Path(out_dir), f"reliability_{slug(model)}", caption(part, ECE))
    return paths


def variant_label(model: str, model_path: str) -> str:
    """The model name, plus how it was made when model_ops wrote a card into its folder."""
    card = Path(model_path) / MODEL_CARD_JSON
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
        return f"{model} ({data['kind']}: {data['method']})"
    except (OSError, ValueError, KeyError, TypeError):
        return model


def plot_variants(table, out_dir, metric=PRIMARY, regime=None, models=None, base=None, **_) -> list[Path]:
    """Difference of each variant to `base` (default: the first of `models`), per language."""
    plt = _pyplot()
    models = list(models or sorted(table["model"].unique()))
    base = base or models[0]
    if base not in models:
        models.insert(0, base)
    if len(models) < 2:
        raise ResultsError("the variants plot needs the original and at least one variant (--models)")
    grid = summary_view(table, metric=metric, regime=regime, models=models)
    rows = select(table, metric, regime, models)
    cols, series, limited = _summary_series(grid)
    if base not in series:
        raise ResultsError(f"no results for the original {base!r}")
    ref = series[base]
    paths_by_model = dict(rows[["model", "model_path"]].drop_duplicates().itertuples(index=False))
    deltas = {variant_label(m, paths_by_model[m]): [(v[0] - r[0], v[1]) for v, r in zip(vals, ref)]
              for m, vals in series.items() if m != base}
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cols) + 0.3 * len(deltas)), 4.2))
    _grouped_bars(ax, cols, deltas, limited)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"{metric} difference to the original\n({UNIT})")
    ax.set_xlabel("language")
    ax.set_title(f"Variants of {variant_label(base, paths_by_model[base])}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, Path(out_dir), f"variants_{slug(base)}_{metric}", caption(rows, metric))


def plot_native(table, out_dir, metric=PRIMARY, models=None, **_) -> list[Path]:
    """The native view as a figure: per language, the suite's average beside the native exams' (one pair
    of bars per model); then, for each native exam that exists in translation, the paired difference
    native - translated per category with its bootstrap interval. The numbers are the view's."""
    from results.native import DIFFERENCE, NATIVE, SUITE, native_view, row_label

    plt = _pyplot()
    grids = native_view(table, metric=metric, models=models)
    per_language, pairs = grids[0], grids[1:]
    fig, axes = plt.subplots(1, 1 + len(pairs), figsize=(6.5 + 4.5 * len(pairs), 4.2), squeeze=False)
    ax = axes[0][0]
    rows = dict(per_language.rows)
    models_shown = [m for m in (models or sorted(table["model"].unique()))
                    if any(row_label(m, code) in rows for code in LANGUAGES)]
    langs = [code for code in LANGUAGES if any(row_label(m, code) in rows for m in models_shown)]
    cells = {(m, code): dict(zip(per_language.columns, rows[row_label(m, code)])) for m in models_shown
             for code in langs if row_label(m, code) in rows}
    series, cut = {}, []
    for model in models_shown:
        for part in (SUITE, NATIVE):
            got = [cells.get((model, lang), {}).get(part) for lang in langs]
            series[f"{model}: {part}"] = [(c.mean, c.std) if c else (math.nan, math.nan) for c in got]
            cut.append([bool(c and c.limited) for c in got])
    _grouped_bars(ax, langs, series, [any(flags[i] for flags in cut) for i in range(len(langs))])
    ax.set_ylabel(f"{metric}, macro average\n({UNIT})")
    ax.set_xlabel("language")
    ax.set_title(f"{SUITE} (translated except {SOURCE_LANGUAGE}) vs {NATIVE} exams", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    for ax, grid in zip(axes[0][1:], pairs):  # columns: native, translated, difference, CI low, CI high
        ys = list(range(len(grid.rows)))
        delta, low, high = ([row[j].mean for _, row in grid.rows] for j in (2, 3, 4))
        ax.errorbar(delta, ys, xerr=[[d - lo for d, lo in zip(delta, low)], [hi - d for d, hi in zip(delta, high)]],
                    fmt="o", color="C0", capsize=3)
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_yticks(ys, [_marked(label, row[0].limited) for label, row in grid.rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"{grid.columns[2]} ({metric}), {grid.columns[3].split()[0]} bootstrap interval", fontsize=8)
        ax.set_title(grid.title.split(":")[0] + ": native minus translated, same questions", fontsize=9)
    fig.tight_layout()
    shown = table[table["model"].isin(models_shown)]
    text = (f"{DIFFERENCE} and the paired differences: see `medeval leaderboard --view native`; each task in its "
            f"own regime · {caption(shown, metric)}")
    return _save(fig, Path(out_dir), f"native_{metric}", text)


PLOTS = {"bars": plot_bars, "heatmap": plot_heatmap, "reliability": plot_reliability, "variants": plot_variants,
         "native": plot_native}


def check_plots(names) -> list[str]:
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise ResultsError(f"unknown plot(s) {', '.join(unknown)}; valid: {', '.join(PLOTS)}")
    return list(names)


def make_plots(names, table, out_dir, **options) -> list[Path]:
    check_plots(names)
    paths = []
    for name in names:
        paths += PLOTS[name](table, out_dir, **options)
    return paths
