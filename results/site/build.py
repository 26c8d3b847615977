"""`medeval site RESULTS... -o site/`: lm-eval output folders and submission bundles -> a static leaderboard website.

Pages (Jinja2 templates in templates/, every table a real <table> with a caption and header cells):
  index.html            models x languages for every single-answer metric (the summary view), the per-language
                        bar chart, what each status means
  language-<code>.html  models x the tasks of one language per metric, and BioMistral's headline layout
  tasks.html            task x language rows, one column per model (the grid view)
  native.html           translated suite vs native exams (results' native view), when native exams were run
  models/<slug>.html    one model: identity and provenance, every number with where it comes from (seed, date,
                        versions, data checksum, file, verified or not), calibration, heatmap and reliability figures
  about.html            the regime, the metrics, the averages, how a submission is verified
The numbers are the leaderboard views of results.leaderboard (the same as `medeval leaderboard`), as fractions
with lm-eval's four decimals. A model is "verified" when all its numbers come from submission bundles whose
`medeval verify --report` reports are given and passed; runs made with --limit, partial submissions and
unverified runs are marked wherever the model appears. The pages read fine without JavaScript; static/site.js
only sorts and filters tables.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from medtasks import spec
from medtasks.common import UsageError, require
from results.leaderboard import LIMITED_MARK, UNIT, Grid, build_view
from results.load import ResultsError, load_table, read_results_json
from results.metrics import CALIBRATION_METRICS, HEADLINE_METRIC, PRIMARY
from results.plots import make_plots, slug
from results.provenance import project_commit
from results.render import number
from results.stats import mean_std
from results.submission import bundle_digest, is_bundle, open_bundle, read_submission

HERE = Path(__file__).resolve().parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"
MARKER = ".medeval-site"  # marks a folder this command wrote, so a rebuild may replace it
SINGLE = spec.metrics_for("single")
COLUMN_TITLES = {"Avg": "Average", "Avg (chance-centred)": "Average (chance-centred)"}
STATUS_TEXT = {
    "verified": "verified: a submission bundle checked by medeval verify against the maintainer's data",
    "failed": "failed verification: medeval verify found discrepancies in its submission bundle",
    "unverified": "unverified: lm-eval output, or a bundle without a verification report",
    "partial": "partial submission: not whole suites, not every few-shot seed, or --limit runs",
    "limited": f"limited{LIMITED_MARK}: scored on a subset of the questions (lm_eval --limit)",
}


@dataclasses.dataclass
class Source:
    """One RESULTS argument: an lm-eval output folder, or a submission bundle (with its verification, if any)."""
    path: Path
    folder: Path
    submission: dict | None = None
    digest: str | None = None
    verification: dict | None = None

    @property
    def status(self) -> str:
        if self.verification is None:
            return "unverified"
        return "verified" if self.verification.get("verdict") == "verified" else "failed"


def read_verifications(paths) -> dict[str, dict]:
    """{bundle sha256: report} of `medeval verify --report` files."""
    found = {}
    for path in map(Path, paths or ()):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            found[report["bundle_sha256"]] = report
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UsageError(f"--verified {path}: not a report written by medeval verify --report ({err})") from None
    return found


def open_sources(inputs, verifications: dict[str, dict], stack: contextlib.ExitStack) -> list[Source]:
    sources = []
    for path in map(Path, inputs):
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        if not is_bundle(path):
            sources.append(Source(path, path))
            continue
        folder = stack.enter_context(open_bundle(path))
        digest = bundle_digest(folder)
        sources.append(Source(path, folder, read_submission(folder), digest, verifications.get(digest)))
    unused = set(verifications) - {s.digest for s in sources}
    if unused:
        raise UsageError(f"--verified: {len(unused)} report(s) match none of the bundles given (a report names its "
                         "bundle by the sha256 of the bundle's manifest.json)")
    return sources


def _source_of(result_file: str, sources: list[Source]) -> Source:
    path = Path(result_file).resolve()
    return next(s for s in sources if s.folder.resolve() in path.parents or s.folder.resolve() == path)


def load(sources: list[Source], names: dict[str, str]):
    """The tidy table of every source, with the bundles' own model identity and name, and per-row `status`."""
    bundle_names = {s.submission["model"]["path"]: s.submission["model"]["name"] for s in sources if s.submission}
    table = load_table([s.folder for s in sources], names={**bundle_names, **names})
    owner = {f: _source_of(f, sources) for f in table["source"].unique()}
    table["status"] = table["source"].map(lambda f: owner[f].status)
    table["partial"] = table["source"].map(lambda f: bool(owner[f].submission and owner[f].submission["partial"]))
    table["bundle"] = table["source"].map(lambda f: str(owner[f].path) if owner[f].submission else "")
    for f, source in owner.items():
        if source.submission:  # the revision recorded where the model was (a bundle's path means nothing here)
            table.loc[table["source"] == f, "model_revision"] = source.submission["model"]["revision"]
    return table


