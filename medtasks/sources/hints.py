"""The `medeval` commands that error messages suggest, built in one place.

Every message that tells a user what to run takes its command from here, and a test parses each one
with the real CLI (medtasks.cli.build_parser), so a suggestion can never be a command that fails.
Placeholders (DIR, data.zip) are plain words the user replaces.
"""
from __future__ import annotations

import shlex
from typing import Iterable

DATA_DIR = "DIR"  # a folder laid out like the original releases (medtasks/sources/README.md)
BIOINSTRUCTQA_ZIP = "data.zip"


def _command(*words: str, benchmarks: Iterable[str] = (), languages: Iterable[str] = ()) -> str:
    benchmarks, languages = list(benchmarks), list(languages)
    return shlex.join(["medeval", *words, *(["--benchmarks", *benchmarks] if benchmarks else []),
                       *(["--languages", *languages] if languages else [])])


def import_data(benchmarks: Iterable[str] = (), languages: Iterable[str] = (), folder: str = DATA_DIR) -> str:
    return _command("import", "--data", str(folder), benchmarks=benchmarks, languages=languages)


def import_bioinstructqa(benchmarks: Iterable[str] = (), languages: Iterable[str] = (),
                         zip_path: str = BIOINSTRUCTQA_ZIP) -> str:
    return _command("import", "--bioinstructqa", str(zip_path), benchmarks=benchmarks, languages=languages)


def import_hub(benchmarks: Iterable[str] = (), languages: Iterable[str] = ()) -> str:
    return _command("import", "--hub", benchmarks=benchmarks, languages=languages)


def translate(benchmarks: Iterable[str], languages: Iterable[str]) -> str:
    return _command("translate", benchmarks=benchmarks, languages=languages)


def quoted(command: str) -> str:
    """How messages show a command: in backticks, so tests (and users) can find where it ends."""
    return f"`{command}`"
