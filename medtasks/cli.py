"""`medeval`: one console script; every package registers its own subcommands.

A package declares `register(subparsers)` under the `medeval.commands` entry-point group
(setup.cfg), so this ground-floor module never imports the packages above it. The registering
modules must stay import-light (heavy libraries are imported inside the command functions), which
keeps `medeval --help` well under a second.

One error policy for every command (medtasks.common): success 0, a negative verdict 1, a bad
argument, file or input 2 with one line `medeval <command>: <message>` and no traceback.
"""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from medtasks.common import EXIT_USAGE, UsageError

COMMAND_GROUP = "medeval.commands"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line and exit 2 (argparse's usage block is noise in logs)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def command_modules() -> list:
    """The registered `register` functions, in a stable order (by entry-point name)."""
    found = sorted(entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name)
    if not found:
        raise SystemExit("medeval: no commands registered; reinstall the project (scripts/setup)")
    return [ep.load() for ep in found]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="medeval",
        description="Multilingual medical LLM evaluation on lm-evaluation-harness "
        "(BioMistral's ten tasks x eight languages, native-language exams, your own benchmarks) "
        "and the tools around it. Exit status: 0 success, 1 negative verdict, 2 bad input.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for register in command_modules():
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        return _fail(args.command, err)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        return _fail(args.command, f"{err.strerror}: {err.filename}" if err.filename else err)
    except KeyError as err:  # unknown benchmark / language / method: the message lists the valid names
        return _fail(args.command, err.args[0] if err.args else err)
    except KeyboardInterrupt:
        print(f"medeval {args.command}: interrupted", file=sys.stderr)
        return 130


def _fail(command: str, message) -> int:
    text = " ".join(str(message).split("\n")).strip()
    print(f"medeval {command}: {text}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
