"""Commands of the results package: results-table, leaderboard, calibration, plots, compare, publish, sweep.

Each takes lm-eval output folders (or results_*.json files) as written by
`lm_eval ... --output_path DIR [--log_samples]`. Import-light: pandas, numpy and matplotlib are
imported inside the commands. Errors follow medtasks.common's policy: unusable input raises a
UsageError (ResultsError, DataError) that `medeval` prints as one line with exit 2; compare's
regression verdict is EXIT_VERDICT (1).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from medtasks.common import EXIT_OK, EXIT_VERDICT, require
from medtasks.store import atomic_write_bytes
from medtasks.spec import METRICS, REGIMES, SOURCE_LANGUAGE

from results.gate import Gate
from results.metrics import ACCURACY_METRICS, CALIBRATION_METRICS, HEADLINE_METRIC, PRIMARY, listed
from results.sweep import add_arguments as sweep_arguments

RUNS_HELP = "lm-eval output folders or results_*.json files (searched recursively)"


def _common(p, runs_nargs="+") -> None:
    p.add_argument("runs", nargs=runs_nargs, type=Path, metavar="RUNS", help=RUNS_HELP)
    p.add_argument("--regime", help=f"only this regime ({listed(REGIMES)}; needed when the runs of a view mix them)")
    p.add_argument("--models", nargs="+", metavar="NAME", help="only these models (display names)")
    p.add_argument("--name", action="append", default=[], metavar="PATH=NAME",
                   help="display name for a model path or hub id (repeatable; default: shortest unique path suffix)")
    p.add_argument("--no-model-hash", action="store_true",
                   help="do not hash local model folders for provenance (faster for big models)")


def register(subparsers) -> None:
    p = subparsers.add_parser("results-table", help="lm-eval outputs -> one tidy CSV table with provenance",
                              description="Load lm-eval output folders into one tidy table (one row per model x "
                              "task x few-shot seed x metric, with benchmark, language, kind, task version, regime "
                              "and its version, data checksum, question counts, lm-eval version, model revision and "
                              "project commit) and write it as CSV.")
    _common(p)
    p.add_argument("-o", "--output", type=Path, help="CSV file (default: standard output)")
    _contamination(p)
    p.set_defaults(func=cmd_table)

    p = subparsers.add_parser("leaderboard", help="leaderboard tables (Markdown, CSV, LaTeX)",
                              description="Task x language x model leaderboards: mean ± population std over "
                              "few-shot seeds, macro averages per language and overall, chance levels and a "
                              "chance-centred average; the best per column in bold. Views: summary (models x "
                              "languages), tasks (models x tasks of one language), headline (BioMistral's headline "
                              f"table layout; {HEADLINE_METRIC} by default, as BioMistral scores), grid (task rows x "
                              "models), native (translated suite vs native exams per language, and each native exam "
                              "against its translation, paired per question), categories (per-category scores "
                              "from the samples, e.g. HEAD-QA's medicine, nursing, ...).")
    _common(p)
    p.add_argument("--view", default="summary",
                   help="summary | tasks | headline | grid | native | categories (default summary)")
    p.add_argument("--metric", help=f"{listed(METRICS)} (default {PRIMARY}; headline: {HEADLINE_METRIC})")
    p.add_argument("--language", default=SOURCE_LANGUAGE,
                   help="language of the tasks/headline views (default %(default)s)")
    p.add_argument("--format", default="markdown", help="markdown | csv | latex (default markdown)")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="write <view>_<metric>.md/.csv/.tex into DIR instead of printing one format")
    _contamination(p)
    p.set_defaults(func=cmd_leaderboard)

    p = subparsers.add_parser("calibration", help="ECE and Brier per task and language, from the samples",
                              description="Expected calibration error (5 equal-width bins, confidence = largest "
                              "letter probability: BioMistral's definition) and Brier score per task and language, "
                              "computed from the per-question samples (lm_eval --log_samples).")
    _common(p)
    p.add_argument("--metric", default=CALIBRATION_METRICS[0],
                   help=f"{listed(CALIBRATION_METRICS)} (default %(default)s)")
    p.add_argument("--format", default="markdown", help="markdown | csv | latex (default markdown)")
    p.set_defaults(func=cmd_calibration)

    p = subparsers.add_parser("plots", help="figures (PNG + SVG): bars, heatmap, reliability, variants, native",
                              description="Headless matplotlib figures, each as PNG and SVG, captioned with the "
                              "metric, regime, seeds and dates: bars (per-language averages per model), heatmap "
                              "(task x language per model), reliability (per language, from samples), variants "
                              "(variants of one model as the difference to the original), native (translated suite "
                              "vs native exams, and each native exam against its translation).")
    _common(p)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder for the figures")
    p.add_argument("--plots", nargs="+", default=["bars", "heatmap", "reliability"], metavar="NAME",
                   help="bars heatmap reliability variants native (default: the first three)")
    p.add_argument("--metric", default=PRIMARY, help=f"{listed(METRICS)} (default %(default)s)")
    p.add_argument("--base", help="the original model of the variants plot (default: first of --models)")
    p.set_defaults(func=cmd_plots)

    p = subparsers.add_parser("compare", help="regression check: BASE vs CANDIDATE, paired per question",
                              description="Pair the questions of two evaluations by id (from the samples) and "
                              "report per task and language the accuracy delta, a seeded paired-bootstrap "
                              "confidence interval and an exact McNemar p-value, as Markdown for a CI comment. "
                              "Exit 1 when a drop exceeds --threshold and both tests call it significant; "
                              "exit 2 when the runs cannot be compared (no shared questions; a task run on other "
                              "data, in another regime or task version).")
    p.add_argument("base", type=Path, metavar="BASE", help="lm-eval output folder of the reference model")
    p.add_argument("candidate", type=Path, metavar="CANDIDATE", help="lm-eval output folder of the new checkpoint")
    p.add_argument("--threshold", type=float, default=Gate.threshold,
                   help="smallest drop that fails, in acc's unit (a fraction; default %(default)s)")
    p.add_argument("--alpha", type=float, default=Gate.alpha,
                   help="significance level; the CI is 1-alpha (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=Gate.n_boot, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--seed", type=int, default=Gate.seed, help="bootstrap seed: same seed, same intervals (default %(default)s)")
    p.add_argument("--metric", default=Gate.metric, help=f"{listed(ACCURACY_METRICS)} (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown summary to FILE")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("publish", help="model-index YAML block and leaderboard JSON for one model",
                              description="Export one model's results (means over few-shot seeds, with std, task "
                              "versions and provenance) as the Hugging Face model card `model-index` block and as "
                              "a standalone JSON for a leaderboard upload.")
    _common(p)
    p.add_argument("--model", required=True, help="display name of the model to publish")
    p.add_argument("--url", help="source URL recorded in the model-index block (e.g. your results repository)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                   help="writes model-index.yaml and <model>.medeval.json there")
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("sweep", help="evaluate the checkpoints of a training run; exit 1 if one regressed",
                              description="Evaluate checkpoints (a list, or every checkpoint-* folder of a training "
                              "output, optionally watched as new ones appear) on the chosen tasks and few-shot seeds, "
                              "compare each with a baseline (the base model or the previous checkpoint) as `medeval "
                              "compare` does, and write a checkpoint x language table (Markdown + CSV) with a verdict "
                              "per row and a trend figure. Done runs are skipped on a re-run; a killed run resumes "
                              "from its request cache. Exit 1 when any checkpoint regressed.")
    sweep_arguments(p)
    p.set_defaults(func=cmd_sweep)

    from results.cli_submission import register as register_submission  # submit, verify, site

    register_submission(subparsers)


def _contamination(p) -> None:
    p.add_argument("--contamination", type=Path, metavar="REPORT",
                   help="a `medeval contamination` report.json: add each task's score recomputed without the "
                   "questions it flags (clean subset) beside the full score; refused when the report checked other data")


def _names(pairs: list[str]) -> dict[str, str]:
    from results.load import ResultsError

    out = {}
    for pair in pairs:
        path, sep, name = pair.partition("=")
        if not sep or not name:
            raise ResultsError(f"--name expects PATH=NAME, got {pair!r}")
        out[path] = name
    return out


def _load(args, runs=None):
    from results.load import load_table

    return load_table(runs or args.runs, names=_names(getattr(args, "name", [])),
                      hash_models=not getattr(args, "no_model_hash", False), progress=True)


def _table(args):
    """The tidy table of the runs, with clean-subset scores when --contamination names a report (read
    before anything is loaded, so a bad report costs nothing)."""
    report = getattr(args, "contamination", None)
    if report is None:
        return _load(args)
    from results.clean import read_report, with_clean_scores

    read_report(report)
    return with_clean_scores(_load(args), report, progress=True)


def cmd_table(args) -> int:
    table = _table(args)
    if args.output:
        atomic_write_bytes(args.output, table.to_csv(index=False).encode())
        print(f"{len(table)} rows -> {args.output}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    return EXIT_OK


def cmd_leaderboard(args) -> int:
    from results.leaderboard import check_metric, get_view
    from results.render import EXTENSIONS, get_format, render

    view, _ = get_view(args.view), get_format(args.format)  # refuse a bad name before loading anything
    metric = check_metric(args.metric or (HEADLINE_METRIC if args.view == "headline" else PRIMARY))
    options = {"metric": metric, "regime": args.regime, "models": args.models}
    if args.view in ("tasks", "headline"):
        options["language"] = args.language
    table = _table(args)
    if args.contamination:
        from results.clean import clean_view

        grids = clean_view(view, table, args.contamination, **options)
    else:
        grids = view(table, **options)
    grids = grids if isinstance(grids, list) else [grids]
    if args.output:
        texts = {args.output / f"{args.view}_{metric}{'_' + g.name if g.name else ''}{ext}": render(g, fmt)
                 for g in grids for fmt, ext in EXTENSIONS.items()}
        args.output.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            atomic_write_bytes(path, text.encode())
            print(path)
    else:
        sys.stdout.write(render(grids, args.format))
    return EXIT_OK


def cmd_calibration(args) -> int:
    from results.calibration import calibration_grid, calibration_records, check_calibration_metric
    from results.render import get_format, render

    check_calibration_metric(args.metric), get_format(args.format)
    records = calibration_records(_load(args), args.regime, args.models, progress=True)
    sys.stdout.write(render(calibration_grid(records, args.metric), args.format))
    return EXIT_OK


def cmd_plots(args) -> int:
    from results.leaderboard import check_metric
    from results.plots import check_plots, make_plots

    check_plots(args.plots), check_metric(args.metric)
    require("matplotlib", "results", "plots")  # before loading runs: a missing extra is one line, no progress bar
    paths = make_plots(args.plots, _load(args), args.output, metric=args.metric, regime=args.regime,
                       models=args.models, base=args.base)
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_compare(args) -> int:
    from results.compare import compare_tables, to_json, to_markdown

    gate = Gate(threshold=args.threshold, alpha=args.alpha, n_boot=args.bootstrap, seed=args.seed, metric=args.metric)
    result = compare_tables(_load(args, [args.base]), _load(args, [args.candidate]), gate, progress=True)
    text = to_markdown(result)
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")
    return EXIT_VERDICT if result.regressions else EXIT_OK


def cmd_publish(args) -> int:
    from results.plots import slug
    from results.publish import model_summary, to_model_index

    summary = model_summary(_load(args), args.model, args.regime)
    texts = {args.output / "model-index.yaml": to_model_index(summary, args.url),
             args.output / f"{slug(args.model)}.medeval.json": json.dumps(summary, indent=2, ensure_ascii=False) + "\n"}
    args.output.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
        print(path)
    return EXIT_OK


def cmd_sweep(args) -> int:
    from results.sweep import run_sweep

    return run_sweep(args)
