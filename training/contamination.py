"""Which test questions of which tasks appear in a corpus: n-gram overlap (training/ngrams.py).

Every field of every test question of the chosen tasks (the question, each option, and the context of
PubMedQA) is indexed on its own; one streaming pass over the corpus finds the fields that share an
n-gram with it. Pieces of the corpus (files, byte ranges of big files) go to worker processes, each
holding only the index; a shard (`--shard i/N`) takes its share of the files, and `merge` joins the
shards' reports. The report format is documented in training/README.md ("Contamination report").
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from medtasks.common import UsageError, sha256_bytes, sha256_file
from medtasks.records import Record
from medtasks.spec import task_name
from medtasks.store import MissingData, has_split, read_records, split_path
from training import textfiles
from training.contamination_report import FORMAT, finish_tasks, sample_order
from training.ngram_index import Index
from training.ngrams import Settings, token_spans

SPLIT = "test"
BATCH_BYTES = 1 << 21  # text per search call: large enough to amortise numpy, small enough to stay in cache
EXCERPT = 200  # characters of corpus text shown per sample
NORMALIZATION = ("Unicode NFKC, casefold, punctuation and symbols (P*, S*) -> space, whitespace collapsed; "
                 "word tokens, or characters for text mostly in Han or kana")


def parse_tasks(names: list[str]) -> list[tuple[str, str]]:
    """(benchmark, language) of each task of the given task, group and tag names, each once, in order."""
    from medtasks.cli_tasks import expand_tasks, resolve_tasks

    return expand_tasks(resolve_tasks(",".join(names)))


def record_fields(record: Record) -> list[tuple[str, str]]:
    """(field name, text) of what is checked: the question, each option, and the context if any."""
    out = [("question", record.question)] + [(f"options.{k}", v) for k, v in record.options.items()]
    return out + ([("context", record.context)] if record.context else [])


@dataclass
class TestSet:
    """The fields of the chosen tasks' test questions, in a fixed order, and their index."""
    tasks: dict[str, dict]
    refs: list[tuple[str, str, str]]  # per field: (task, question id, field name)
    index: Index
    fingerprint: str = ""

    @classmethod
    def load(cls, store: Path, pairs: list[tuple[str, str]], settings: Settings) -> "TestSet":
        missing = [f"{b}/{l}/{SPLIT}" for b, l in pairs if not has_split(store, b, l, SPLIT)]
        if missing:
            raise MissingData(f"not in the store at {store}: {', '.join(missing)}; import English test sets with "
                              "`medeval import --data DIR`, other languages with `medeval import --bioinstructqa "
                              "data.zip` (or `medeval translate`)")
        tasks, refs, texts = {}, [], []
        for bench, language in pairs:
            records = read_records(store, bench, language, SPLIT)
            name = task_name(bench, language)
            tasks[name] = {"benchmark": bench, "language": language, "split": SPLIT, "questions": len(records),
                           "data_sha256": sha256_file(split_path(store, bench, language, SPLIT))}
            for record in records:
                for field_name, text in record_fields(record):
                    refs.append((name, record.id, field_name))
                    texts.append(text)
        index = Index(texts, settings)
        for name, info in tasks.items():
            grams = [g for ref, g in zip(refs, index.grams) if ref[0] == name]
            info["fields"] = {"checked": sum(g > 0 for g in grams), "too_short": sum(g == 0 for g in grams)}
        key = json.dumps([settings.to_dict(), {n: t["data_sha256"] for n, t in tasks.items()}], sort_keys=True)
        return cls(tasks, refs, index, sha256_bytes(key.encode()))


@dataclass
class Found:
    """What one piece (or a whole scan) found: per field, corpus hits, matched n-gram positions, samples."""
    hits: dict[int, int] = field(default_factory=dict)
    positions: dict[int, set] = field(default_factory=dict)
    samples: dict[int, list] = field(default_factory=dict)
    lines: int = 0
    texts: int = 0
    bytes: int = 0