def model_facts(table, sources: list[Source]) -> dict[str, dict]:
    """Per model: identity, status badges and what its results files say about it (parameters, precision)."""
    facts = {}
    for model, rows in table.groupby("model"):
        config = read_results_json(Path(rows["source"].iloc[0]))["config"]  # one results file tells
        statuses = set(rows["status"])
        status = "failed" if "failed" in statuses else "unverified" if "unverified" in statuses else "verified"
        params = config.get("model_num_parameters")
        bundles = [s for s in sources if s.submission and str(s.path) in set(rows["bundle"])]
        facts[model] = {
            "name": model, "slug": slug(model), "path": rows["model_path"].iloc[0],
            "revisions": sorted(rows["model_revision"].unique()), "status": status,
            "partial": bool(rows["partial"].any()),
            "limited": bool((rows["n_questions"] < rows["n_questions_full"]).any()),
            "params": _billions(params),
            "precision": str(config.get("model_dtype") or "–").replace("torch.", ""),
            "dates": sorted({d[:10] for d in rows["eval_date"] if d}),
            "lm_eval": sorted(rows["lm_eval_version"].unique()), "commits": sorted(rows["project_commit"].unique()),
            "bundles": [{"path": str(s.path), "digest": s.digest, "status": s.status,
                         "partial": s.submission["partial"],
                         "reasons": list(s.submission["partial_reasons"].values()),
                         "verified_on": (s.verification or {}).get("date", ""),
                         "discrepancies": len((s.verification or {}).get("discrepancies", []))} for s in bundles],
        }
    return facts


def _billions(params) -> str:
    """Parameters in billions, as the Open LLM Leaderboard shows them (small models keep 2 significant digits)."""
    if not isinstance(params, (int, float)) or isinstance(params, bool) or params <= 0:
        return "–"
    billions = params / 1e9
    return f"{billions:.2f}" if billions >= 0.1 else f"{billions:.{max(2, 1 - math.floor(math.log10(billions)))}f}"


def _header(column: str) -> dict:
    if column in spec.LANGUAGES:
        return {"text": spec.LANGUAGES[column].name, "title": f"language {column}: macro average of its tasks"}
    if column in spec.ALL_BENCHMARKS:
        bench = spec.ALL_BENCHMARKS[column]
        return {"text": bench.short, "title": bench.title}
    return {"text": COLUMN_TITLES.get(column, column), "title": column}


def _cell(cell, show_std: bool) -> dict:
    if cell is None or math.isnan(cell.mean):
        return {"value": "–", "std": "", "best": False, "limited": False, "sort": "", "title": "no result"}
    counts = f"; {cell.questions} of {cell.questions_full} questions" if cell.questions_full else ""
    return {"value": number(cell.mean), "std": number(cell.std) if show_std and cell.seeds > 1 else "",
            "best": cell.best, "limited": cell.limited, "sort": repr(cell.mean),
            "title": (f"mean over {cell.seeds} few-shot seed(s){counts}" if cell.seeds else "reference") +
                     (" (limited run)" if cell.limited else "")}


