"""What every importer shares: the Importer type, provenance, located JSON parsing, record checks.

Importers raise medtasks.records.DataError naming the file, the line (or key / record) and the
field; nothing here fixes bad input quietly.
"""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from medtasks.records import DataError, Record, validate
from medtasks.sources.encoding import not_utf8

log = logging.getLogger("medtasks.sources")


@dataclass(frozen=True)
class Importer:
    name: str
    description: str
    reader: Callable[..., list[Record]]

    def read(self, path, **options) -> list[Record]:
        return self.reader(path, **options)


def source_name(path: Path, root: Path | None) -> str:
    """The file as provenance names it: relative to the data folder when it lies inside it."""
    path = Path(path)
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def provenance(importer: str, source: str, sha256: str, row: int | str, kind: str = "import",
               **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "importer": importer, "source": source, "sha256": sha256, "row": row, **extra}


def field(row: Any, key: str, source: str, where: int | str) -> Any:
    """row[key], or a DataError naming the missing field."""
    if not isinstance(row, dict):
        raise DataError(source, where, None, f"expected a JSON object, got {type(row).__name__}")
    if key not in row:
        raise DataError(source, where, key, "missing")
    return row[key]


def text_field(row: Any, key: str, source: str, where: int | str) -> str:
    value = field(row, key, source, where)
    if not isinstance(value, str) or not value.strip():
        raise DataError(source, where, key, f"expected non-empty text, got {value!r:.60}")
    return value


def ordered_options(options: Any, letters: str, source: str, where: int | str,
                    key: str = "options") -> dict[str, str]:
    """{letter: text} in the benchmark's letter order; a missing or extra letter is an error."""
    if not isinstance(options, dict):
        raise DataError(source, where, key, f"expected {{letter: text}}, got {type(options).__name__}")
    extra = [letter for letter in options if letter not in letters]
    if extra:
        raise DataError(source, where, f"{key}.{extra[0]}", f"unexpected option; expected {list(letters)}")
    missing = [letter for letter in letters if letter not in options]
    if missing:
        raise DataError(source, where, f"{key}.{missing[0]}", "missing option")
    return {letter: options[letter] for letter in letters}


def answer_letter(value: Any, options: dict[str, str], source: str, where: int | str, key: str) -> str:
    if not isinstance(value, str) or value not in options:
        raise DataError(source, where, key, f"answer {value!r} is not one of the options {list(options)}")
    return value


def checked(record: Record, where: int | str | None = None) -> Record:
    """Run the shared record validation, located at the record's source and row."""
    prov = record.provenance
    return validate(record, prov.get("source", "?"), prov.get("row") if where is None else where)


def check_unique(records: Iterable[Record]) -> None:
    """Duplicate ids inside one benchmark/language/split, located at the second occurrence."""
    seen: dict[tuple[str, str, str, str], Any] = {}
    for record in records:
        key = (record.benchmark, record.language, record.split, record.id)
        prov = record.provenance
        if key in seen:
            first = f"line {seen[key]}" if isinstance(seen[key], int) else seen[key]
            raise DataError(prov.get("source", "?"), prov.get("row"), "id",
                            f"duplicate id {record.id!r} (first at {first})")
        seen[key] = prov.get("row")


def _no_duplicate_keys(source: str):
    def hook(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise DataError(source, f"key {key!r}", key, "duplicate key")
            obj[key] = value
        return obj
    return hook


@contextlib.contextmanager
def utf8_only(path: Path, source: str, open_binary: Callable[[], Any] | None = None):
    """Turn a UnicodeDecodeError raised inside the block into a DataError naming the file, the line,
    the byte offset and the encoding the file looks like (`open_binary` reopens it; default: `path`)."""
    try:
        yield
    except UnicodeDecodeError:
        raise not_utf8(source, open_binary or (lambda: open(path, "rb"))) from None


def require_rows(rows: list, source: str, what: str = "no questions: the file is empty") -> list:
    """An empty (or header-only) file is an error naming it, never an import of nothing."""
    if not rows:
        raise DataError(source, None, None, what)
    return rows


def load_json(path: Path, source: str) -> Any:
    """A whole JSON file; bad JSON names its line; duplicate object keys are an error."""
    try:
        with utf8_only(path, source), open(path, encoding="utf-8") as handle:
            return json.load(handle, object_pairs_hook=_no_duplicate_keys(source))
    except json.JSONDecodeError as err:
        raise DataError(source, err.lineno, None, f"bad JSON: {err.msg} (column {err.colno})") from None


def iter_jsonl(path: Path, source: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line."""
    with utf8_only(path, source), open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(source, line_no, None, f"bad JSON: {err.msg} (column {err.colno})") from None
            if not isinstance(row, dict):
                raise DataError(source, line_no, None, f"expected a JSON object, got {type(row).__name__}")
            yield line_no, row


_MAX_ELEMENT_CHARS = 64 << 20  # one list element larger than this is not a record: stop buffering


def iter_json_array(stream: TextIO, source: str, chunk: int = 1 << 20) -> Iterator[tuple[int, Any]]:
    """Stream the elements of one top-level JSON list: (1-based index, element).

    Memory stays at about one chunk plus one element, so a multi-GB list never sits in memory
    whole. An element cut by the chunk boundary is retried after reading more text.
    """
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        text = stream.read(chunk)
        eof = not text
        buf, pos = buf[pos:] + text, 0
        return not eof

    def next_char() -> str:  # first non-blank character at pos, "" at end of input
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    if next_char() != "[":
        raise DataError(source, None, None, "bad JSON: expected one top-level list")
    pos += 1
    index = 0
    while True:
        char = next_char()
        if char == "]":
            return
        if char == "":
            raise DataError(source, f"record {index}" if index else None, None,
                            "bad JSON: the input ends before the list is closed")
        if index:
            if char != ",":
                raise DataError(source, f"record {index + 1}", None, f"bad JSON: expected ',' or ']', got {char!r}")
            pos += 1
            next_char()
        index += 1
        while True:
            try:
                element, end = decoder.raw_decode(buf, pos)
                if end < len(buf) or eof:  # a number/literal ending exactly at the buffer edge may continue
                    break
            except json.JSONDecodeError as err:
                if eof or len(buf) - pos > _MAX_ELEMENT_CHARS:
                    raise DataError(source, f"record {index}", None, f"bad JSON: {err.msg}") from None
            more()
        pos = end
        yield index, element
