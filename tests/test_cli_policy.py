"""Issue 13's error policy for every registered `medeval` subcommand, each run in its own process:
an unknown option and a bad value or a missing input exit 2 with one line on stderr (`medeval
<command>: ...` or argparse's own line), no traceback and nothing written; `medeval --help` lists
every command without importing a heavy library; a missing optional extra names the pip extra.

The commands are read from the parser (medeval.commands entry points), so a new command without a
row in BAD fails here until it gets one."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import metadata
from pathlib import Path

import pytest

from medtasks.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
MEDEVAL = [sys.executable, "-m", "medtasks.cli"]
# Commands that exist since the first release: the enumeration must find at least these.
CORE = {"import", "tasks", "model", "eval", "merge", "quantize", "variants", "results-table", "leaderboard",
        "calibration", "plots", "compare", "publish", "corpus", "pretrain", "sft", "contamination",
        "merge-adapter", "translate", "translation-report"}
HEAVY = ("torch", "transformers", "lm_eval", "mergekit", "datasets", "matplotlib")
UNKNOWN = "--no-such-option"


@dataclass(frozen=True)
class Bad:
    """A bad invocation of one command and the words its one line must hold. In argv and says,
    {missing} is a path that does not exist, {empty} an empty folder, {model} a folder whose
    config.json is `{}`, {adapter} one whose adapter_config.json is `{}`, {out} an output path that must
    still not exist afterwards."""
    argv: tuple[str, ...]
    says: str
    env: dict = field(default_factory=dict)


BAD = {
    "import": [Bad(("--data", "{missing}"), "data folder {missing} does not exist"),
               Bad(("--hub", "--benchmarks", "nosuch"), "--benchmarks: unknown benchmark 'nosuch'")],
    "tasks": [Bad((), "MEDEVAL_SPEC_PATH names {missing}", env={"MEDEVAL_SPEC_PATH": "{missing}"}),
              Bad(("surplus",), "unrecognized arguments: surplus")],
    "model": [Bad(("nosuch",), "argument action: invalid choice: 'nosuch'")],
    "eval": [Bad(("--model-path", "{missing}"), "--model-path {missing}: no such folder, and not a hub id"),
             Bad(("--model-path", "{empty}"), "--model-path {empty}: not a model folder (no config.json in it)"),
             Bad(("--tasks", "nosuchtask"), "--tasks: unknown task or group nosuchtask"),
             Bad(("--fewshot-seed", "7"), "argument --fewshot-seed: '7': one of 1, 2, 3"),
             Bad(("--limit", "-1"), "argument --limit: '-1': a whole number of questions >= 1"),
             Bad(("--batch-size", "0"), "argument --batch-size: '0': a whole number >= 1, or auto")],
    "merge": [Bad(("--config", "{missing}", "--out", "{out}"), "No such file or directory: {missing}"),
              Bad(("--preset", "ties", "--base", "{missing}", "--model", "{missing}", "--out", "{out}"),
                  "{missing}: no such model folder, and not a hub id"),
              Bad(("--preset", "ties", "--out", "{out}"), "--preset needs --base and --model"),
              Bad(("--preset", "ties", "--param", "density", "--out", "{out}"), "argument --param: expected KEY=VALUE")],
    "quantize": [Bad(("{missing}", "--method", "bnb-nf4", "--out", "{out}"), "{missing}: not a model directory"),
                 Bad(("{model}", "--method", "gptq-int4", "--group-size", "0", "--out", "{out}"),
                     "--group-size 0: expected a positive size")],
    "variants": [Bad(("--original", "{missing}", "--out", "{out}"), "{missing}: not a model directory")],
    "results-table": [Bad(("{missing}", "-o", "{out}"), "{missing}: no such file or folder")],
    "leaderboard": [Bad(("{missing}",), "{missing}: no such file or folder"),
                    Bad(("--metric", "nosuch", "{empty}"), "unknown metric 'nosuch'")],
    "calibration": [Bad(("{missing}",), "{missing}: no such file or folder")],
    "plots": [Bad(("{missing}", "-o", "{out}"), "{missing}: no such file or folder")],
    "compare": [Bad(("{missing}", "{empty}"), "{missing}: no such file or folder"),
                Bad(("--threshold", "-1", "{empty}", "{empty}"), "--threshold must be in [0, 1), got -1.0")],
    "publish": [Bad(("{missing}", "--model", "m", "-o", "{out}"), "{missing}: no such file or folder")],
    "sweep": [Bad(("{missing}", "-o", "{out}"), "{missing}: no such folder"),
              Bad(("{empty}", "-o", "{out}"), "{empty}: neither a training output")],
    "submit": [Bad(("{missing}", "-o", "{out}"), "{missing}: no such file or folder")],
    "verify": [Bad(("{missing}",), "{missing}: not a submission bundle")],
    "site": [Bad(("{missing}", "-o", "{out}"), "{missing}: no such file or folder")],
    "corpus": [Bad(("{missing}", "-o", "{out}"), "package {missing} does not exist")],
    "pretrain": [Bad(("--config", "{missing}"), "No such file or directory: {missing}"),
                 Bad(("--set", "nokey"), "--set, field 'nokey': expected key=value")],
    "sft": [Bad(("--config", "{missing}"), "No such file or directory: {missing}"),
            Bad(("--set", "nosuchfield=1", "--print-config"), "--set, field 'nosuchfield': unknown field")],
    "contamination": [Bad(("--tasks", "medqa_en", "-o", "{out}", "{missing}"), "corpus input {missing} does not exist"),
                      Bad(("--tasks", "medqa_en", "--shard", "0/0", "-o", "{out}", "{empty}"),
                          "--shard 0/0: expected i/N with 1 <= i <= N")],
    "merge-adapter": [Bad(("{missing}", "-o", "{out}"), "{missing} is not a LoRA adapter folder"),
                      Bad(("{model}", "-o", "{out}"), "{model} is not a LoRA adapter folder"),
                      Bad(("{adapter}", "-o", "{out}"), "{adapter}/adapter_config.json names no base model")],
    "translate": [Bad(("--languages", "xx"), "--languages: unknown language 'xx'"),
                  Bad(("--backend", "nosuch"), "unknown translation backend 'nosuch'")],
    "translation-report": [Bad(("--store", "{missing}", "--out", "{out}"), "--store {missing}: no such store folder"),
                           Bad(("--roundtrip", "nosuch", "--out", "{out}"), "unknown translation backend 'nosuch'")],
}


def commands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def required_argv(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for what a command requires, so that its parse fails on nothing but UNKNOWN."""
    argv: list[str] = []
    for group in parser._mutually_exclusive_groups:
        if group.required:
            first = group._group_actions[0]
            argv += [first.option_strings[0]] + ([] if first.nargs == 0 else ["x"])
    for action in parser._actions:
        value = next(iter(action.choices)) if action.choices else "x"
        if not action.option_strings:
            if action.nargs not in ("*", "?"):
                argv += [value] * (action.nargs if isinstance(action.nargs, int) else 1)
        elif action.required:
            argv += [action.option_strings[0]] + ([] if action.nargs == 0 else [value])
    return argv


