"""`medeval sweep`: evaluate the checkpoints of a training run and say whether any got worse.

    checkpoints (a list, or every checkpoint-* folder of a training output, optionally watched)
      -> units: checkpoint x few-shot seed [x language], one `lm_eval run` each, in the usual folders
         OUT/runs/<checkpoint>/seed<k>/<all|language>/, resumable (lm-eval's request cache), marked
         done by OUT/.../done.json written after lm-eval finished
      -> compare each checkpoint with its baseline (the base model, or the previous checkpoint)
      -> OUT/sweep.md + sweep.csv (checkpoint x language, verdict per row), OUT/trend_<metric>.png/.svg,
         OUT/compare/<checkpoint>.md/.json; exit 1 when any checkpoint regressed

A folder is evaluated only when its weights are complete (config.json, every safetensors shard of
the index whole, a tokenizer); one still being written is reported and left for a later pass.
`--shard i/N` evaluates every N-th unit (SLURM job arrays, `--slurm-array`), `--gather` only reads.
This module is imported when `medeval` builds its parser: heavy imports live inside the functions.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medtasks.common import EXIT_OK, EXIT_VERDICT, UsageError, parse_shard
from medtasks.store import atomic_write_bytes
from results.gate import Gate

CHECKPOINT = re.compile(r"checkpoint-(\d+)")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
BASE = "base"  # the base model's name in tables, figures and folders
DONE = "done.json"  # in a unit's folder, written (atomically) once its lm-eval run finished
SETTINGS = "sweep.json"  # what the units of an output folder were evaluated with
POLL = (1.0, 3600.0)  # bounds of --poll, seconds
MAX_IDLE = (1.0, 7 * 86400.0)  # bounds of --max-idle, seconds
EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------- which folders are complete models

def safetensors_problem(path: Path) -> str | None:
    """None when a safetensors file is whole (its size is 8 + header length + the end of its last tensor,
    as the format defines); else what is wrong: a file still being written is short."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else None
            if length is None or size < 8 + length:
                return f"{path.name}: header incomplete, {size} bytes (being written?)"
            header = json.loads(handle.read(length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except OSError as err:
        return f"{path.name} unreadable ({err.strerror})"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{path.name}: header unreadable (being written?)"
    if size != 8 + length + end:
        return f"{path.name} holds {size} of {8 + length + end} bytes (being written?)"
    return None


def model_problem(folder: Path, need_tokenizer: bool = True) -> str | None:
    """Why a folder is not (yet) a complete model to evaluate; None when it is: config.json, every
    safetensors shard named by the index (or model.safetensors) whole, and tokenizer files."""
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return "a LoRA adapter, not a model: merge it first (medeval merge-adapter)"
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no config.json yet"
    except (OSError, ValueError):
        return "config.json unreadable (being written?)"
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return f"{index.name} unreadable (being written?)"
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            return f"shards not written yet: {', '.join(missing)}"
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    elif any(folder.glob("*-of-*.safetensors")):
        return f"{index.name} not written yet"
    elif any(folder.glob("*.bin")):
        return "weights are pickles (*.bin): save them as safetensors"
    else:
        return "no weights yet"
    for shard in shards:
        problem = safetensors_problem(folder / shard)
        if problem:
            return problem
    if need_tokenizer and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return "no tokenizer files (pass --tokenizer DIR)"
    return None


@dataclass(frozen=True)
class Model:
    name: str  # label in tables and figures; its slug names the folder of its runs
    path: Path
    step: int | None = None  # training step: checkpoint-<step>, else trainer_state.json; None for the base


def checkpoint_step(folder: Path) -> int | None:
    match = CHECKPOINT.fullmatch(folder.name)
    if match:
        return int(match.group(1))
    try:
        return int(json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_run_folder(path: Path, watch: bool) -> bool:
    """A training output (its checkpoint-* folders are the models), not a model folder itself."""
    has_checkpoints = any(p.is_dir() and CHECKPOINT.fullmatch(p.name) for p in path.iterdir())
    return has_checkpoints or (watch and not (path / "config.json").is_file())


def discover(paths: list[Path], watch: bool, need_tokenizer: bool) -> tuple[list[Path], dict[Path, str]]:
    """(complete model folders, {folder: why it is not evaluated now}): the folders of `paths` in their
    order, the checkpoints of a training output by step."""
    ready, waiting = [], {}
    for path in paths:
        folders = [path]
        if is_run_folder(path, watch):
            folders = sorted((p for p in path.iterdir() if p.is_dir() and CHECKPOINT.fullmatch(p.name)),
                             key=checkpoint_step)
        for folder in folders:
            problem = model_problem(folder, need_tokenizer)
            if problem:
                waiting[folder] = problem
            else:
                ready.append(folder)
    return ready, waiting


def evaluated_and_gone(out: Path, paths: list[Path]) -> list[Path]:
    """Checkpoints of these training outputs that were evaluated here and then deleted (a Trainer's
    save_total_limit): their results stay in the table and the trend."""
    gone = set()
    for marker in out.glob(f"runs/*/seed*/*/{DONE}"):
        try:
            model = Path(json.loads(marker.read_text(encoding="utf-8"))["identity"]["model"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not model.exists() and model.parent in paths:
            gone.add(model)
    return sorted(gone)


def name_models(folders: list[Path], base: Path | None) -> list[Model]:
    """Models named by the shortest unique suffix of their path (checkpoint-500, or run_a/checkpoint-500),
    in step order when every checkpoint has a step, else in the order given; the base model first."""
    from results.load import display_names

    names = display_names([str(f) for f in folders], {})
    models = [Model(names[str(f)], f, checkpoint_step(f)) for f in folders]
    if all(m.step is not None for m in models):
        models.sort(key=lambda m: m.step)
    if any(m.name == BASE for m in models):
        raise UsageError(f"a checkpoint is named {BASE!r}, the base model's name in the sweep; rename its folder")
    return ([Model(BASE, base)] if base else []) + models


# ---------------------------------------------------------------- units of work

@dataclass(frozen=True)
class Settings:
    """What decides the numbers of a sweep's runs: an output folder holds runs of one Settings only."""
    tasks: str
    seeds: tuple[int, ...]
    limit: float | None
    backend: str
    per_language: bool
    base_model: str | None
    baseline: str  # "base" or "previous"


@dataclass(frozen=True)
class Unit:
    model: Model
    seed: int
    part: str  # "all", or the language of a --per-language run
    tasks: str


def plan_units(models: list[Model], settings: Settings) -> list[Unit]:
    """Every lm-eval run of the sweep, models first, then seeds, then languages."""
    from medtasks.cli_tasks import expand_tasks
    from medtasks.spec import task_name

    parts = {"all": settings.tasks}
    if settings.per_language:
        parts = {}
        for benchmark, language in expand_tasks(settings.tasks):
            parts.setdefault(language, []).append(task_name(benchmark, language))
        parts = {language: ",".join(names) for language, names in parts.items()}
    return [Unit(m, seed, part, tasks) for m in models for seed in settings.seeds for part, tasks in parts.items()]


def shard_of(units: list[Unit], shard: tuple[int, int]) -> list[Unit]:
    """Shard i of N: every N-th unit from the i-th (consecutive units are a model's seeds: they spread)."""
    i, n = shard
    return units[i - 1::n]


def unit_folder(out: Path, unit: Unit) -> Path:
    from results.plots import slug

    return out / "runs" / slug(unit.model.name) / f"seed{unit.seed}" / unit.part


def unit_identity(unit: Unit, settings: Settings) -> dict:
    from medtasks.cli_tasks import model_signature

    return {"model": str(unit.model.path), "signature": model_signature(str(unit.model.path)), "tasks": unit.tasks,
            "seed": unit.seed, "limit": settings.limit, "backend": settings.backend}


def is_done(out: Path, unit: Unit, settings: Settings) -> bool:
    """Finished, for this model as it is now: a folder that was evaluated and then deleted (a Trainer's
    save_total_limit) stays done; weights rewritten in place are evaluated again."""
    try:
        marker = json.loads((unit_folder(out, unit) / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    now = unit_identity(unit, settings)
    same = {k: marker.get("identity", {}).get(k) == v for k, v in now.items()}
    return all(v for k, v in same.items() if k != "signature") and (same["signature"] or not unit.model.path.exists())


def mark_done(out: Path, unit: Unit, settings: Settings, results: list[str]) -> None:
    """The unit's lm-eval run finished and wrote `results` (paths relative to its folder)."""
    atomic_write_bytes(unit_folder(out, unit) / DONE, json.dumps(
        {"identity": unit_identity(unit, settings), "name": unit.model.name, "step": unit.model.step,
         "results": results, "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        indent=1).encode() + b"\n")


@dataclass
class Runner:
    """How lm-eval is run (none of it changes the numbers beyond float noise, so not in Settings)."""
    out: Path
    settings: Settings
    batch_size: str = "1"
    device: str | None = None
    tokenizer: Path | None = None
    launcher: list[str] = field(default_factory=list)

    def run(self, unit: Unit) -> None:
        """One lm-eval run into the unit's folder, resuming from its request cache; done.json after it."""
        from medtasks.cli_tasks import REQUEST_CACHE, lm_eval_command, request_cache, run_lm_eval

        folder = unit_folder(self.out, unit)
        for stale in [*folder.rglob("results_*.json"), *folder.rglob("samples_*.jsonl")]:
            stale.unlink()  # a run killed after lm-eval wrote them: they are written again
        folder.mkdir(parents=True, exist_ok=True)
        path = str(unit.model.path)
        command = lm_eval_command(path, unit.tasks, folder, self.settings.limit, unit.seed, None, self.batch_size,
                                  self.device, self.settings.backend,
                                  [f"tokenizer={self.tokenizer}"] if self.tokenizer else (),
                                  request_cache(folder, self.settings.backend, path, self.device), self.launcher)
        print("running:", shlex.join(command), file=sys.stderr, flush=True)
        code = run_lm_eval(command)
        results = sorted(str(p.relative_to(folder)) for p in folder.rglob("results_*.json"))
        if code != 0 or not results:
            raise UsageError(f"lm-eval failed on {unit.model.name}, few-shot seed {unit.seed} (exit {code}; its "
                             f"output is above); {unit.model.name} is left unfinished, the checkpoints done are kept: "
                             "fix the cause and run the same command again")
        shutil.rmtree(folder / REQUEST_CACHE, ignore_errors=True)  # answered: the samples hold it all now
        mark_done(self.out, unit, self.settings, results)


# ---------------------------------------------------------------- the command

@dataclass
class Config:
    paths: list[Path]
    settings: Settings
    runner: Runner
    gate: Gate
    watch: bool = False
    poll: float = 60.0
    max_idle: float = 7200.0
    shard: tuple[int, int] | None = None
    gather_only: bool = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    from medtasks.cli_tasks import BACKENDS, DEFAULT_SUITE

    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="a training output folder (its checkpoint-* folders are evaluated) or model folders")
    p.add_argument("--tasks", default=DEFAULT_SUITE, help=f"tasks or groups, comma-separated (default {DEFAULT_SUITE})")
    p.add_argument("--seeds", nargs="+", type=int, metavar="K", help="few-shot seeds (default: the spec's 1 2 3)")
    p.add_argument("--limit", type=float, help="questions per task (testing only)")
    p.add_argument("--base-model", type=Path, metavar="DIR", help="the model the training started from, evaluated once")
    p.add_argument("--baseline", choices=("base", "previous"),
                   help="compare each checkpoint with the base model or with the previous checkpoint "
                   "(default: base with --base-model, else previous)")
    p.add_argument("-o", "--output", type=Path, default=Path("out/sweep"), help="sweep folder (default out/sweep)")
    p.add_argument("--backend", choices=BACKENDS, default="hf", help="lm-eval model type (default hf)")
    p.add_argument("--batch-size", default="1", help="lm-eval batch size (default 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:0 ... (default: lm-eval's choice)")
    p.add_argument("--tokenizer", type=Path, metavar="DIR", help="tokenizer for checkpoints saved without one")
    p.add_argument("--launcher", metavar="CMD",
                   help="command that starts lm-eval instead of python, for data parallel, e.g. "
                   "\"accelerate launch --multi_gpu --num_processes 8\"")
    p.add_argument("--per-language", action="store_true", help="one lm-eval run per language (finer units for --shard)")
    p.add_argument("--watch", action="store_true", help="keep watching the training output for new checkpoints")
    p.add_argument("--poll", type=float, default=60.0, help="--watch: seconds between looks (default 60)")
    p.add_argument("--max-idle", type=float, default=7200.0,
                   help="--watch: stop after this many seconds without a new checkpoint (default 7200)")
    p.add_argument("--shard", metavar="I/N", help="evaluate only shard I of N of the units (SLURM job arrays)")
    p.add_argument("--gather", action="store_true", help="evaluate nothing: table, figure and verdict from what is done")
    p.add_argument("--slurm-array", type=Path, metavar="FILE", help="write a SLURM job-array script for this sweep and exit")
    p.add_argument("--slurm-tasks", type=int, help="--slurm-array: array size (default: one per unit)")
    p.add_argument("--slurm-gpus", type=int, default=1, help="--slurm-array: GPUs per array task (default 1)")
    p.add_argument("--threshold", type=float, default=Gate.threshold, help="smallest drop that fails (default %(default)s)")
    p.add_argument("--alpha", type=float, default=Gate.alpha, help="significance level (default %(default)s)")
    p.add_argument("--bootstrap", type=int, default=Gate.n_boot, help="bootstrap resamples (default %(default)s)")
    p.add_argument("--bootstrap-seed", type=int, default=Gate.seed, help="bootstrap seed (default %(default)s)")
    p.add_argument("--metric", default=Gate.metric, help="acc | strict_acc (default %(default)s)")


def _bounded(name: str, value: float, bounds: tuple[float, float]) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise UsageError(f"--{name} {value:g}: must be between {bounds[0]:g} and {bounds[1]:g} seconds")
    return value


def configure(args) -> Config:
    """Every argument checked before anything is written or run."""
    from medtasks.cli_tasks import check_model, resolve_tasks
    from medtasks.spec import FEWSHOT_SEEDS

    gate = Gate(threshold=args.threshold, alpha=args.alpha, n_boot=args.bootstrap, seed=args.bootstrap_seed,
                metric=args.metric)
    paths = [p.expanduser().resolve() for p in args.paths]
    for path in paths:
        if not path.is_dir():
            raise UsageError(f"{path}: no such folder (give a training output folder or model folders)")
        if not args.watch and not is_run_folder(path, False) and not (path / "config.json").is_file():
            raise UsageError(f"{path}: neither a training output (no checkpoint-* folders) nor a model folder "
                             "(no config.json); --watch waits for checkpoints to appear")
    base = args.base_model.expanduser().resolve() if args.base_model else None
    if base:
        check_model(str(base))
    baseline = args.baseline or ("base" if base else "previous")
    if baseline == "base" and not base:
        raise UsageError("--baseline base needs --base-model DIR (the model the training started from)")
    seeds = tuple(args.seeds or FEWSHOT_SEEDS)
    if len(set(seeds)) != len(seeds) or min(seeds) < 1:
        raise UsageError(f"--seeds {' '.join(map(str, seeds))}: positive and distinct, e.g. 1 2 3")
    if args.tokenizer and not args.tokenizer.is_dir():
        raise UsageError(f"--tokenizer {args.tokenizer}: no such folder")
    launcher = shlex.split(args.launcher or "")
    if launcher and not shutil.which(launcher[0]):
        raise UsageError(f"--launcher: {launcher[0]!r} not found on PATH")
    if (args.watch, bool(args.shard), args.gather, bool(args.slurm_array)).count(True) > 1:
        raise UsageError("--watch, --shard, --gather and --slurm-array exclude each other")
    if args.slurm_tasks is not None and args.slurm_tasks < 1 or args.slurm_gpus < 1:
        raise UsageError("--slurm-tasks and --slurm-gpus must be at least 1")
    settings = Settings(resolve_tasks(args.tasks), seeds, args.limit, args.backend, args.per_language,
                        str(base) if base else None, baseline)
    runner = Runner(args.output.expanduser().resolve(), settings, args.batch_size, args.device,
                    args.tokenizer.expanduser().resolve() if args.tokenizer else None, launcher)
    return Config(paths, settings, runner, gate, args.watch, _bounded("poll", args.poll, POLL),
                  _bounded("max-idle", args.max_idle, MAX_IDLE), parse_shard(args.shard) if args.shard else None,
                  args.gather)


def check_settings(out: Path, settings: Settings, write: bool) -> None:
    """An output folder holds the runs of one Settings: another sweep there is refused."""
    path = out / SETTINGS
    now = json.loads(json.dumps(asdict(settings)))
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        differ = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v]
        if differ:
            raise UsageError(f"--output {out}: holds a sweep with other settings ({'; '.join(differ)}); "
                             "use another --output, or the same settings to resume it")
    elif write:
        atomic_write_bytes(path, (json.dumps(now, indent=1) + "\n").encode())


def models_now(config: Config) -> tuple[list[Model], dict[Path, str]]:
    """The models of the sweep as the folders are now (base first), and the folders not evaluated now."""
    ready, waiting = discover(config.paths, config.watch, config.runner.tokenizer is None)
    base = Path(config.settings.base_model) if config.settings.base_model else None
    return name_models(ready + evaluated_and_gone(config.runner.out, config.paths), base), waiting


def run_sweep(args) -> int:
    from medtasks.cli_tasks import check_data, expand_tasks

    config = configure(args)
    out, settings = config.runner.out, config.settings
    check_settings(out, settings, write=False)
    if args.slurm_array:
        from results.sweep_report import write_slurm_array

        return write_slurm_array(args.slurm_array, config, args.slurm_tasks, args.slurm_gpus)
    if config.gather_only:
        return finish(config, interrupted=False)
    for seed in settings.seeds:  # data present (or imported) before any model loads
        check_data(expand_tasks(settings.tasks), seed)
    check_settings(out, settings, write=True)
    try:
        evaluate(config)
    except KeyboardInterrupt:
        print("\nmedeval sweep: interrupted; the runs done are kept, the same command resumes", file=sys.stderr)
        return finish(config, interrupted=True)
    if config.shard:
        return EXIT_OK
    return finish(config, interrupted=False)


def evaluate(config: Config) -> None:
    """Evaluate what is not done, once, or (--watch) as checkpoints appear, until the training ended
    and all is evaluated, or --max-idle seconds passed without a new checkpoint."""
    out, settings = config.runner.out, config.settings
    said: dict[Path, str] = {}
    last_new = time.monotonic()
    while True:
        models, waiting = models_now(config)
        for folder, problem in waiting.items():
            if said.get(folder) != problem:
                print(f"{folder.name}: not evaluated now: {problem}", file=sys.stderr, flush=True)
                said[folder] = problem
        units = plan_units(models, settings)
        todo = [u for u in (shard_of(units, config.shard) if config.shard else units) if not is_done(out, u, settings)]
        for n, unit in enumerate(todo, 1):
            print(f"[{n}/{len(todo)}] {unit.model.name}, few-shot seed {unit.seed}"
                  + (f", {unit.part}" if unit.part != "all" else ""), file=sys.stderr, flush=True)
            config.runner.run(unit)
        if todo:
            last_new = time.monotonic()
            if config.watch:
                report(config)
        if not config.watch:
            return
        ended = [p for p in config.paths if model_problem(p, False) is None]  # the final model is saved
        if ended and not waiting:
            print(f"training ended ({ended[0]} holds the final model) and every checkpoint is evaluated",
                  file=sys.stderr)
            return
        if time.monotonic() - last_new >= config.max_idle:
            print(f"no new checkpoint for {config.max_idle:g} s: stopping (--max-idle)", file=sys.stderr)
            return
        time.sleep(config.poll)


def report(config: Config, interrupted: bool = False):
    from results.sweep_report import gather, write_report

    models, waiting = models_now(config)
    result = gather(config, models, waiting)
    for path in write_report(result, config.runner.out, interrupted):
        print(path, file=sys.stderr)
    return result


def finish(config: Config, interrupted: bool) -> int:
    result = report(config, interrupted)
    sys.stdout.write(result.markdown)
    if interrupted:
        return EXIT_INTERRUPTED
    if config.gather_only and result.pending:
        raise UsageError(f"--gather: not evaluated yet: {', '.join(result.pending)}; run the sweep (or its "
                         "array tasks) first; the table above shows what is done")
    return EXIT_VERDICT if result.regressed else EXIT_OK
