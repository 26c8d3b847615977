"""Contamination reports: merging shards, Markdown, writing (the JSON format is in training/README.md)."""
from __future__ import annotations

import json
from pathlib import Path

from medtasks.common import UsageError, parse_shard
from medtasks.store import atomic_write_bytes

FORMAT = "medeval-contamination/1"
MARKDOWN_ROWS = 50  # contaminated questions listed per task in the Markdown (the JSON has them all)


def sample_order(sample: dict):
    """Samples are kept in corpus order, so the same scan keeps the same ones however it was split."""
    return sample["file"], sample["byte"], sample["start"] or 0


def finish_tasks(tasks: dict, samples: int) -> None:
    """Per task: the contaminated ids from its matches, and at most `samples` samples per question, in corpus order."""
    for task in tasks.values():
        task["contaminated_ids"] = sorted(task["matches"])
        task["contaminated"] = len(task["contaminated_ids"])
        for kept in task["samples"].values():
            kept.sort(key=sample_order)
            del kept[samples:]


def read_reports(paths: list[Path]) -> list[dict]:
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UsageError(f"--merge {path}: not a readable contamination report ({err})") from None
        if not isinstance(report, dict) or report.get("format") != FORMAT:
            raise UsageError(f"--merge {path}: not a {FORMAT} report")
        reports.append(report)
    return reports


def merge_reports(reports: list[dict], paths: list[Path]) -> dict:
    """Join the reports of shards 1..N of one scan (same tasks, data and settings) into one report."""
    first = reports[0]
    shards = {}
    for report, path in zip(reports, paths):
        if report["fingerprint"] != first["fingerprint"] or report["settings"] != first["settings"]:
            raise UsageError(f"--merge {path}: made with other tasks, test data or settings than {paths[0]}")
        shard = report["corpus"].get("shard")
        if shard is None:
            raise UsageError(f"--merge {path}: not a shard report (made without --shard)")
        if shard in shards:
            raise UsageError(f"--merge {path}: shard {shard} is also in {shards[shard]}")
        shards[shard] = path
    count = parse_shard(next(iter(shards)))[1]
    expected = {f"{i}/{count}" for i in range(1, count + 1)}
    if set(shards) != expected:
        raise UsageError(f"--merge: shards {', '.join(sorted(expected - set(shards))) or 'none'} missing, "
                         f"{', '.join(sorted(set(shards) - expected)) or 'none'} unexpected (all of 1..{count} needed)")
    tasks = {name: {**task, "matches": {}, "samples": {}} for name, task in first["tasks"].items()}
    for report in reports:
        for name, task in report["tasks"].items():
            for question, fields in task["matches"].items():
                merged = tasks[name]["matches"].setdefault(question, {})
                for field_name, seen in fields.items():
                    old = merged.setdefault(field_name, {"ngrams": seen["ngrams"], "hits": 0, "positions": []})
                    old["hits"] += seen["hits"]
                    old["positions"] = sorted(set(old["positions"]) | set(seen["positions"]))
                    old["matched"] = len(old["positions"])
            for question, kept in task["samples"].items():
                tasks[name]["samples"].setdefault(question, []).extend(kept)
    finish_tasks(tasks, first["settings"]["samples"])
    order = sorted(reports, key=lambda r: parse_shard(r["corpus"]["shard"])[0])
    corpus = {"inputs": first["corpus"]["inputs"], "files": [f for r in order for f in r["corpus"]["files"]],
              **{k: sum(r["corpus"][k] for r in reports) for k in ("bytes", "lines", "texts")},
              "shard": None, "shards": sorted(shards, key=lambda s: parse_shard(s)[0])}
    return {**first, "corpus": corpus, "tasks": tasks}


def _kind(field_name: str) -> str:
    return field_name.split(".")[0]


def to_markdown(report: dict) -> str:
    s, c = report["settings"], report["corpus"]
    lines = ["# Contamination report", "",
             f"N-grams of {s['n']} words (a field of {s['min_tokens']}-{s['n'] - 1} words is matched whole; shorter "
             f"ones are not checked), {s['char_n']} characters for text without spaces (whole field from "
             f"{s['char_min']}); normalisation: {s['normalization']}.",
             f"Corpus: {len(c['files'])} files, {c['bytes'] / 1e6:.1f} MB, {c['texts']} texts"
             + (f" (shard {c['shard']})" if c.get("shard") else "") + ".", "",
             "| task | questions | contaminated | % | by question | by option | by context | fields checked "
             "| fields too short |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, task in report["tasks"].items():
        kinds = [{_kind(f) for f in fields} for fields in task["matches"].values()]
        share = 100 * task["contaminated"] / task["questions"] if task["questions"] else 0.0
        lines.append(f"| {name} | {task['questions']} | {task['contaminated']} | {share:.1f} | "
                     + " | ".join(str(sum(kind in k for k in kinds)) for kind in ("question", "options", "context"))
                     + f" | {task['fields']['checked']} | {task['fields']['too_short']} |")
    for name, task in report["tasks"].items():
        if not task["contaminated"]:
            continue
        lines += ["", f"## {name}: {task['contaminated']} contaminated", "",
                  "| question | fields (n-grams matched / checked) | first location |", "|---|---|---|"]
        for question in task["contaminated_ids"][:MARKDOWN_ROWS]:
            fields = ", ".join(f"{f} {m['matched']}/{m['ngrams']}" for f, m in task["matches"][question].items())
            sample = (task["samples"].get(question) or [None])[0]
            where = "" if sample is None else (
                f"{sample['file']}:{sample['line']}" + (f" ({sample['chunk']})" if sample["chunk"] else "")
                + (f" “{sample['text'][:80]}”" if sample["text"] else ""))
            lines.append(f"| {question} | {fields} | {where.replace('|', '/')} |")
        if task["contaminated"] > MARKDOWN_ROWS:
            lines.append(f"\n... and {task['contaminated'] - MARKDOWN_ROWS} more in the JSON report.")
    return "\n".join(lines) + "\n"


def write_report(report: dict, output: Path, name: str, markdown: bool = True) -> list[Path]:
    """Write <output>/<name>.json (and .md) atomically; returns the paths."""
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / f"{name}.json"]
    atomic_write_bytes(paths[0], (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode())
    if markdown:
        paths.append(output / f"{name}.md")
        atomic_write_bytes(paths[1], to_markdown(report).encode())
    return paths
