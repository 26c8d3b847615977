"""Quality report per language and benchmark: counts, item checks, round-trip chrF with outliers,
corpus chrF/BLEU (sacrebleu, the right tokenizer per language), and scores against a reference.

Round-trip scores need a backend to translate back into English; reference scores need a store
holding a human or third-party translation with the same ids. Both are optional: the checks and
counts alone already catch truncated or untranslated items.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from medtasks.common import require
from medtasks.records import Record
from medtasks.spec import SOURCE_LANGUAGE, get_language
from medtasks.store import MissingData, read_records
from translation.checks import CHECKS, check_item
from translation.engine import Engine, Job
from translation.pipeline import audit_path, record_item

MAX_LISTED = 20  # flagged items listed per group in the Markdown (the JSON has them all)


def _sacrebleu():
    return require("sacrebleu", "translation", "the quality report (chrF, BLEU)")


def bleu_tokenizer(language: str) -> str:
    """The languages table's sacrebleu tokenizer: 'zh' for Chinese (13a scores it ~0), else '13a'."""
    return get_language(language).bleu_tokenize


def item_text(item: dict) -> str:
    parts = [item.get("context") or "", item["question"], *item["options"]]
    return "\n".join(p for p in parts if p)


def outliers(scores: dict[str, float]) -> list[str]:
    """Ids scoring under Q1 - 1.5 IQR (Tukey's fence): far below the rest of their group."""
    if len(scores) < 4:
        return []
    q1, _, q3 = statistics.quantiles(scores.values(), n=4)
    fence = q1 - 1.5 * (q3 - q1)
    return sorted(i for i, s in scores.items() if s < fence)


def corpus_scores(hypotheses: list[str], references: list[str], language: str) -> dict:
    sb = _sacrebleu()
    if not hypotheses:
        return {}
    tokenize = bleu_tokenizer(language)
    return {"chrf": round(sb.corpus_chrf(hypotheses, [references]).score, 2),
            "bleu": round(sb.corpus_bleu(hypotheses, [references], tokenize=tokenize).score, 2),
            "bleu_tokenize": tokenize, "n": len(hypotheses)}


def _sentence_chrf(hypothesis: str, reference: str) -> float:
    return round(_sacrebleu().sentence_chrf(hypothesis, [reference]).score, 2)


def _read(store: Path, benchmark: str, language: str, split: str) -> list[Record] | None:
    try:
        return read_records(store, benchmark, language, split)
    except MissingData:
        return None


def group_report(store: Path, benchmark: str, language: str, split: str, english_store: Path,
                 roundtrip: Engine | None, reference_store: Path | None) -> dict | None:
    system = _read(store, benchmark, language, split)
    english = {r.id: r for r in _read(english_store, benchmark, SOURCE_LANGUAGE, split) or []}
    if system is None:
        return None
    kinds: dict[str, int] = {}
    for record in system:
        kind = record.provenance.get("kind", "import")
        kinds[kind] = kinds.get(kind, 0) + 1
    rejected = audit_path(store, benchmark, language, split, "rejected.jsonl")
    stats = audit_path(store, benchmark, language, split, "stats.json")
    report = {
        "benchmark": benchmark, "language": language, "split": split, "stored": len(system), "kinds": kinds,
        "rejected": sum(1 for _ in open(rejected, encoding="utf-8")) if rejected.exists() else None,
        "cached": json.loads(stats.read_text()).get("cached") if stats.exists() else None,
        "without_english": sorted(r.id for r in system if r.id not in english),
    }
    paired = [(r, english[r.id]) for r in system if r.id in english]
    report["flagged"] = []
    for r, e in paired:
        passed, reasons = check_item(record_item(e), record_item(r), language)
        if reasons:
            report["flagged"].append({"id": r.id, "checks": [n for n in CHECKS if n not in passed], "reasons": reasons})
    report["flagged_by_check"] = dict(Counter(n for flag in report["flagged"] for n in flag["checks"]))
    if roundtrip is not None and paired:
        jobs = [Job(record_item(r), language, SOURCE_LANGUAGE) for r, _ in paired]
        outcomes, _ = roundtrip.run(jobs)
        back = {r.id: (item_text(o.item), item_text(record_item(e))) for (r, e), o in zip(paired, outcomes) if o.item}
        per_item = {i: _sentence_chrf(h, ref) for i, (h, ref) in back.items()}
        report["roundtrip"] = {
            **corpus_scores([h for h, _ in back.values()], [ref for _, ref in back.values()], SOURCE_LANGUAGE),
            "failed": [r.id for (r, _), o in zip(paired, outcomes) if not o.item],
            "per_item_chrf": per_item, "outliers": outliers(per_item)}
    if reference_store is not None:
        refs = {r.id: r for r in _read(reference_store, benchmark, language, split) or []}
        both = [(item_text(record_item(r)), item_text(record_item(refs[r.id])), r.id) for r in system if r.id in refs]
        if both:
            per_item = {i: _sentence_chrf(h, ref) for h, ref, i in both}
            report["reference"] = {**corpus_scores([h for h, _, _ in both], [ref for _, ref, _ in both], language),
                                   "store": str(reference_store), "per_item_chrf": per_item,
                                   "outliers": outliers(per_item)}
    return report


