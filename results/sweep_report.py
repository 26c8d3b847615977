"""What `medeval sweep` writes: the comparisons, the table (checkpoint x language, verdict per row),
the trend figure, and the SLURM job-array script of a sweep.

The scores are the leaderboard's summary view (per-language macro average, mean ± population std over
few-shot seeds, the same numbers `medeval leaderboard` prints); the verdicts are `medeval compare`'s
(results/compare.py, gate in results/gate.py) between each checkpoint and its baseline.
"""
from __future__ import annotations

import csv
import io
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from medtasks.common import EXIT_OK, UsageError
from medtasks.store import atomic_write_bytes
from results.leaderboard import LIMITED_MARK, UNIT
from results.render import _text
from results.sweep import BASE, Config, Model, is_done, models_now, plan_units, unit_folder

REGRESSED_MARK = "▼"
SLURM_TEMPLATE = Path(__file__).resolve().parent / "slurm" / "sweep_array.sbatch"


@dataclass
class Row:
    name: str
    step: int | None
    cells: dict = field(default_factory=dict)  # column (language code, "Avg") -> leaderboard Cell
    baseline: str = ""
    verdict: str = ""
    regressions: list = field(default_factory=list)  # compare rows: (name, language, delta)


@dataclass
class Result:
    config: Config
    rows: list[Row]
    columns: list[str]  # languages, then "Avg"
    comparisons: dict  # checkpoint name -> results.compare.Comparison
    notes: list[str]
    table: object = None  # the tidy table of every evaluated model (for the figure's caption)

    @property
    def regressed(self) -> list[str]:
        return [r.name for r in self.rows if r.verdict == "REGRESSION"]

    @property
    def pending(self) -> list[str]:
        """Complete models not evaluated yet (folders still being written are reported, not waited for)."""
        return [r.name for r in self.rows if r.verdict.startswith("pending")]

    @property
    def markdown(self) -> str:
        return to_markdown(self)


def baseline_pairs(models: list[Model], baseline: str) -> list[tuple[Model, Model | None]]:
    """(checkpoint, the model it is compared with) in order; None for a first checkpoint without a base."""
    base = next((m for m in models if m.name == BASE), None)
    checkpoints = [m for m in models if m.name != BASE]
    if baseline == "base":
        return [(m, base) for m in checkpoints]
    return [(m, checkpoints[i - 1] if i else base) for i, m in enumerate(checkpoints)]


def gather(config: Config, models: list[Model], waiting: dict[Path, str]) -> Result:
    """Load every finished model, compare each checkpoint with its baseline, lay out the table."""
    import pandas as pd

    from results.compare import compare_tables
    from results.leaderboard import summary_view
    from results.load import ResultsError, load_table

    out, settings = config.runner.out, config.settings
    units = plan_units(models, settings)
    tables = {}
    for model in models:
        mine = [u for u in units if u.model == model]
        if all(is_done(out, u, settings) for u in mine):
            tables[model.name] = load_table([unit_folder(out, u) for u in mine], names={str(model.path): model.name},
                                            hash_models=False)
    rows = {m.name: Row(m.name, m.step, verdict="pending" if m.name not in tables else "") for m in models}
    comparisons = {}
    for model, reference in baseline_pairs(models, settings.baseline):
        row = rows[model.name]
        row.baseline = reference.name if reference else ""
        if model.name not in tables:
            continue
        if reference is None:
            row.verdict = "first checkpoint: no baseline"
        elif reference.name not in tables:
            row.verdict = f"pending: {reference.name} not evaluated yet"
        else:
            comparison = compare_tables(tables[reference.name], tables[model.name], config.gate)
            comparisons[model.name] = comparison
            row.regressions = [(r.name, r.language, r.delta) for r in comparison.regressions]
            row.verdict = "REGRESSION" if row.regressions else "ok"
    if BASE in rows and rows[BASE].verdict != "pending":
        rows[BASE].verdict = "baseline" if settings.baseline == "base" else "reference of the first checkpoint"
    columns, notes, table = [], [], None
    if tables:
        table = pd.concat(tables.values(), ignore_index=True)
        try:
            grid = summary_view(table, metric=config.gate.metric)
        except ResultsError as err:  # e.g. only tasks beside the suite: verdicts without the language table
            notes.append(f"no per-language table: {err}")
        else:
            columns = grid.columns[:grid.columns.index("Avg") + 1]
            for label, cells in grid.rows:
                rows[label].cells = dict(zip(columns, cells))
            notes += grid.notes
    waiting_rows = [Row(folder.name, None, verdict=f"not evaluated: {problem}") for folder, problem in waiting.items()]
    return Result(config, list(rows.values()) + waiting_rows, columns, comparisons, notes, table)


