"""`python -m translation translate ...`: this package's commands without the rest of medeval."""
import argparse
import sys

from translation.cli import register


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translation")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
