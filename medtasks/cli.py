"""`medeval`: one console script, one block of subcommands per package.

Each package owns a CLI module exposing `register(subparsers)`; this table is the only place
that lists them. Modules are imported when the parser is built, so they must stay import-light
(heavy libraries are imported inside the command functions).
"""
from __future__ import annotations

import argparse
import importlib
import sys

PACKAGE_CLIS = (
    "medtasks.cli_tasks",  # import, tasks, model, eval
    "translation.cli",  # translate, translation-report
    "training.cli",  # corpus, pretrain, sft, merge-adapter
    "model_ops.cli",  # merge, quantize, variants
    "results.cli",  # results-table, leaderboard, calibration, plots, compare, publish
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medeval",
        description="Multilingual medical LLM evaluation on lm-evaluation-harness "
        "(BioMistral's ten tasks x eight languages) and the tools around it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in PACKAGE_CLIS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from medtasks.records import DataError
    from medtasks.sources.hub import HubUnavailable
    from medtasks.store import MissingData

    try:
        return int(args.func(args) or 0)
    except (DataError, MissingData, HubUnavailable, FileNotFoundError) as err:
        print(f"medeval {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyError as err:  # unknown benchmark / language / method: the message lists the valid names
        print(f"medeval {args.command}: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
