"""`medeval translate` and `medeval translation-report` (also `python -m translation ...`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BACKEND_HELP = """backends: google (no key), deepl ($DEEPL_API_KEY), microsoft ($MICROSOFT_API_KEY),
mymemory (no key; 500-character limit), libre (--url of a LibreTranslate server; $LIBRE_API_KEY if it
needs one), seq2seq (--model: local or hub Marian/M2M100/NLLB; a {src}/{tgt} template or
en-fr=PATH,en-es=PATH pairs), openai-chat (--url of an OpenAI-compatible /v1 endpoint such as vLLM,
--model the served name; $OPENAI_API_KEY if it needs one). Keys are read from the environment only."""


def _backend_options(p: argparse.ArgumentParser, flag: str, default: str | None) -> None:
    g = p.add_argument_group("backend", BACKEND_HELP)
    g.add_argument(flag, default=default, metavar="NAME", help=f"translation backend (default: {default})")
    g.add_argument("--url", help="server address (libre, openai-chat; deepl/microsoft to override theirs)")
    g.add_argument("--model", help="seq2seq model(s) or the chat endpoint's model name")
    g.add_argument("--workers", type=int, help="concurrent requests, one client each (web default 4)")
    g.add_argument("--timeout", type=float, help="seconds per call before it is retried (default 30)")
    g.add_argument("--rate", type=float, help="at most this many calls per second (default: the service's)")
    g.add_argument("--retries", type=int, help="retries on 429, 5xx, timeouts, unreadable answers (default 5)")
    g.add_argument("--max-chars", type=int, help="segment length limit (default: the service's limit)")
    g.add_argument("--batch-size", type=int, help="seq2seq: segments per generate call (default 16)")
    g.add_argument("--device", help="seq2seq: cpu, cuda, cuda:1 ... (default: cuda when available)")
    g.add_argument("--cache", type=Path, help="SQLite cache (default: <store>/_translation/cache.sqlite)")


def register(subparsers) -> None:
    from translation.backends import (
        DEFAULT_BACKEND,  # the registry alone: no backend module is imported
    )

    p = subparsers.add_parser(
        "translate", help="translate the English store into other languages",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Translate English benchmark records (question, options, PubMedQA context) into target "
        "languages and write them to the store with the same ids and their provenance. Answer letters and keys "
        "are never sent; few-shot examples stay English (BioMistral's protocol). Items failing a check go to "
        "<store>/_translation/<benchmark>/<lang>/<split>.rejected.jsonl with the reasons. Every translation is "
        "cached as soon as it arrives, so an interrupted run resumes without paying twice.")
    p.add_argument("--benchmarks", nargs="+", metavar="KEY",
                   help="benchmark keys (default: the ten-task suite; truthfulqa_med when named)")
    p.add_argument("--splits", nargs="+", default=["test"], help="splits to translate (default: test)")
    p.add_argument("--languages", nargs="+", metavar="CODE", help="target languages (default: all but English)")
    p.add_argument("--store", type=Path, help="store holding the English records (default: $MEDTASKS_STORE)")
    p.add_argument("--out-store", type=Path, help="write translations here instead of --store")
    p.add_argument("--ids", nargs="+", metavar="ID", help="translate only the records with these ids")
    p.add_argument("--limit", type=int, metavar="N",
                   help="translate only the first N records of each benchmark and split (after --ids); "
                        "the rest of the store stays as it is")
    p.add_argument("--replace", action="store_true",
                   help="let this translation replace a target group that holds other questions (e.g. a "
                        "third-party translation imported before); without it such a group stops the run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _backend_options(p, "--backend", DEFAULT_BACKEND)
    p.set_defaults(func=cmd_translate)

    p = subparsers.add_parser(
        "translation-report", help="quality report of translated store records (Markdown + JSON)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Per language and benchmark: records stored, rejected and served from the cache; items "
        "failing the checks against their English source (truncated, untranslated, numbers lost...); with "
        "--roundtrip, round-trip chrF per item with outliers and corpus chrF/BLEU; with --reference-store, "
        "chrF/BLEU against a human or third-party translation with the same ids (sacrebleu; zh tokenizer for "
        "Chinese). Works on any translated records, ours or imported ones.")
    p.add_argument("--store", type=Path, help="store holding the translations (default: $MEDTASKS_STORE)")
    p.add_argument("--english-store", type=Path, help="store holding the English records (default: --store)")
    p.add_argument("--reference-store", type=Path, help="store holding reference translations (same ids)")
    p.add_argument("--benchmarks", nargs="+", metavar="KEY", help="benchmark keys (default: all ten)")
    p.add_argument("--languages", nargs="+", metavar="CODE", help="languages (default: all but English)")
    p.add_argument("--split", default="test", help="split (default: test)")
    p.add_argument("--out", type=Path, default=Path("out/translation_report"),
                   help="writes OUT.md and OUT.json (default: out/translation_report)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _backend_options(p, "--roundtrip", None)
    p.set_defaults(func=cmd_report)


def _backend(args, name: str):
    from translation.backends import get_backend

    return get_backend(name, url=args.url, model=args.model, workers=args.workers, timeout=args.timeout,
                       rate=args.rate, retries=args.retries, max_chars=args.max_chars,
                       batch_size=args.batch_size, device=args.device)


def _defaults(args):
    from medtasks.common import UsageError
    from medtasks.spec import BENCHMARKS, LANGUAGES, SOURCE_LANGUAGE, get_benchmark
    from medtasks.store import default_store
    from translation.pipeline import check_targets

    store = args.store or default_store()
    try:  # suite or extra (truthfulqa_med); an unknown key lists the valid ones
        benchmarks = [get_benchmark(b).key for b in args.benchmarks] if args.benchmarks else list(BENCHMARKS)
    except KeyError as err:
        raise UsageError(f"--benchmarks: {err.args[0]}") from None
    languages = args.languages or [code for code in LANGUAGES if code != SOURCE_LANGUAGE]
    check_targets(languages)
    return store, benchmarks, languages


def cmd_translate(args) -> int:
    from translation.pipeline import check_request, translate_store

    store, benchmarks, languages = _defaults(args)
    check_request(args.splits, languages, args.limit)
    backend = _backend(args, args.backend)
    summary = translate_store(store, benchmarks, args.splits, languages, backend, args.cache, args.out_store,
                              progress=not args.no_progress, ids=args.ids, limit=args.limit,
                              replace=args.replace)
    run = summary.pop("_run")
    for key, counts in summary.items():
        kept = f", {counts['kept']} failed but kept from before" if counts["kept"] else ""
        print(f"{key}: {counts['translated']} translated, {counts['rejected']} rejected{kept}, "
              f"{counts['cached']} from cache")
    print(f"segments: {run['texts']} ({run['saved_by_dedup']} saved by de-duplication), {run['cache_hits']} cached, "
          f"{run['translated']} translated, {run['failed']} failed; {run['calls']} calls, {run['retries']} retries")
    return 0 if not run["failed"] and all(c["rejected"] == 0 for c in summary.values()) else 1


def cmd_report(args) -> int:
    from medtasks.common import UsageError
    from translation.cache import Cache
    from translation.engine import Engine
    from translation.pipeline import default_cache
    from translation.quality import quality_report, to_markdown

    store, benchmarks, languages = _defaults(args)
    backend = _backend(args, args.roundtrip) if args.roundtrip else None  # checked before the cache file is made
    for flag, folder in (("--store", store), ("--english-store", args.english_store),
                         ("--reference-store", args.reference_store)):
        if folder is not None and not Path(folder).is_dir():  # else an empty report would be written
            raise UsageError(f"{flag} {folder}: no such store folder (medeval import / medeval translate fill one)")
    roundtrip = None
    if backend:
        roundtrip = Engine(backend, Cache(args.cache or default_cache(store)), progress=not args.no_progress,
                           desc="round trip")
    report = quality_report(store, benchmarks, languages, args.split, args.english_store, roundtrip,
                            args.reference_store)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown = to_markdown(report)
    Path(f"{args.out}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"wrote {args.out}.md and {args.out}.json", file=sys.stderr)
    return 0 if report["groups"] else 1