def table_data(grid: Grid, table_id: str, facts: dict[str, dict] | None = None, link_prefix: str = "") -> dict:
    """A Grid as the template's table: header cells, body rows (reference rows such as chance go to the
    footer), notes; rows labelled by a model link to its page and carry its status."""
    body, foot = [], []
    for label, cells in grid.rows:
        model = (facts or {}).get(label)
        row = {"label": label, "cells": [_cell(c, grid.show_std) for c in cells],
               "link": f"{link_prefix}models/{model['slug']}.html" if model else "", "model": model}
        (foot if label in grid.reference_rows else body).append(row)
    first = "Model" if grid.best_along == "column" else "Task"
    return {"id": table_id, "title": grid.title, "first": first, "columns": [_header(c) for c in grid.columns],
            "rows": body, "foot": foot, "notes": grid.notes,
            "order": "descending" if grid.higher_is_better else "ascending"}


def averages_first(grid: Grid) -> Grid:
    """The Open LLM Leaderboard's column order: the averages right after the model, then what they average."""
    lead = [i for i, c in enumerate(grid.columns) if c in COLUMN_TITLES]
    order = lead + [i for i in range(len(grid.columns)) if i not in lead]
    return dataclasses.replace(grid, columns=[grid.columns[i] for i in order],
                               rows=[(label, [cells[i] for i in order]) for label, cells in grid.rows])


def _views(table, regime, facts, languages) -> dict:
    """Every table of the index, language, tasks and native pages."""
    summary = [{**table_data(averages_first(build_view("summary", table, metric=m, regime=regime)),
                             f"summary-{m}", facts), "metric": spec.METRICS[m]} for m in SINGLE]
    per_language = {}
    for code in languages:
        grids = [table_data(build_view("tasks", table, metric=m, regime=regime, language=code), f"tasks-{m}", facts)
                 for m in SINGLE]
        grids.append(table_data(build_view("headline", table, metric=HEADLINE_METRIC, regime=regime, language=code),
                                "headline", facts))
        per_language[code] = grids
    grid = table_data(build_view("grid", table, metric=PRIMARY, regime=regime), "grid")
    native = []
    if (table["kind"] == "native").any():
        native = [table_data(g, f"native-{i}", None) for i, g in enumerate(build_view("native", table, metric=PRIMARY))]
    return {"summary": summary, "languages": per_language, "grid": grid, "native": native}


def _model_rows(rows) -> tuple[list[str], list[dict], list[dict]]:
    """One model's metrics, per-task scores (mean ± std over seeds) and every (task, seed) with its provenance."""
    metrics = [m for m in spec.METRICS if m in set(rows["metric"])]
    scores, every = [], []
    for (kind, language, task), group in rows.groupby(["kind", "language", "task"], sort=True):
        first = group.iloc[0]
        values = {}
        for metric in metrics:
            v = group[group["metric"] == metric]["value"].tolist()
            mean, std = mean_std(v)
            values[metric] = {"value": number(mean) if v else "–", "std": number(std) if len(v) > 1 else "",
                              "sort": repr(mean) if v else ""}
        bench = spec.get_benchmark(first["benchmark"])
        scores.append({"task": task, "title": f"{bench.title} [{spec.LANGUAGES[language].name}]", "kind": kind,
                       "values": values, "questions": int(first["n_questions"]),
                       "questions_full": int(first["n_questions_full"]),
                       "seeds": ", ".join(map(str, sorted(group["fewshot_seed"].unique()))),
                       "regime": f"{first['regime']} v{first['regime_version']}", "version": first["task_version"],
                       "data": first["data_sha256"]})
        for seed, run in group.groupby("fewshot_seed"):
            r = run.iloc[0]
            every.append({"task": task, "seed": int(seed),
                          "values": {m: number(x) for m, x in zip(run["metric"], run["value"])},
                          "date": r["eval_date"], "lm_eval": r["lm_eval_version"], "commit": r["project_commit"],
                          "data": r["data_sha256"], "file": Path(r["source"]).name, "status": r["status"],
                          "bundle": r["bundle"], "questions": int(r["n_questions"]),
                          "questions_full": int(r["n_questions_full"])})
    return metrics, scores, every


