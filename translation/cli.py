"""Commands of this package (filled by its issue); registers none yet."""


def register(subparsers) -> None:
    return None
