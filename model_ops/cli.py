"""`medeval merge`, `medeval quantize`, `medeval variants`: the model_ops commands.

Import-light on purpose: torch, mergekit, bitsandbytes, gptqmodel and gguf are imported inside
the command functions, so `medeval --help` stays fast.
"""
from __future__ import annotations

import argparse
import json

from medtasks.common import EXIT_OK, UsageError
from model_ops.presets import PRESETS
from model_ops.quantize import METHODS


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)  # 0.3, true, [0, 1] ...
    except json.JSONDecodeError:
        value = raw
    return key, value


def cmd_merge(args) -> int:
    from model_ops.merge import load_config_file, merge
    from model_ops.presets import build_config

    if bool(args.preset) == bool(args.config):
        raise UsageError("give either --preset (with --base and --model) or --config FILE")
    if args.config:
        config = load_config_file(args.config)
    elif not (args.base and args.model):
        raise UsageError("--preset needs --base and --model")
    else:
        config = build_config(args.preset, args.base, args.model, args.dtype, **dict(args.param or []))
    out = merge(config, args.out, seed=None if args.no_seed else args.seed, preset=args.preset,
                shard_size=args.shard_size, check=not args.skip_checks)
    print(f"merged model written to {out} (card: {out}/README.md)")
    return EXIT_OK


def cmd_quantize(args) -> int:
    from model_ops.quantize import eval_model_args, quantize

    if args.group_size != -1 and args.group_size < 1:
        raise UsageError(f"--group-size {args.group_size}: expected a positive size (e.g. 128) or -1 (per row)")
    if args.calibration_limit is not None and args.calibration_limit < 1:
        raise UsageError(f"--calibration-limit {args.calibration_limit}: expected at least 1")
    out = quantize(args.model, args.out, args.method, calibration_file=args.calibration,
                   calibration_limit=args.calibration_limit, group_size=args.group_size)
    print(f"{args.method} model written to {out}\n"
          f"evaluate: lm_eval --model hf --model_args {eval_model_args(out)} --tasks medqa_en")
    return EXIT_OK


def cmd_variants(args) -> int:
    from model_ops.variants import build_table, parse_variant, write_table

    original = parse_variant(args.original if "=" in args.original else f"original={args.original}")
    variants = [parse_variant(v) for v in args.variant]
    prompts = None
    if args.prompts:
        with open(args.prompts, encoding="utf-8") as fh:
            prompts = [line.strip() for line in fh if line.strip()]
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else []
    if args.repeats < 1 or args.new_tokens < 1:
        raise UsageError("--repeats and --new-tokens must be at least 1")
    rows = build_table(original, variants, tasks=tasks, limit=args.limit, prompts=prompts,
                       new_tokens=args.new_tokens, device=args.device, include_path=args.include_path,
                       repeats=args.repeats)
    settings = {"tasks": tasks, "limit": args.limit, "new_tokens": args.new_tokens, "device": args.device,
                "repeats": args.repeats, "prompts": prompts or "built-in"}
    md, js = write_table(rows, args.out, settings)
    print(md.read_text(encoding="utf-8"))
    print(f"written: {md} and {js}")
    return EXIT_OK


def register(subparsers) -> None:
    merge = subparsers.add_parser(
        "merge", help="merge two models with a BioMistral preset or a mergekit YAML (needs medeval[merge])",
        description="Merge checkpoints through mergekit. Presets (BioMistral's): "
        + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
        + ". Inputs are checked for compatible architecture, tensor shapes and vocabulary before any "
        "heavy work. The output directory holds safetensors, tokenizer, config and a model card.")
    merge.add_argument("--preset", choices=sorted(PRESETS), help="named BioMistral recipe")
    merge.add_argument("--config", help="a mergekit YAML, used as is (instead of --preset)")
    merge.add_argument("--base", help="base model (preset): local dir or hub id[@revision]")
    merge.add_argument("--model", help="domain model merged into the base (preset)")
    merge.add_argument("--out", required=True, help="output model directory")
    merge.add_argument("--dtype", default="bfloat16", help="merge dtype (BioMistral: bfloat16)")
    merge.add_argument("--param", action="append", type=_parse_param, metavar="KEY=VALUE",
                       help="override a preset parameter, e.g. density=0.3, weight=0.7, t=0.5")
    merge.add_argument("--seed", type=int, default=0, help="random seed, recorded in the card (default 0)")
    merge.add_argument("--no-seed", action="store_true", help="run unseeded (DARE then differs every run)")
    merge.add_argument("--shard-size", default="5B", help="output shard size, e.g. 1B, 500M (default 5B)")
    merge.add_argument("--skip-checks", action="store_true", help="skip the compatibility checks (not advised)")
    merge.set_defaults(func=cmd_merge)

    quant = subparsers.add_parser(
        "quantize", help="quantize a model directory (bitsandbytes, GPTQ, AWQ, GGUF)",
        description="Quantize a model into a loadable directory with a model card. Methods: "
        + "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())
        + ". GPTQ and AWQ calibrate on --calibration text (default: a small built-in medical sample).")
    quant.add_argument("model", help="source model directory (safetensors)")
    quant.add_argument("--method", required=True, choices=list(METHODS))
    quant.add_argument("--out", required=True, help="output directory")
    quant.add_argument("--calibration", help="GPTQ/AWQ samples: .txt (blank-line separated), .jsonl {text}, .json list")
    quant.add_argument("--calibration-limit", type=int, help="use at most this many samples")
    quant.add_argument("--group-size", type=int, default=128, help="GPTQ/AWQ group size (default 128, as BioMistral)")
    quant.set_defaults(func=cmd_quantize)

    var = subparsers.add_parser(
        "variants", help="table of a model and its variants: size, memory, speed, accuracy (Markdown + JSON)",
        description="Generate BioMistral's quantization table: for the original and each variant, size on "
        "disk, memory while running (peak resident growth over loading and generating; weights in memory), "
        "tokens per second on the same prompts (median and min-max of --repeats passes after a warm-up) and "
        "acc / strict_acc per task on --tasks, each relative to the original. Each model is measured in its "
        "own process, one after another; the Markdown states how.")
    var.add_argument("--original", required=True, help="the original model directory (NAME=DIR allowed)")
    var.add_argument("--variant", action="append", default=[], help="NAME=DIR or DIR (repeat)")
    var.add_argument("--tasks", default="", help="comma-separated lm-eval tasks, e.g. medqa_en,pubmedqa_en")
    var.add_argument("--limit", type=int, help="questions per task (quick runs)")
    var.add_argument("--include-path", help="extra lm-eval task folder, if the tasks are not installed")
    var.add_argument("--prompts", help="file with one generation prompt per line (default: built-in)")
    var.add_argument("--new-tokens", type=int, default=32, help="tokens generated per prompt (default 32)")
    var.add_argument("--repeats", type=int, default=3,
                     help="timed generation passes after one warm-up; the table shows their median and min-max "
                          "(default 3)")
    var.add_argument("--device", default="cpu", help="cpu or cuda")
    var.add_argument("--out", default="variants", help="output prefix: writes PREFIX.md and PREFIX.json")
    var.set_defaults(func=cmd_variants)
