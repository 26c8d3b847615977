"""Commands submit, verify and site (registered by results.cli.register). Import-light: the bundle, the
verification and the site builder (pandas, datasets, matplotlib, jinja2) are imported inside the commands."""
from __future__ import annotations

import sys
from pathlib import Path

from medtasks.common import EXIT_OK, EXIT_VERDICT


def register(subparsers) -> None:
    p = subparsers.add_parser("submit", help="pack lm-eval runs of one model into a verifiable submission bundle",
                              description="Pack the lm-eval runs of ONE model (results and per-question samples of "
                              "every task and few-shot seed) into a submission bundle: a folder, or one .tar.gz when "
                              "-o ends with it. It records the model's identity (hub commit or content hash), the "
                              "lm-eval and project versions, each task's regime and the checksum of the data each "
                              "task used, and a manifest with the sha256 of every file. Refused, with the reason: "
                              "runs made with --limit, tasks that do not cover whole suites (e.g. all ten tasks of a "
                              "language), not every few-shot seed, runs in different regimes; --partial accepts them "
                              "and marks the bundle partial (verify and the site show it).")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIRS",
                   help="lm-eval output folders (lm_eval ... --log_samples --output_path DIR) or results_*.json files")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="BUNDLE",
                   help="the bundle: a new folder, or a file ending in .tar.gz")
    p.add_argument("--partial", action="store_true",
                   help="accept --limit runs, incomplete suites or seeds, mixed regimes; the bundle says so")
    p.add_argument("--model-name", metavar="NAME", help="the model's display name (default: the folder or hub name)")
    p.add_argument("--contamination", type=Path, metavar="REPORT",
                   help="a `medeval contamination` report.json: the bundle carries it and, per task, the scores "
                   "recomputed without the questions it flags")
    p.set_defaults(func=cmd_submit)

    p = subparsers.add_parser("verify", help="check a submission bundle against your data; exit 1 if anything differs",
                              description="Offline, against the maintainer's own store: recompute every metric from "
                              "the per-question samples and compare it with the reported one, check that the question "
                              "ids and counts are exactly those of the store's data (same checksums), that every "
                              "prompt is the one the task renders for its question with the run's few-shot examples, "
                              "that answers are well-formed, and that the files match the bundle's manifest. Exit 0 "
                              "with a short report when everything holds, 1 with every discrepancy (task, question "
                              "id, field).")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="a bundle made by medeval submit (folder or .tar.gz)")
    p.add_argument("--store", type=Path, metavar="DIR",
                   help="the maintainer's store (default: $MEDTASKS_STORE, else ~/.cache/medtasks/store)")
    p.add_argument("--report", type=Path, metavar="FILE",
                   help="also write the verdict as JSON (medeval site --verified reads it)")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("site", help="a static leaderboard website from results and submission bundles",
                              description="Write a static website (open index.html from disk or put the folder on any "
                              "static host): the summary (models x languages) for every metric, per-language and "
                              "per-task tables, translated vs native exams where they were run, a page per model "
                              "with its calibration, figures and the provenance of every number. Models are marked "
                              "verified (bundles whose `medeval verify --report` passed), unverified, partial or "
                              "limited (--limit runs). Tables sort and filter with JavaScript and read without it.")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                   help="lm-eval output folders and/or submission bundles (folders or .tar.gz)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                   help="the site folder (a new folder, or one medeval site wrote before: it is replaced)")
    p.add_argument("--verified", nargs="+", default=[], type=Path, metavar="REPORT",
                   help="verification reports written by medeval verify --report, matched to the bundles")
    p.add_argument("--name", action="append", default=[], metavar="PATH=NAME",
                   help="display name for a model path or hub id (repeatable)")
    p.add_argument("--regime", help="the regime to rank when the results mix several")
    p.add_argument("--title", default="Medical QA leaderboard", help="the site's title")
    p.set_defaults(func=cmd_site)


def cmd_submit(args) -> int:
    from results.submission import make_bundle

    submission = make_bundle(args.runs, args.output, partial=args.partial, name=args.model_name,
                             contamination=args.contamination)
    tasks = submission["tasks"]
    print(f"{args.output}: {len(tasks)} tasks, seeds {', '.join(map(str, submission['seeds']))}, model "
          f"{submission['model']['name']} ({submission['model']['revision']})")
    for reason in submission["partial_reasons"].values():
        print(f"PARTIAL: {reason}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from results.verify import verify_bundle, write_report

    report = verify_bundle(args.bundle, args.store, progress=True)
    if args.report:
        write_report(report, args.report)
    sys.stdout.write(report.text())
    return EXIT_OK if report.ok else EXIT_VERDICT


def cmd_site(args) -> int:
    from results.cli import _names
    from results.site.build import build_site

    pages = build_site(args.results, args.output, verified=args.verified, names=_names(args.name),
                       regime=args.regime, title=args.title)
    print(f"{len(pages)} pages in {args.output}; open {args.output / 'index.html'}")
    return EXIT_OK