def scan_piece(test: TestSet, piece: textfiles.Piece, text_field: str = "text", samples: int = 3) -> Found:
    """One streaming pass over a piece; lines of samples are counted from the piece's start."""
    found, batch, size = Found(), [], 0
    for line, offset, nbytes, chunk, text in textfiles.texts(piece, text_field):
        found.lines, found.bytes = line, found.bytes + nbytes
        if text:
            found.texts += 1
            batch.append((line, offset, chunk, text))
            size += len(text)
        if size >= BATCH_BYTES:
            _search(test, piece.path, batch, found, samples)
            batch, size = [], 0
    _search(test, piece.path, batch, found, samples)
    return found


def _search(test: TestSet, path: str, batch: list, found: Found, samples: int) -> None:
    for which, mode, start, k, refs in test.index.search([row[3] for row in batch]):
        line, offset, chunk, text = batch[which]
        excerpt = None  # the same for every field of this hit, and slow: made once, when a sample needs it
        for field_index, position in refs:
            field_index = int(field_index)
            found.hits[field_index] = found.hits.get(field_index, 0) + 1
            found.positions.setdefault(field_index, set()).add(int(position))
            kept = found.samples.setdefault(field_index, [])
            if len(kept) < samples and all(s["line"] != line for s in kept):  # one sample per corpus line
                excerpt = excerpt or _excerpt(text, mode, start, k)
                kept.append({"file": path, "line": line, "byte": offset, "chunk": chunk, **excerpt})


def _char_span(spans: list[tuple[int, int]], start: int, k: int) -> tuple[int, int]:
    """Character offsets of tokens [start, start + k), given each token's (start, end)."""
    return spans[start][0], spans[start + k - 1][1]


def _excerpt(text: str, mode: str, start: int, k: int) -> dict:
    """Character offsets and excerpt of tokens [start, start + k) of `text` (None where they cannot be mapped)."""
    spans = token_spans(text, mode)
    if spans is None:
        return {"start": None, "end": None, "text": None}
    begin, end = _char_span(spans, start, k)
    return {"start": begin, "end": end, "text": text[begin:end][:EXCERPT]}


def merge_found(total: Found, part: Found, piece: int, samples: int) -> None:
    """Add a piece's findings; samples keep their piece (lines are counted from its start) until `resolve_lines`."""
    for f, hits in part.hits.items():
        total.hits[f] = total.hits.get(f, 0) + hits
        total.positions.setdefault(f, set()).update(part.positions[f])
        kept = total.samples.setdefault(f, [])
        kept += [{**s, "piece": piece} for s in part.samples.get(f, [])]
        kept.sort(key=sample_order)  # byte offsets are the file's, so pieces in any order give the same ones
        del kept[samples:]
    total.texts += part.texts
    total.bytes += part.bytes


def resolve_lines(total: Found, pieces: list[textfiles.Piece], lines: list[int]) -> None:
    """Turn the samples' piece-relative line numbers into file line numbers (the lines of the ranges before)."""
    before, seen = [], {}
    for piece, count in zip(pieces, lines):
        before.append(seen.get(piece.path, 0))
        seen[piece.path] = before[-1] + count
    for kept in total.samples.values():
        for sample in kept:
            sample["line"] += before[sample.pop("piece")]
    total.lines = sum(lines)


_WORKER: dict = {}


def _init_worker(test: TestSet, text_field: str, samples: int) -> None:
    _WORKER.update(test=test, text_field=text_field, samples=samples)


def _scan_worker(item: tuple[int, textfiles.Piece]) -> tuple[int, Found]:
    index, piece = item
    try:
        return index, scan_piece(_WORKER["test"], piece, _WORKER["text_field"], _WORKER["samples"])
    except UsageError as err:  # as a plain UsageError: its subclasses' constructors do not unpickle
        raise UsageError(str(err)) from None