def _model_pages(table, regime, facts, figures: Path) -> dict[str, dict]:
    from results.calibration import calibration_grid, calibration_records

    pages = {}
    for model, rows in table.groupby("model"):
        metrics, scores, every = _model_rows(rows)
        suite = rows[rows["kind"] == "suite"]
        has_samples = bool(len(suite)) and bool((suite["samples"] != "").all())
        calibration, figs = [], []
        if has_samples:
            records = calibration_records(table, regime, [model])
            calibration = [table_data(calibration_grid(records, m), f"calibration-{m}") for m in CALIBRATION_METRICS]
        if len(suite):
            plots = ["heatmap"] + (["reliability"] if has_samples else [])
            figs = [p for p in make_plots(plots, table, figures, metric=PRIMARY, regime=regime, models=[model])
                    if p.suffix == ".svg"]
        pages[model] = {"columns": metrics, "scores": scores, "every": every, "calibration": calibration,
                        "figures": [f"../figures/{p.name}" for p in figs], "fact": facts[model]}
    return pages


def _environment():
    jinja2 = require("jinja2", "results", "medeval site")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = lambda digest: str(digest)[:12]
    return env


def prepare_output(output: Path) -> None:
    if output.exists() and not (output / MARKER).exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(f"-o {output}: exists and was not written by medeval site; choose an empty or new folder")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist")


def build_site(inputs, output, verified=(), names: dict[str, str] | None = None, regime: str | None = None,
               title: str = "Medical QA leaderboard") -> list[Path]:
    """Write the site to `output` (a new folder, or one this function wrote before, which is replaced whole);
    return the pages written."""
    output = Path(output)
    prepare_output(output)
    env = _environment()
    with contextlib.ExitStack() as stack:
        sources = open_sources(inputs, read_verifications(verified), stack)
        table = load(sources, names or {})
        if not (table["kind"] == "suite").any():
            raise ResultsError("no results of the suite's tasks to rank: the site needs at least one task of "
                               f"{spec.language_group('<lang>')}")
        facts = model_facts(table, sources)
        languages = [code for code in spec.LANGUAGES if code in set(table[table["kind"] == "suite"]["language"])]
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
        try:
            pages = _render(env, tmp, table, regime, facts, languages, title, sources)
            _replace(tmp, output)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return [output / p.relative_to(tmp) for p in pages]


def _render(env, out: Path, table, regime, facts, languages, title, sources) -> list[Path]:
    views = _views(table, regime, facts, languages)
    figures = out / "figures"
    bars = [p for p in make_plots(["bars"], table, figures, metric=PRIMARY, regime=regime) if p.suffix == ".svg"]
    models = _model_pages(table, regime, facts, figures)
    shutil.copytree(STATIC, out / "static")
    common = {
        "title": title, "languages": [(c, spec.LANGUAGES[c].name) for c in languages],
        "has_native": bool(views["native"]),
        "unit": UNIT, "mark": LIMITED_MARK, "status_text": STATUS_TEXT, "metrics": spec.METRICS,
        "built": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "commit": project_commit(),
        "facts": facts, "sources": [{"path": str(s.path), "bundle": bool(s.submission), "status": s.status}
                                    for s in sources],
    }
    pages = {
        "index.html": ("index.html", {"tables": views["summary"], "figures": [f"figures/{p.name}" for p in bars]}),
        "tasks.html": ("tasks.html", {"table": views["grid"]}),
        "about.html": ("about.html", {"regimes": spec.REGIMES, "seeds": spec.FEWSHOT_SEEDS}),
        "native.html": ("native.html", {"tables": views["native"]}),
    }
    for code in languages:
        pages[f"language-{code}.html"] = ("language.html", {"code": code, "name": spec.LANGUAGES[code].name,
                                                            "tables": views["languages"][code]})
    for model, page in models.items():
        pages[f"models/{facts[model]['slug']}.html"] = ("model.html", {**page, "model": model})
    written = []
    for name, (template, context) in pages.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        root = "../" * name.count("/")
        path.write_text(env.get_template(template).render(**common, **context, root=root, page=name), encoding="utf-8")
        written.append(path)
    (out / MARKER).write_text("written by medeval site; a rebuild replaces this folder\n", encoding="utf-8")
    return written


def _replace(new: Path, output: Path) -> None:
    """Put the finished site in place; a previous site is moved aside first and removed after."""
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(new, output)
    output.chmod(0o755)  # mkdtemp made it private; a site is for everyone to read
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

