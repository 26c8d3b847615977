"""`medeval sweep` (results/sweep.py, results/sweep_report.py): which folders are complete models, units
and shards, the table and verdicts on runs with known outcomes, the SLURM array script, and end to end
on hand-made checkpoints of a tiny model with the real data: a planted regression is flagged, the other
checkpoints are not, a folder still being written is left out, and a re-run evaluates nothing."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic import Question, write_run
from tiny import build_tiny_model

from medtasks import cli, cli_tasks
from medtasks.common import EXIT_VERDICT
from results import sweep
from results.sweep_report import sweep_words

ROOT = Path(__file__).resolve().parent.parent
TASKS = "pubmedqa_en,mmlu_anatomy_en,mmlu_anatomy_fr"  # two languages; PubMedQA's gold is mostly A (yes)
LIMIT = "30"


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """This environment's launchers (accelerate, medeval) on PATH, as for a shell that activated it."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def letter_model(folder: Path, letter: str, seed: int, step: int | None = None) -> Path:
    """A tiny Llama that answers `letter` to every question: one residual dimension holds a constant that
    no layer writes to, and only the letter's output row reads it. Other weights are random (seed)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    build_tiny_model(folder, "llama", seed=seed)
    token = AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(letter)
    weights = load_file(folder / "model.safetensors")
    weights["model.embed_tokens.weight"][:, 0] = 10.0
    for name, tensor in weights.items():
        if name.endswith(("self_attn.o_proj.weight", "mlp.down_proj.weight")):
            tensor[0, :] = 0.0
    weights["lm_head.weight"][:, 0] = 0.0
    weights["lm_head.weight"][token, 0] = 5.0
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 1024  # lm-eval keeps the last 1024 tokens: the question and its answer
    (folder / "config.json").write_text(json.dumps(config))
    if step is not None:  # what an HF Trainer checkpoint also holds
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def being_written(source: Path, folder: Path) -> Path:
    """A checkpoint caught while its weights are being written: config and tokenizer there, weights cut."""
    shutil.copytree(source, folder)
    data = (source / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    return folder


# ---------------------------------------------------------------- complete models

def test_a_complete_model_passes_and_every_incomplete_state_is_named(tiny_llama, tmp_path):
    assert sweep.model_problem(tiny_llama) is None
    cut = being_written(tiny_llama, tmp_path / "cut")
    size = (tiny_llama / "model.safetensors").stat().st_size
    assert sweep.model_problem(cut) == f"model.safetensors holds {size // 2} of {size} bytes (being written?)"
    (cut / "model.safetensors").write_bytes(b"\x10")
    assert sweep.model_problem(cut) == "model.safetensors: header incomplete, 1 bytes (being written?)"
    (cut / "model.safetensors").unlink()
    assert sweep.model_problem(cut) == "no weights yet"
    (cut / "pytorch_model.bin").write_bytes(b"x")
    assert sweep.model_problem(cut) == "weights are pickles (*.bin): save them as safetensors"
    (cut / "config.json").write_text('{"model_type": ')
    assert sweep.model_problem(cut) == "config.json unreadable (being written?)"
    (cut / "config.json").unlink()
    assert sweep.model_problem(cut) == "no config.json yet"
    (cut / "adapter_config.json").write_text("{}")
    assert "LoRA adapter" in sweep.model_problem(cut)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_llama / name, bare / name)
    assert sweep.model_problem(bare) == "no tokenizer files (pass --tokenizer DIR)"
    assert sweep.model_problem(bare, need_tokenizer=False) is None


def test_sharded_weights_need_every_shard_of_the_index_whole(tiny_llama, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "sharded"
    shutil.copytree(tiny_llama, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[:5], "model-00002-of-00002.safetensors": names[5:]}
    for shard, keys in shards.items():
        save_file({k: weights[k] for k in keys}, folder / shard)
    assert sweep.model_problem(folder) == "model.safetensors.index.json not written yet"
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert sweep.model_problem(folder) is None
    second = folder / "model-00002-of-00002.safetensors"
    data = second.read_bytes()
    second.write_bytes(data[:-10])
    assert sweep.model_problem(folder) == f"{second.name} holds {len(data) - 10} of {len(data)} bytes (being written?)"
    second.unlink()
    assert sweep.model_problem(folder) == f"shards not written yet: {second.name}"


def test_checkpoints_of_a_training_output_come_in_step_order_and_unfinished_ones_wait(tiny_llama, tmp_path):
    run = tmp_path / "run"
    for step in (100, 20, 3):
        shutil.copytree(tiny_llama, run / f"checkpoint-{step}")
    being_written(tiny_llama, run / "checkpoint-120")
    (run / "logs").mkdir()
    ready, waiting = sweep.discover([run], watch=False, need_tokenizer=True)
    assert [p.name for p in ready] == ["checkpoint-3", "checkpoint-20", "checkpoint-100"]
    assert list(waiting) == [run / "checkpoint-120"] and "being written" in waiting[run / "checkpoint-120"]
    models = sweep.name_models(ready, base=tiny_llama)
    assert [(m.name, m.step) for m in models] == [("base", None), ("checkpoint-3", 3), ("checkpoint-20", 20),
                                                  ("checkpoint-100", 100)]
    assert sweep.is_run_folder(tmp_path / "run", watch=False) and not sweep.is_run_folder(tiny_llama, watch=False)


def test_units_cover_models_seeds_and_languages_and_shards_split_them_exactly(tiny_llama):
    from medtasks.spec import parse_task

    models = [sweep.Model("base", tiny_llama), sweep.Model("checkpoint-1", tiny_llama, 1)]
    settings = sweep.Settings(TASKS, (1, 2, 3), None, "hf", True, None, "previous")
    units = sweep.plan_units(models, settings)
    assert len(units) == 2 * 3 * 2  # models x seeds x languages (en, fr)
    for unit in units:
        assert {parse_task(t)[1] for t in unit.tasks.split(",")} == {unit.part}
    assert {u.tasks for u in units if u.part == "en"} == {"pubmedqa_en,mmlu_anatomy_en"}
    shards = [sweep.shard_of(units, (i, 5)) for i in range(1, 6)]
    assert sorted(map(id, sum(shards, []))) == sorted(map(id, units))  # each unit in exactly one shard
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    whole = sweep.plan_units(models, sweep.Settings(TASKS, (1,), None, "hf", False, None, "previous"))
    assert [(u.model.name, u.part, u.tasks) for u in whole] == [("base", "all", TASKS), ("checkpoint-1", "all", TASKS)]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1", "a/b", "2/0"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(cli_tasks.UsageError, match=r"--shard"):
        sweep.parse_shard(text)


@pytest.mark.parametrize("argv, named", [
    (["{run}", "--seeds", "1", "1"], "--seeds 1 1"),
    (["{run}", "--baseline", "base"], "--baseline base needs --base-model"),
    (["{run}", "--poll", "0"], "--poll 0: must be between 1 and 3600 seconds"),
    (["{run}", "--max-idle", "1e9"], "--max-idle"),
    (["{run}", "--watch", "--shard", "1/2"], "exclude each other"),
    (["{run}", "--shard", "3/2"], "--shard 3/2"),
    (["{run}", "--launcher", "no-such-launcher --num_processes 2"], "'no-such-launcher' not found on PATH"),
    (["{run}", "--tasks", "medqa_xx"], "--tasks: unknown task or group medqa_xx"),
    (["{run}", "--threshold", "2"], "--threshold must be in [0, 1)"),
    (["{tmp}/nothing"], "nothing: no such folder"),
    (["{tmp}"], "neither a training output"),
    (["{run}", "--base-model", "{tmp}"], "not a model folder"),
])
def test_bad_arguments_are_one_line_and_leave_nothing(tiny_llama, tmp_path, capsys, argv, named):
    run = tmp_path / "run"
    shutil.copytree(tiny_llama, run / "checkpoint-1")
    out = tmp_path / "out"
    words = [a.replace("{run}", str(run)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(["sweep", *words, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medeval sweep: ") and "\n" not in err and named in err, err
    assert not out.exists()


# ---------------------------------------------------------------- table and verdicts on known outcomes

def synthetic_sweep(tmp_path: Path, tiny_llama: Path, outcomes: dict, seeds=(1, 2), baseline="previous"):
    """A sweep folder whose units hold lm-eval runs with known per-question outcomes, marked done;
    outcomes: {checkpoint step or "base": {task: [correct?]}}."""
    run = tmp_path / "run"
    for key in outcomes:
        if key != "base":
            shutil.copytree(tiny_llama, run / f"checkpoint-{key}")
    base = tiny_llama if "base" in outcomes else None
    settings = sweep.Settings(",".join(next(iter(outcomes.values()))), tuple(seeds), None, "hf", False,
                              str(base) if base else None, baseline)
    out = tmp_path / "sweep"
    models = sweep.name_models(sweep.discover([run], False, True)[0], base)
    for unit in sweep.plan_units(models, settings):
        key = unit.model.step if unit.model.step is not None else "base"
        tasks = {task: [Question(f"q{i}", ok, 0.9, ok) for i, ok in enumerate(answers)]
                 for task, answers in outcomes[key].items()}
        folder = sweep.unit_folder(out, unit)
        write_run(folder, str(unit.model.path), tasks, fewshot_seed=unit.seed)
        sweep.mark_done(out, unit, settings, ["results"])
    (out / sweep.SETTINGS).write_text(json.dumps(dataclasses.asdict(settings)))
    argv = ["sweep", str(run), "--tasks", settings.tasks, "--seeds", *map(str, seeds), "-o", str(out),
            "--baseline", baseline, "--bootstrap", "2000"] + (["--base-model", str(base)] if base else [])
    return run, out, argv


def test_gather_flags_the_drop_and_writes_the_table_and_the_trend(tiny_llama, tmp_path, capsys):
    good = {"mmlu_anatomy_en": [True] * 30 + [False] * 10, "mmlu_anatomy_fr": [True] * 20 + [False] * 20}
    worse = {"mmlu_anatomy_en": [False] * 40, "mmlu_anatomy_fr": [True] * 20 + [False] * 20}
    outcomes = {"base": good, 10: good, 20: worse, 30: good}
    run, out, argv = synthetic_sweep(tmp_path, tiny_llama, outcomes, baseline="base")
    assert cli.main([*argv, "--gather"]) == EXIT_VERDICT
    printed = capsys.readouterr().out
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert list(rows) == ["base", "checkpoint-10", "checkpoint-20", "checkpoint-30"]
    assert [rows[c]["verdict"] for c in rows] == ["baseline", "ok", "REGRESSION", "ok"]
    assert float(rows["checkpoint-20"]["en"]) == 0.0 and float(rows["checkpoint-10"]["en"]) == 0.75
    assert float(rows["checkpoint-20"]["Avg"]) == pytest.approx((0.0 + 0.5) / 2)
    assert rows["checkpoint-20"]["en_regression"] == "True" and rows["checkpoint-20"]["fr_regression"] == "False"
    assert rows["checkpoint-20"]["regressions"].startswith("mmlu_anatomy_en:-0.750000")
    assert ("| checkpoint-20 | 20 | 0.0000 ± 0.0000 ▼ | 0.5000 ± 0.0000 | 0.2500 ± 0.0000 ▼ | base | **REGRESSION** | "
            "mmlu_anatomy_en (-0.7500), all tasks (-0.3750) |") in printed
    assert (out / "sweep.md").read_text() == printed
    comparison = json.loads((out / "compare" / "checkpoint-20.json").read_text())
    assert comparison["regression"] and comparison["base"] == "base" and comparison["seeds"] == [1, 2]
    svg = (out / "trend_acc.svg").read_text()
    assert (out / "trend_acc.png").stat().st_size > 0 and "training step" in svg and "regression" in svg


def test_previous_baseline_compares_neighbours_and_says_what_is_pending(tiny_llama, tmp_path, capsys):
    good = {"mmlu_anatomy_en": [True] * 30 + [False] * 10}
    worse = {"mmlu_anatomy_en": [True] * 5 + [False] * 35}
    run, out, argv = synthetic_sweep(tmp_path, tiny_llama, {10: good, 20: worse, 30: worse}, seeds=(1,))
    being_written(tiny_llama, run / "checkpoint-40")
    assert cli.main([*argv, "--gather"]) == EXIT_VERDICT  # a folder being written is reported, not waited for
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert [(rows[c]["baseline"], rows[c]["verdict"]) for c in rows] == [
        ("", "first checkpoint: no baseline"), ("checkpoint-10", "REGRESSION"), ("checkpoint-20", "ok"),
        ("", "not evaluated: model.safetensors holds "
             f"{(run / 'checkpoint-40' / 'model.safetensors').stat().st_size} of "
             f"{(tiny_llama / 'model.safetensors').stat().st_size} bytes (being written?)")]
    shutil.copytree(tiny_llama, run / "checkpoint-50")  # complete, not evaluated: the gather refuses a verdict
    capsys.readouterr()
    assert cli.main([*argv, "--gather"]) == 2
    assert "--gather: not evaluated yet: checkpoint-50; run the sweep" in capsys.readouterr().err
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert (rows["checkpoint-50"]["baseline"], rows["checkpoint-50"]["verdict"]) == ("checkpoint-30", "pending")


def test_an_output_folder_holds_one_sweep(tiny_llama, tmp_path, capsys):
    good = {"mmlu_anatomy_en": [True] * 4}
    run, out, argv = synthetic_sweep(tmp_path, tiny_llama, {10: good}, seeds=(1,))
    before = sorted(out.rglob("*"))
    assert cli.main([*argv[:-2], "--seeds", "2", "--gather"]) == 2
    err = capsys.readouterr().err
    assert "holds a sweep with other settings (seeds [1] -> [2])" in err and sorted(out.rglob("*")) == before


# ---------------------------------------------------------------- the SLURM job array

def test_the_generated_slurm_array_runs_every_unit_once_and_its_commands_parse(tiny_llama, tmp_path, capsys):
    run = tmp_path / "run"
    for step in (10, 20, 30):
        shutil.copytree(tiny_llama, run / f"checkpoint-{step}")
    script, out = tmp_path / "sweep.sbatch", tmp_path / "out"
    argv = ["sweep", str(run), "--tasks", TASKS, "--seeds", "1", "2", "--per-language", "--base-model",
            str(tiny_llama), "--limit", "5", "-o", str(out), "--slurm-array", str(script), "--slurm-gpus", "4"]
    assert cli.main(argv) == 0
    assert not out.exists()  # generating the script runs nothing
    text = script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash" and lines[1] == f"# sbatch {script}"
    assert "@" not in text  # every placeholder filled
    count = int(re.search(r"^#SBATCH --array=1-(\d+)$", text, re.M).group(1))
    assert count == 4 * 2 * 2 and "#SBATCH --gres=gpu:4" in text  # (base + 3 checkpoints) x seeds x languages
    parser = cli.build_parser()
    body = text.split("\nfi\n", 1)[1]
    sweep_line = shlex.split(body.replace("$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT", "2/16")
                             .replace("$LAUNCHER", "accelerate launch --multi_gpu --num_processes 4"))
    assert sweep_line[:2] == ["medeval", "sweep"]
    array_args = parser.parse_args(sweep_line[1:])
    gather = shlex.split(re.search(r"^#   (medeval sweep .*)$", text, re.M).group(1))
    gather_args = parser.parse_args(gather[1:])
    given = parser.parse_args(argv)
    for args in (array_args, gather_args):
        assert sweep_words(sweep.configure(args)) == sweep_words(sweep.configure(given))  # the same sweep
    assert array_args.shard == "2/16" and array_args.launcher.split()[:2] == ["accelerate", "launch"]
    assert gather_args.gather and not gather_args.shard
    # every unit is evaluated by exactly one array task
    units = sweep.plan_units(sweep.models_now(sweep.configure(given))[0], sweep.configure(given).settings)
    picked = [u for i in range(1, count + 1) for u in sweep.shard_of(units, (i, count))]
    assert sorted(map(id, picked)) == sorted(map(id, units)) and len(units) == count


# ---------------------------------------------------------------- end to end (lm-eval, real data)

@pytest.fixture(scope="module")
def training_run(tmp_path_factory) -> Path:
    """checkpoint-10 and -20 answer A (PubMedQA's most frequent answer, yes), checkpoint-30 was made worse
    on purpose (it answers C, maybe), checkpoint-40 is still being written."""
    run = tmp_path_factory.mktemp("training") / "run"
    for step, letter in ((10, "A"), (20, "A"), (30, "C")):
        letter_model(run / f"checkpoint-{step}", letter, seed=step, step=step)
    being_written(run / "checkpoint-20", run / "checkpoint-40")
    return run


@pytest.fixture(scope="module")
def swept(training_run, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("swept") / "sweep"
    argv = ["sweep", str(training_run), "--tasks", TASKS, "--seeds", "1", "--limit", LIMIT, "--device", "cpu",
            "-o", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDTASKS_DATA", str(shared_data))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("OMP_NUM_THREADS", "1")  # tiny models: torch's thread pool only spins on shared cores
        code = cli.main(argv)
    return argv, out, code


def test_sweep_flags_the_planted_regression_and_only_it(swept, training_run):
    _, out, code = swept
    assert code == EXIT_VERDICT
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert [(c, rows[c]["step"], rows[c]["baseline"], rows[c]["verdict"]) for c in rows][:3] == [
        ("checkpoint-10", "10", "", "first checkpoint: no baseline"),
        ("checkpoint-20", "20", "checkpoint-10", "ok"),
        ("checkpoint-30", "30", "checkpoint-20", "REGRESSION")]
    assert rows["checkpoint-40"]["verdict"].startswith("not evaluated: model.safetensors holds")
    assert not (out / "runs" / "checkpoint-40").exists()
    assert "pubmedqa_en" in rows["checkpoint-30"]["regressions"] and rows["checkpoint-30"]["en_regression"] == "True"


def test_sweep_table_holds_lm_evals_own_numbers(swept):
    _, out, _ = swept
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    for name in ("checkpoint-10", "checkpoint-20", "checkpoint-30"):
        (results_file,) = (out / "runs" / name / "seed1" / "all").rglob("results_*.json")
        acc = {t: v["acc,none"] for t, v in json.loads(results_file.read_text())["results"].items()}
        assert float(rows[name]["en"]) == pytest.approx((acc["pubmedqa_en"] + acc["mmlu_anatomy_en"]) / 2, abs=1e-12)
        assert float(rows[name]["fr"]) == pytest.approx(acc["mmlu_anatomy_fr"], abs=1e-12)
        assert rows[name]["en_limited"] == "True"  # --limit 30: marked as a subset
    assert float(rows["checkpoint-10"]["en"]) == float(rows["checkpoint-20"]["en"])  # both always answer A


def test_sweep_writes_the_trend_figure_and_the_comparisons(swept):
    _, out, _ = swept
    svg = (out / "trend_acc.svg").read_text()
    assert "training step" in svg and "regression" in svg and (out / "trend_acc.png").stat().st_size > 0
    assert json.loads((out / "compare" / "checkpoint-30.json").read_text())["regression"] is True
    assert json.loads((out / "compare" / "checkpoint-20.json").read_text())["regression"] is False
    markers = sorted(p.relative_to(out).as_posix() for p in out.rglob(sweep.DONE))
    assert markers == [f"runs/checkpoint-{s}/seed1/all/done.json" for s in (10, 20, 30)]
    assert not list(out.rglob(cli_tasks.REQUEST_CACHE))  # caches of finished runs are removed


def test_a_rerun_evaluates_nothing_and_gives_the_same_verdict(swept, monkeypatch, capsys):
    argv, out, code = swept
    table = (out / "sweep.csv").read_text()

    def refuse(command):
        raise AssertionError(f"lm-eval started again: {command}")

    monkeypatch.setattr(cli_tasks, "run_lm_eval", refuse)
    assert cli.main(argv) == code
    assert (out / "sweep.csv").read_text() == table
    assert "[1/" not in capsys.readouterr().err


def test_ctrl_c_stops_with_a_summary_of_what_is_done(tiny_llama, tmp_path, shared_data, monkeypatch, capsys):
    good = {"mmlu_anatomy_en": [True] * 4}
    run, out, argv = synthetic_sweep(tmp_path, tiny_llama, {10: good}, seeds=(1,))
    shutil.copytree(tiny_llama, run / "checkpoint-20")
    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))

    def interrupted(self, unit):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.Runner, "run", interrupted)
    assert cli.main(argv) == 130
    captured = capsys.readouterr()
    assert "interrupted; the runs done are kept, the same command resumes" in captured.err
    assert "| checkpoint-20 | 20 | – | – | checkpoint-10 | pending |" in captured.out
    assert "_interrupted: the rows marked pending were not evaluated yet._" in (out / "sweep.md").read_text()


# ---------------------------------------------------------------- slow: watch, kill -9, the SLURM array run

def sweep_command(run: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "medtasks.cli", "sweep", str(run), "--tasks", "pubmedqa_en", "--seeds", "1",
            "--limit", LIMIT, "--device", "cpu", "-o", str(out), *extra]


def wait_for(condition, what: str, process=None, seconds: float = 900) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert process is None or process.poll() is None, f"the sweep ended (exit {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_watch_evaluates_checkpoints_as_they_appear_and_stops_when_training_ends(tmp_path, shared_data):
    from probing import probe_env

    run, out, log = tmp_path / "run", tmp_path / "out", tmp_path / "stderr.txt"
    letter_model(run / "checkpoint-10", "A", seed=10, step=10)
    env = probe_env(tmp_path / "probe.jsonl", shared_data)
    with open(log, "w") as stderr:
        process = subprocess.Popen(sweep_command(run, out, "--watch", "--poll", "1", "--max-idle", "900"), env=env,
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        done = out / "runs" / "checkpoint-{}" / "seed1" / "all" / sweep.DONE
        wait_for(lambda: Path(str(done).format(10)).exists(), "checkpoint-10 evaluated", process)
        staged = letter_model(tmp_path / "staged", "C", seed=20, step=20)  # made worse on purpose
        being_written(staged, run / "checkpoint-20")
        wait_for(lambda: "checkpoint-20: not evaluated now: model.safetensors holds" in log.read_text(),
                 "the unfinished checkpoint-20 reported", process)
        shutil.copy(staged / "model.safetensors", run / "checkpoint-20" / "model.safetensors")
        wait_for(lambda: Path(str(done).format(20)).exists(), "checkpoint-20 evaluated", process)
        for item in staged.iterdir():  # the Trainer saves the final model: the watch ends
            shutil.copy(item, run / item.name)
        stdout, _ = process.communicate(timeout=600)
    assert process.returncode == EXIT_VERDICT, log.read_text()[-3000:]
    assert "training ended" in log.read_text()
    assert "| checkpoint-20 | 20 |" in stdout and "**REGRESSION**" in stdout


@pytest.mark.slow
def test_a_sweep_killed_with_kill_9_resumes_without_recomputing(tmp_path, shared_data):
    import signal
    import sqlite3

    from probing import events, probe_env

    run, out = tmp_path / "run", tmp_path / "out"
    for step, letter in ((10, "A"), (20, "A")):
        letter_model(run / f"checkpoint-{step}", letter, seed=step, step=step)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    def cached() -> int:
        dbs = list(out.glob("runs/checkpoint-10/seed1/all/.request_cache/*/requests_rank0.db"))
        try:
            with sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True) as connection:
                return connection.execute("SELECT COUNT(*) FROM unnamed").fetchone()[0]
        except (IndexError, sqlite3.Error):
            return 0

    process = subprocess.Popen(sweep_command(run, out), env=probe_env(first, shared_data, MEDEVAL_PROBE_DELAY="0.3"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: cached() >= 12, "requests of checkpoint-10 cached", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole job, as a node failure or a preemption does
        process.wait()
    answered = cached()
    done = subprocess.run(sweep_command(run, out), env=probe_env(second, shared_data), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    asked = [len(e["keys"]) for e in events(second, "requests")]
    assert asked == [3 * int(LIMIT) - answered, 3 * int(LIMIT)]  # checkpoint-10: the rest only; checkpoint-20: all
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert rows["checkpoint-20"]["verdict"] == "ok" and rows["checkpoint-10"]["en"] == rows["checkpoint-20"]["en"]


@pytest.mark.slow
def test_the_slurm_array_run_task_by_task_then_gathered_flags_the_regression(training_run, tmp_path, shared_data):
    from probing import probe_env

    base = letter_model(tmp_path / "base", "A", seed=0)
    script, out = tmp_path / "sweep.sbatch", tmp_path / "out"
    argv = ["sweep", str(training_run), "--tasks", "pubmedqa_en", "--seeds", "1", "--limit", LIMIT, "--device", "cpu",
            "--base-model", str(base), "-o", str(out), "--slurm-array", str(script), "--slurm-tasks", "2"]
    assert cli.main(argv) == 0
    env = probe_env(tmp_path / "probe.jsonl", shared_data, SLURM_ARRAY_TASK_COUNT="2", SLURM_GPUS_ON_NODE="1")
    for task in ("1", "2"):
        done = subprocess.run(["bash", str(script)], env={**env, "SLURM_ARRAY_TASK_ID": task}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(out.rglob(sweep.DONE))) == 4  # base + three complete checkpoints, each by one array task
    gather = shlex.split(re.search(r"^#   (medeval sweep .*)$", script.read_text(), re.M).group(1))
    gathered = subprocess.run(gather, env=env, capture_output=True, text=True, timeout=600)
    assert gathered.returncode == EXIT_VERDICT, gathered.stderr[-3000:]
    rows = {r["checkpoint"]: r for r in csv.DictReader((out / "sweep.csv").open())}
    assert [(c, rows[c]["baseline"], rows[c]["verdict"]) for c in rows][:4] == [
        ("base", "", "baseline"), ("checkpoint-10", "base", "ok"), ("checkpoint-20", "base", "ok"),
        ("checkpoint-30", "base", "REGRESSION")]


def test_the_lm_eval_command_of_a_unit_and_a_failed_run(tiny_llama, tmp_path, shared_data, monkeypatch, capsys):
    """What a unit runs (resumable, the tokenizer, the launcher for data parallel), and a failing lm-eval:
    one line naming the checkpoint, exit 2, the unit not marked done."""
    run = tmp_path / "run"
    shutil.copytree(tiny_llama, run / "checkpoint-7")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (run / "checkpoint-7" / name).unlink()
    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    commands = []

    def failing(command):
        commands.append(command)
        return 1

    monkeypatch.setattr(cli_tasks, "run_lm_eval", failing)
    out = tmp_path / "out"
    launcher = "accelerate launch --multi_gpu --num_processes 2"
    assert cli.main(["sweep", str(run), "--tasks", "mmlu_anatomy_en", "--seeds", "2", "--tokenizer", str(tiny_llama),
                     "--backend", "hf-prefix", "--launcher", launcher, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "medeval sweep: lm-eval failed on checkpoint-7, few-shot seed 2 (exit 1; its output is above); checkpoint-7 "
        "is left unfinished, the checkpoints done are kept: fix the cause and run the same command again")
    (command,) = commands
    folder = out / "runs" / "checkpoint-7" / "seed2" / "all"
    assert command[:7] == [*launcher.split(), "-m", "lm_eval"]
    assert command[command.index("--model") + 1] == "hf-prefix"
    assert command[command.index("--model_args") + 1] == f"pretrained={run / 'checkpoint-7'},tokenizer={tiny_llama}"
    assert command[command.index("--output_path") + 1] == str(folder)
    assert command[command.index("--metadata") + 1] == '{"fewshot_seed": 2}'
    assert Path(command[command.index("--use_cache") + 1]).parent.parent == folder / cli_tasks.REQUEST_CACHE
    assert not list(out.rglob(sweep.DONE))