def quality_report(store: Path, benchmarks: list[str], languages: list[str], split: str = "test",
                   english_store: Path | None = None, roundtrip: Engine | None = None,
                   reference_store: Path | None = None) -> dict:
    groups = []
    for language in languages:
        for benchmark in benchmarks:
            group = group_report(Path(store), benchmark, language, split, Path(english_store or store),
                                 roundtrip, Path(reference_store) if reference_store else None)
            if group is not None:
                groups.append(group)
    return {"store": str(store), "split": split, "groups": groups}


def _fmt(value) -> str:
    return "-" if value is None else str(value)


def to_markdown(report: dict) -> str:
    lines = [f"# Translation quality report ({report['split']} split)", "", f"Store: `{report['store']}`", "",
             "| language | benchmark | stored | rejected | cached | flagged | round-trip chrF | round-trip BLEU | "
             "round-trip outliers | ref chrF | ref BLEU (tokenizer) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in report["groups"]:
        rt, ref = g.get("roundtrip", {}), g.get("reference", {})
        ref_bleu = f"{ref['bleu']} ({ref['bleu_tokenize']})" if ref.get("bleu") is not None else "-"
        lines.append(f"| {g['language']} | {g['benchmark']} | {g['stored']} | {_fmt(g['rejected'])} | "
                     f"{_fmt(g['cached'])} | {len(g['flagged'])} | {_fmt(rt.get('chrf'))} | {_fmt(rt.get('bleu'))} | "
                     f"{len(rt['outliers']) if rt else '-'} | {_fmt(ref.get('chrf'))} | {ref_bleu} |")
    for g in report["groups"]:
        if not g["flagged"] and not g.get("roundtrip", {}).get("outliers"):
            continue
        by_check = ", ".join(f"{name} {n}" for name, n in sorted(g["flagged_by_check"].items()))
        lines += ["", f"## {g['language']} / {g['benchmark']}: flagged items" + (f" ({by_check})" if by_check else "")]
        for flag in g["flagged"][:MAX_LISTED]:
            lines.append(f"- `{flag['id']}`: " + "; ".join(flag["reasons"]))
        if len(g["flagged"]) > MAX_LISTED:
            lines.append(f"- ... {len(g['flagged']) - MAX_LISTED} more in the JSON report")
        for item_id in g.get("roundtrip", {}).get("outliers", [])[:MAX_LISTED]:
            lines.append(f"- `{item_id}`: round-trip chrF {g['roundtrip']['per_item_chrf'][item_id]} (outlier)")
    return "\n".join(lines) + "\n"