def run_in(cwd: Path, argv, env=None, command=MEDEVAL) -> subprocess.CompletedProcess:
    """One `medeval` process working in `cwd` (so default outputs land there) with a store inside it."""
    environment = {**os.environ, "MEDTASKS_STORE": str(cwd / "store"), "HF_HUB_OFFLINE": "1", **(env or {})}
    environment.pop("MEDTASKS_DATA", None)
    return subprocess.run([*command, *argv], cwd=cwd, capture_output=True, text=True, env=environment, timeout=300)


def fixtures_in(folder: Path) -> dict[str, str]:
    """The placeholders of a Bad, made inside `folder` (which is also the working directory)."""
    (folder / "empty").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "model" / "config.json").write_text("{}")
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    return {"missing": str(folder / "missing"), "empty": str(folder / "empty"), "model": str(folder / "model"),
            "adapter": str(folder / "adapter"), "out": str(folder / "out")}


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def invocations() -> list[tuple[str, str, Bad]]:
    """(test id, command, bad invocation) for every registered command: UNKNOWN, then its BAD rows."""
    rows = []
    for name, parser in commands().items():
        rows.append((f"{name} {UNKNOWN}", name, Bad((*required_argv(parser), UNKNOWN),
                                                     f"unrecognized arguments: {UNKNOWN}")))
        rows += [(f"{name} {' '.join(bad.argv)}".strip() + f" [{i}]", name, bad)
                 for i, bad in enumerate(BAD.get(name, []))]
    return rows


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple]:
    """Every invocation, run two at a time: {test id: (process, placeholders, folder, tree before)}."""
    root = tmp_path_factory.mktemp("cli_policy")

    def one(index_row):
        index, (test_id, command, bad) = index_row
        cwd = root / f"run{index}"
        places = fixtures_in(cwd)
        before = tree(cwd)
        proc = run_in(cwd, [command, *(arg.format(**places) for arg in bad.argv)],
                      {key: value.format(**places) for key, value in bad.env.items()})
        return test_id, (proc, places, cwd, before)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, enumerate(invocations())))