def scan(test: TestSet, files: list[Path], *, text_field: str = "text", samples: int = 3, workers: int = 1,
         range_bytes: int = 256 << 20, progress_bar: bool = True) -> tuple[Found, dict]:
    """Scan every file (in pieces, over `workers` processes); returns what was found and corpus totals."""
    from tqdm.auto import tqdm

    pieces = textfiles.pieces(files, range_bytes)
    total, lines = Found(), [0] * len(pieces)
    bar = tqdm(total=sum(p.size for p in pieces), unit="B", unit_scale=True, desc="contamination",
               disable=not progress_bar)
    if workers > 1 and len(pieces) > 1:
        import multiprocessing

        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(min(workers, len(pieces)), _init_worker, (test, text_field, samples)) as pool:
            done = pool.imap_unordered(_scan_worker, enumerate(pieces))
            for i, found in done:  # merged as they come: memory stays bounded by the index
                merge_found(total, found, i, samples)
                lines[i] = found.lines
                bar.update(pieces[i].size)
    else:
        for i, piece in enumerate(pieces):
            found = scan_piece(test, piece, text_field, samples)
            merge_found(total, found, i, samples)
            lines[i] = found.lines
            bar.update(piece.size)
    bar.close()
    resolve_lines(total, pieces, lines)
    return total, {"files": [str(f) for f in files], "bytes": total.bytes, "lines": total.lines,
                   "texts": total.texts}


def build_report(test: TestSet, found: Found, corpus: dict, settings: dict) -> dict:
    """The JSON report (format in training/README.md)."""
    tasks = {name: {**info, "contaminated": 0, "contaminated_ids": [], "matches": {}, "samples": {}}
             for name, info in test.tasks.items()}
    for f in sorted(found.hits):
        name, question, field_name = test.refs[f]
        task = tasks[name]
        task["matches"].setdefault(question, {})[field_name] = {
            "ngrams": test.index.grams[f], "matched": len(found.positions[f]), "hits": found.hits[f],
            "positions": sorted(found.positions[f])}
        task["samples"].setdefault(question, []).extend({"field": field_name, **s} for s in found.samples.get(f, []))
    finish_tasks(tasks, settings["samples"])
    return {"format": FORMAT, "fingerprint": test.fingerprint, "settings": settings, "corpus": corpus,
            "tasks": tasks}


def decontaminate(test: TestSet, texts: list[str], mask: bool) -> list[tuple[str | None, dict]]:
    """Per text: (what to keep: the text itself, or with the overlapping spans cut out when `mask`, or None
    to drop it; what it overlapped {task: {question id: [fields]}}, empty when clean)."""
    found: dict[int, list] = {}
    for hit in test.index.search(texts):
        found.setdefault(hit[0], []).append(hit)
    out = []
    for which, text in enumerate(texts):
        if which not in found:
            out.append((text, {}))
            continue
        matches: dict[str, dict] = {}
        for _, _, _, _, refs in found[which]:
            for f, _ in refs:
                task, question, field_name = test.refs[f]
                matches.setdefault(task, {}).setdefault(question, set()).add(field_name)
        matches = {task: {q: sorted(fields) for q, fields in qs.items()} for task, qs in matches.items()}
        out.append((_masked(test, text, found[which]) if mask else None, matches))
    return out


def _masked(test: TestSet, text: str, found: list, rounds: int = 5) -> str | None:
    """Cut every overlapping span (`found`: the text's hits) out, a space in its place, and search again until
    nothing overlaps; None if nothing is left or the spans cannot be mapped onto the text."""
    for _ in range(rounds):
        if not found:
            return text if text.split() else None
        spans = {mode: token_spans(text, mode) for mode in {hit[1] for hit in found}}
        if any(s is None for s in spans.values()):
            return None
        cuts = [_char_span(spans[mode], start, k) for _, mode, start, k, _ in found]
        pieces, end = [], 0
        for begin, stop in sorted(cuts):
            if begin > end:
                pieces.append(text[end:begin])
            end = max(end, stop)
        text = " ".join(p.strip() for p in pieces + [text[end:]] if p.strip())
        found = list(test.index.search([text]))
    return None


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