def _regressed_columns(row: Row) -> set[str]:
    return {"Avg" if language == "all" else language for _, language, _ in row.regressions}


def _cell_text(row: Row, column: str) -> str:
    text = _text(row.cells.get(column), True, ("", ""), " ± ", LIMITED_MARK)
    return text + (f" {REGRESSED_MARK}" if column in _regressed_columns(row) and text != "–" else "")


def _baseline_text(config: Config) -> str:
    if config.settings.baseline == "base":
        return f"the base model ({config.settings.base_model})"
    return "the previous checkpoint" + (" (the first: the base model)" if config.settings.base_model else "")


def to_markdown(result: Result) -> str:
    config = result.config
    g = config.gate
    lines = [f"### medeval sweep: {config.settings.tasks}; each checkpoint compared with {_baseline_text(config)}", "",
             "| checkpoint | step | " + " | ".join(result.columns + ["compared with", "verdict", "regressions"]) + " |",
             "|---|---:|" + "---:|" * len(result.columns) + "---|---|---|"]
    for row in result.rows:
        verdict = f"**{row.verdict}**" if row.verdict == "REGRESSION" else row.verdict
        drops = ", ".join(f"{name} ({delta:+.4f})" for name, _, delta in row.regressions)
        cells = [_cell_text(row, c) for c in result.columns]
        lines.append(f"| {row.name} | {'–' if row.step is None else row.step} | " + " | ".join(
            cells + [row.baseline or "–", verdict, drops]) + " |")
    level = round((1 - g.alpha) * 100)
    lines += ["", f"_{REGRESSED_MARK}: a regression in that language (one of its tasks or its average) against the "
              f"baseline: a drop of more than {g.threshold} in {g.metric}, McNemar p < {g.alpha} and the {level}% "
              f"paired-bootstrap interval below 0 (`medeval compare`; per checkpoint in compare/)._  "]
    lines += [f"_{note}_  " for note in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["checkpoint", "step"]
    for column in result.columns:
        header += [column, f"{column}_std", f"{column}_limited", f"{column}_regression"]
    writer.writerow(header + ["baseline", "verdict", "regressions"])
    for row in result.rows:
        line = [row.name, "" if row.step is None else row.step]
        for column in result.columns:
            cell = row.cells.get(column)
            if cell is None or math.isnan(cell.mean):
                line += ["", "", "", ""]
            else:
                line += [repr(cell.mean), "" if math.isnan(cell.std) else repr(cell.std), cell.limited,
                         column in _regressed_columns(row)]
        line += [row.baseline, row.verdict, ";".join(f"{name}:{delta:+.6f}" for name, _, delta in row.regressions)]
        writer.writerow(line)
    return buffer.getvalue()


def plot_trend(result: Result, out_dir: Path) -> list[Path]:
    """Score per language against the training step (the order given when steps are unknown), error bars
    = std over seeds; the base model as a dashed line per language; regressions marked."""
    from results.leaderboard import select
    from results.plots import _pyplot, _save, caption

    rows = [r for r in result.rows if r.cells and r.name != BASE]
    if not rows or not result.columns:
        return []
    plt = _pyplot()
    by_step = all(r.step is not None for r in rows)
    xs = [r.step if by_step else i + 1 for i, r in enumerate(rows)]
    base = next((r for r in result.rows if r.name == BASE and r.cells), None)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for column in result.columns:
        cells = [r.cells.get(column) for r in rows]
        points = [(x, c) for x, c in zip(xs, cells) if c is not None and not math.isnan(c.mean)]
        if not points:
            continue
        style = {"color": "black", "lw": 2.2} if column == "Avg" else {}
        line = ax.errorbar([x for x, _ in points], [c.mean for _, c in points],
                           yerr=[0 if math.isnan(c.std) else c.std for _, c in points],
                           marker="o", ms=4, capsize=2, label=column, **style)
        color = line[0].get_color()
        if base is not None and base.cells.get(column) is not None:
            ax.axhline(base.cells[column].mean, color=color, ls="--", lw=1, alpha=0.8)
        down = [(x, r.cells[column].mean) for x, r in zip(xs, rows)
                if column in _regressed_columns(r) and r.cells.get(column) is not None]
        if down:
            ax.scatter(*zip(*down), marker="v", s=120, facecolors="none", edgecolors="red", linewidths=1.8, zorder=5)
    if base is not None:
        ax.plot([], [], color="grey", ls="--", lw=1, label="base model (baseline)")
    if any(_regressed_columns(r) for r in rows):
        ax.scatter([], [], marker="v", s=120, facecolors="none", edgecolors="red", label=f"regression ({REGRESSED_MARK})")
    metric = result.config.gate.metric
    ax.set_xlabel("training step" if by_step else "checkpoint (in the order given)")
    ax.set_ylabel(f"{metric}, macro average over tasks\n({UNIT})")
    ax.set_title("Medical QA across checkpoints")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    text = caption(select(result.table, metric), metric) + f"\nbaseline: {_baseline_text(result.config)}"
    return _save(fig, out_dir, f"trend_{metric}", text)


def write_report(result: Result, out: Path, interrupted: bool = False) -> list[Path]:
    """sweep.md, sweep.csv, compare/<checkpoint>.md/.json and the trend figure; the paths written."""
    from results.compare import to_json
    from results.compare import to_markdown as comparison_markdown
    from results.plots import slug

    markdown = to_markdown(result) + ("\n_interrupted: the rows marked pending were not evaluated yet._\n"
                                      if interrupted else "")
    texts = {out / "sweep.md": markdown, out / "sweep.csv": to_csv(result)}
    for name, comparison in result.comparisons.items():
        texts[out / "compare" / f"{slug(name)}.md"] = comparison_markdown(comparison)
        texts[out / "compare" / f"{slug(name)}.json"] = json.dumps(to_json(comparison), indent=2) + "\n"
    for path, text in texts.items():
        atomic_write_bytes(path, text.encode())
    return [*texts, *plot_trend(result, out)]


# ---------------------------------------------------------------- SLURM job array

def sweep_words(config: Config) -> list[str]:
    """`medeval sweep ...` with this sweep's settings, as words (what every array task and the gather run)."""
    s, r, g = config.settings, config.runner, config.gate
    words = ["medeval", "sweep", *map(str, config.paths), "--tasks", s.tasks, "--seeds", *map(str, s.seeds),
             "--baseline", s.baseline, "--backend", s.backend, "-o", str(r.out), "--batch-size", str(r.batch_size),
             "--threshold", str(g.threshold), "--alpha", str(g.alpha), "--bootstrap", str(g.n_boot),
             "--bootstrap-seed", str(g.seed), "--metric", g.metric]
    optional = [("--limit", s.limit), ("--base-model", s.base_model), ("--device", r.device), ("--tokenizer", r.tokenizer)]
    words += [str(x) for flag, value in optional if value is not None for x in (flag, value)]
    return words + (["--per-language"] if s.per_language else [])


def write_slurm_array(path: Path, config: Config, count: int | None, gpus: int) -> int:
    """Fill the template with this sweep; one array task per unit unless `count` is given."""
    models, _ = models_now(config)
    units = plan_units(models, config.settings)
    if not units:
        raise UsageError("--slurm-array: no complete checkpoint to evaluate yet; nothing was written")
    count = count or len(units)
    words = sweep_words(config)
    values = {"SCRIPT": str(path), "COUNT": str(count), "GPUS": str(gpus), "CPUS": str(8 * gpus),
              "GATHER": shlex.join(words + ["--gather"]), "SWEEP": shlex.join(words)}
    text = SLURM_TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    atomic_write_bytes(path, text.encode())
    print(f"{path}: {count} array tasks over {len(units)} units ({len(models)} models x {len(config.settings.seeds)} "
          f"seeds{' x languages' if config.settings.per_language else ''})\nsubmit: sbatch {path}\n"
          f"then:   {shlex.join(words + ['--gather'])}")
    return EXIT_OK