def test_every_command_is_found_and_has_bad_invocations():
    found = commands()
    assert CORE <= set(found), f"not registered: {sorted(CORE - set(found))}"
    assert set(BAD) <= set(found), f"BAD names commands that are gone: {sorted(set(BAD) - set(found))}"
    untested = sorted(name for name in found if not BAD.get(name))
    assert not untested, f"add a bad invocation to BAD for: {untested}"


@pytest.mark.parametrize("test_id, command, bad", invocations(), ids=[row[0] for row in invocations()])
def test_a_bad_invocation_exits_2_with_one_line_and_writes_nothing(test_id, command, bad, outcomes):
    proc, places, cwd, before = outcomes[test_id]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith((f"medeval {command}: ", "medeval: ")), lines[0]
    assert bad.says.format(**places) in lines[0]
    assert proc.stdout == ""
    assert tree(cwd) == before  # nothing written: no output, no store, no default out/ folder


def test_help_lists_every_command_without_importing_heavy_libraries():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", *MEDEVAL[1:], "--help"], capture_output=True, text=True,
                          timeout=120)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = set(re.findall(r"^ {4}(\S+)", proc.stdout, re.M))
    assert set(commands()) <= listed, f"missing from --help: {sorted(set(commands()) - listed)}"
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "medtasks" in imported  # the import log was read
    assert not imported & set(HEAVY), f"medeval --help imports {sorted(imported & set(HEAVY))}"
    print(f"medeval --help: {seconds:.2f} s wall (with -X importtime)")


# At least one command per pip extra, run with the extra's module blocked (None in sys.modules makes its
# import fail). plots loads runs (with a progress bar) only after the extra is found.
BLOCKED = [
    ("translation", "deep_translator", ("translate", "--backend", "google", "--benchmarks", "medqa",
                                        "--languages", "fr")),
    ("results", "jinja2", ("site", "{runs}", "-o", "{out}")),
    ("results", "matplotlib", ("plots", "{runs}", "-o", "{out}")),
    ("merge", "mergekit", ("merge", "--preset", "ties", "--base", "{empty}", "--model", "{empty}", "--skip-checks",
                           "--out", "{out}")),
    ("quant", "bitsandbytes", ("quantize", "{model}", "--method", "bnb-int8", "--out", "{out}")),
    ("training", "peft", ("merge-adapter", "{adapter}", "--base", "{model}", "-o", "{out}")),
]
WITHOUT = "import sys; sys.modules[sys.argv[1]] = None; from medtasks.cli import main; sys.exit(main(sys.argv[2:]))"


def test_every_extra_has_a_blocked_case():
    extras = set(metadata("medeval").get_all("Provides-Extra")) - {"dev", "all"}
    assert extras == {extra for extra, _, _ in BLOCKED}


@pytest.mark.parametrize("extra, module, argv", BLOCKED, ids=[f"{e}-{a[0]}" for e, _, a in BLOCKED])
def test_a_missing_extra_names_it_in_one_line(extra, module, argv, tmp_path):
    from synthetic import Question, write_run

    places = fixtures_in(tmp_path / "cwd")
    write_run(tmp_path / "runs", "m", {"medqa_en": [Question("q1", True), Question("q2", False)]})
    places["runs"] = str(tmp_path / "runs")
    before = tree(tmp_path / "cwd")
    proc = run_in(tmp_path / "cwd", [module, *(a.format(**places) for a in argv)],
                  command=[sys.executable, "-c", WITHOUT])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(f"medeval {argv[0]}: ")
    assert f"needs {module}: pip install 'medeval[{extra}]'" in proc.stderr
    assert tree(tmp_path / "cwd") == before
