"""`medeval corpus | pretrain | sft | merge-adapter`: the training package's commands.

Import-light: torch, transformers, TRL and PEFT load inside the command functions. Errors follow
the project's policy: a bad argument or file raises a UsageError, which `medeval` prints as one line
(exit 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

RECIPE_HELP = ("Without --config the defaults are BioMistral's recipe; --set key=value overrides any field "
               "(repeatable; values are YAML: --set max_steps=10 --set dtype=float32). "
               "Shipped configs: training/configs/.")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "corpus", help="PubMed Central OA bulk packages -> licence-filtered chunked JSONL",
        description="Stream PMC Open Access bulk packages (tar.gz of JATS XML) and their file lists, keep the "
                    "allowed licences, convert each article to clean text (title, abstract, body; no references, "
                    "tables, formulas or markup), cut it into chunks of at most --max-words words and write "
                    "part-NNNNN.jsonl files plus manifest.json into --output. Rerunning the same command resumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("packages", nargs="+", type=Path, help="bulk packages, e.g. oa_comm_xml.PMC000xxxxxx.baseline.*.tar.gz")
    p.add_argument("--output", "-o", type=Path, required=True, help="corpus folder (created; resumed if present)")
    p.add_argument("--file-list", type=Path, action="append",
                   help="file list CSV(s) with the License column (default: <package>.filelist.csv beside each package)")
    p.add_argument("--license", action="append", dest="licenses",
                   help="allowed licence, repeatable (default: CC0, CC BY, CC BY-SA, CC BY-ND, as BioMistral)")
    p.add_argument("--max-words", type=int, default=1000, help="chunk size limit in words")
    p.add_argument("--part-chunks", type=int, default=20000, help="chunks per output part (resume granularity)")
    p.add_argument("--keep-retracted", action="store_true", help="keep articles the file list marks as retracted")
    p.add_argument("--tokenizer", help="also count tokens with this tokenizer (model folder or hub id)")
    p.add_argument("--decontaminate-against", metavar="TASKS",
                   help="task, group or tag names, comma-separated: chunks sharing an n-gram with one of their "
                        "test questions are dropped (or masked), each recorded with its reason in the dropped files")
    p.add_argument("--decontaminate-mode", choices=("drop", "mask"),
                   help="drop the chunk (default), or cut the overlapping text out of it")
    _ngram_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_corpus)

    for name, helptext in (("pretrain", "continued pretraining (HF Trainer) on a prepared corpus"),
                           ("sft", "LoRA SFT on a benchmark's train split from the store (TRL + PEFT)")):
        p = subparsers.add_parser(name, help=helptext, description=f"{helptext}. {RECIPE_HELP} "
                                  "Multi-GPU: accelerate launch --config_file training/configs/accelerate/<cfg>.yaml "
                                  f"-m medtasks.cli {name} --config ...")
        p.add_argument("--config", type=Path, help="recipe YAML (see training/configs/)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
        p.add_argument("--resume", metavar="auto|CHECKPOINT",
                       help="resume: 'auto' = latest checkpoint in output_dir, or a checkpoint folder")
        p.add_argument("--print-config", action="store_true", help="validate and print the resolved config, then exit")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "sft":
            p.add_argument("--all-benchmarks", action="store_true",
                           help="train the four adapters (medqa, medqa5, medmcqa, pubmedqa) into output_dir/<benchmark>")
        p.set_defaults(func=_recipe, recipe=name)

    p = subparsers.add_parser(
        "contamination", help="which test questions of which tasks appear in a corpus (n-gram overlap)",
        description="Find the test questions of --tasks whose question, options or context (each on its own) "
                    "share an n-gram with a corpus: `medeval corpus` folders, JSONL or plain-text files, "
                    "compressed or not (.gz .bz2 .xz .zst). One streaming pass over processes; --shard i/N "
                    "scans a share of the files, --merge joins the shards. Writes report.json + report.md; "
                    "exit status 1 when a question is contaminated. Report format: training/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("corpus", nargs="*", type=Path, help="corpus folders or files (none with --merge)")
    p.add_argument("--tasks", help="task, group or tag names, comma-separated (e.g. medqa_en,pubmedqa_en or "
                                   "medeval_en); their test split is read from the store")
    p.add_argument("--output", "-o", type=Path, default=Path("out/contamination"), help="report folder")
    p.add_argument("--shard", help="scan shard i of N (e.g. 2/8): writes shard-i-of-N.json for --merge")
    p.add_argument("--merge", nargs="+", type=Path, metavar="REPORT", help="merge the shard reports 1..N of a scan")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text")
    p.add_argument("--samples", type=int, default=3, help="corpus locations kept per contaminated question")
    p.add_argument("--workers", type=int, help="processes (default: every CPU this process may use)")
    p.add_argument("--range-mb", type=float, default=256, help="uncompressed files above this are cut into "
                                                               "ranges of this size for the workers")
    _ngram_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_contamination)

    p = subparsers.add_parser(
        "merge-adapter", help="merge a LoRA adapter into its base model (full model folder)",
        description="Load the base model, apply the adapter, merge the LoRA weights and save a normal "
                    "safetensors model folder (with tokenizer) that lm_eval loads with pretrained=DIR.")
    p.add_argument("adapter", type=Path, help="adapter folder written by `medeval sft`")
    p.add_argument("--output", "-o", type=Path, required=True)
    p.add_argument("--base", help="base model (default: the one recorded in adapter_config.json)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.set_defaults(func=_merge)


def _ngram_arguments(p) -> None:
    p.add_argument("--store", type=Path, help="store holding the test questions (default: $MEDTASKS_STORE or "
                                              "~/.cache/medtasks/store)")
    p.add_argument("--ngram", type=int, default=13, help="n-gram size in words")
    p.add_argument("--min-tokens", type=int, default=8, help="a shorter field is skipped (counted as too short); "
                                                             "a field from here to --ngram is matched whole")
    p.add_argument("--char-ngram", type=int, default=20, help="n-gram size in characters, for text written "
                                                               "without spaces (Chinese, Japanese)")
    p.add_argument("--char-min", type=int, default=12, help="--min-tokens for character n-grams")


def _settings(args):
    from training.ngrams import Settings

    return Settings(args.ngram, args.min_tokens, args.char_ngram, args.char_min)


def _test_set(args, tasks: str):
    from medtasks.store import default_store
    from training.contamination import TestSet, parse_tasks

    return TestSet.load(args.store or default_store(), parse_tasks([tasks]), _settings(args))


def _contamination(args) -> int:
    from medtasks.common import EXIT_OK, EXIT_VERDICT, UsageError, parse_shard
    from training import contamination as cont
    from training import contamination_report as rep
    from training.textfiles import discover, shard_files

    if args.merge:
        if args.corpus or args.shard:
            raise UsageError("--merge takes shard reports only: no corpus and no --shard")
        report, name = rep.merge_reports(rep.read_reports(args.merge), args.merge), "report"
    else:
        if not args.corpus or not args.tasks:
            raise UsageError("give the corpus and --tasks (or --merge shard reports)")
        for name, value, low in (("--samples", args.samples, 0), ("--workers", 1 if args.workers is None else args.workers, 1),
                                 ("--range-mb", args.range_mb, 1e-3)):
            if value < low:
                raise UsageError(f"{name} {value}: must be >= {low}")
        shard = parse_shard(args.shard) if args.shard else None
        files = discover(args.corpus)
        files = shard_files(files, *shard) if shard else files
        test = _test_set(args, args.tasks)
        found, corpus = cont.scan(test, files, text_field=args.text_field, samples=args.samples,
                                  workers=args.workers or cont.default_workers(), range_bytes=int(args.range_mb * (1 << 20)),
                                  progress_bar=not args.quiet)
        corpus = {"inputs": [str(c) for c in args.corpus], **corpus, "shard": args.shard}
        settings = {**test.index.settings.to_dict(), "normalization": cont.NORMALIZATION,
                    "text_field": args.text_field, "samples": args.samples}
        report = cont.build_report(test, found, corpus, settings)
        name = f"shard-{shard[0]}-of-{shard[1]}" if shard else "report"
    paths = rep.write_report(report, args.output, name, markdown=not args.shard)
    for task_name, task in report["tasks"].items():
        print(f"{task_name}: {task['contaminated']} of {task['questions']} test questions contaminated")
    print(f"report: {', '.join(map(str, paths))}")
    contaminated = any(task["contaminated"] for task in report["tasks"].values())
    return EXIT_VERDICT if contaminated and not args.shard else EXIT_OK


def _corpus(args) -> int:
    from medtasks.common import UsageError
    from training.corpus import DEFAULT_LICENSES, Options, prepare_corpus

    tasks = tuple(t.strip() for t in (args.decontaminate_against or "").split(",") if t.strip())
    if args.decontaminate_mode and not tasks:
        raise UsageError("--decontaminate-mode needs --decontaminate-against TASKS")
    options = Options(licenses=tuple(args.licenses or DEFAULT_LICENSES), max_words=args.max_words,
                      part_chunks=args.part_chunks, keep_retracted=args.keep_retracted, tokenizer=args.tokenizer,
                      decontaminate_against=tasks, decontaminate_mode=args.decontaminate_mode or "drop",
                      ngrams=_settings(args), store=str(args.store) if args.store else None)
    manifest = prepare_corpus(args.packages, args.output, options, args.file_list, progress_bar=not args.quiet)
    dropped = ", ".join(f"{k} {v}" for k, v in manifest["dropped"].items()) or "none"
    tokens = f", {manifest['tokens']} tokens" if manifest["tokens"] is not None else ""
    print(f"{args.output}: {manifest['articles_read']} articles read, {manifest['articles_kept']} kept "
          f"(dropped: {dropped}); {manifest['chunks']} chunks, {manifest['words']} words{tokens}")
    return 0


def _recipe(args) -> int:
    from training import config as cfg

    overrides = list(args.set)
    config = cfg.load(args.config, overrides) if args.config else cfg.build(args.recipe, cfg.parse_overrides(overrides), "--set")
    if type(config) is not cfg.RECIPES[args.recipe]:
        raise cfg.ConfigError(str(args.config), None, "recipe", f"not a {args.recipe} recipe; use `medeval "
                              f"{'pretrain' if args.recipe == 'sft' else 'sft'}` for it")
    if args.print_config:
        print(cfg.to_yaml(config), end="")
        return 0
    if args.recipe == "pretrain":
        from training.pretrain import run_pretrain

        run_pretrain(config, args.resume, progress_bar=not args.quiet)
        print(f"model saved to {config.output_dir}")
        return 0
    from dataclasses import replace

    from training.sft import ADAPTER_BENCHMARKS, run_sft

    runs = [config]
    if getattr(args, "all_benchmarks", False):
        runs = [replace(config, benchmark=b, output_dir=str(Path(config.output_dir) / b)) for b in ADAPTER_BENCHMARKS]
    for run in runs:
        run_sft(run, args.resume, progress_bar=not args.quiet)
        print(f"adapter saved to {run.output_dir}")
    return 0


def _merge(args) -> int:
    from training.sft import merge_adapter

    out = merge_adapter(args.adapter, args.output, args.base, args.dtype)
    print(f"merged model saved to {out}")
    return 0
