"""Corpus inputs of the contamination scan, cut into pieces that processes (and nodes) can share.

An input is a folder made by `medeval corpus` (its manifest's parts), another folder (every file under
it, sorted; hidden files skipped) or a file. A file is JSONL when its name ends in .jsonl, .ndjson or
.json (one object per line: the text in `text_field`, an id in "id" when present), else plain text (one
text per line); either may be compressed: .gz, .bz2, .xz, .zst (the zstandard package). An uncompressed
file larger than `range_bytes` is cut into byte ranges; a range owns the lines that START inside it,
so every line is read exactly once.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from medtasks.common import UsageError, require
from medtasks.records import DataError
from training.corpus import FORMAT as CORPUS_FORMAT
from training.corpus import corpus_files

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def _open_zst(path, mode: str = "rb"):
    zstandard = require("zstandard", "training", "reading .zst corpus files")
    return io.BufferedReader(zstandard.open(path, mode))


OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".lzma": lzma.open, ".zst": _open_zst,
           ".zstd": _open_zst}


@dataclass(frozen=True)
class Piece:
    path: str
    start: int = 0
    end: int | None = None  # None: to the end of the (decompressed) file
    size: int = 0  # bytes on disk, for progress and balance


def is_jsonl(path: str | Path) -> bool:
    name = Path(path).name
    for suffix in OPENERS:
        name = name.removesuffix(suffix)
    return name.endswith(JSONL_SUFFIXES)


def discover(inputs: list[str | Path]) -> list[Path]:
    """The files of the inputs, in input order (folders sorted), each once; a missing input is an error."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_file():
            files.append(item)
        elif (item / "manifest.json").is_file() and _is_corpus(item / "manifest.json"):
            files += corpus_files(item)
        elif item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(item).parts))
        else:
            raise UsageError(f"corpus input {item} does not exist")
    unique = list(dict.fromkeys(files))
    if not unique:
        raise UsageError(f"no corpus files in {', '.join(map(str, inputs))}")
    return unique


def _is_corpus(manifest: Path) -> bool:
    try:
        return json.loads(manifest.read_text()).get("format") == CORPUS_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def shard_files(files: list[Path], shard: int, count: int) -> list[Path]:
    """Files of shard `shard` (1-based) of `count`: largest first to the least loaded shard (deterministic)."""
    loads, owner = [0] * count, {}
    for path in sorted(files, key=lambda p: (-p.stat().st_size, str(p))):
        target = loads.index(min(loads))
        loads[target] += path.stat().st_size
        owner[path] = target + 1
    return [p for p in files if owner[p] == shard]


def pieces(files: list[Path], range_bytes: int) -> list[Piece]:
    out = []
    for path in files:
        size = path.stat().st_size
        if Path(path).suffix in OPENERS or size <= range_bytes:
            out.append(Piece(str(path), size=size))
        else:
            out += [Piece(str(path), s, min(s + range_bytes, size), min(range_bytes, size - s))
                    for s in range(0, size, range_bytes)]
    return out


def read_lines(piece: Piece) -> Iterator[tuple[int, bytes]]:
    """(byte offset of the line in the decompressed file, line) for each line the piece owns."""
    opener = OPENERS.get(Path(piece.path).suffix, open)
    with opener(piece.path, "rb") as handle:
        position = 0
        if piece.start:
            handle.seek(piece.start - 1)
            position = piece.start - 1 + len(handle.readline())  # the line under way belongs to the range before
        while piece.end is None or position < piece.end:
            line = handle.readline()
            if not line:
                break
            yield position, line
            position += len(line)


def texts(piece: Piece, text_field: str = "text") -> Iterator[tuple[int, int, int, str | None, str]]:
    """(line number in the piece, byte offset, bytes, id or None, text) of each line; "" for a blank one."""
    jsonl = is_jsonl(piece.path)
    for number, (offset, line) in enumerate(read_lines(piece), 1):
        if not line.strip():
            yield number, offset, len(line), None, ""
            continue
        if not jsonl:
            yield number, offset, len(line), None, line.decode("utf-8", errors="replace").rstrip("\r\n")
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise DataError(piece.path, f"byte {offset}", None, f"not a JSON line ({err}); plain text files "
                            "must not end in .jsonl/.json/.ndjson") from None
        text = row.get(text_field) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise DataError(piece.path, f"byte {offset}", text_field,
                            "no text in this field (choose the field with --text-field)")
        yield number, offset, len(line), None if row.get("id") is None else str(row["id"]), text
