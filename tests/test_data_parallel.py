"""Data parallel evaluation with lm-eval's own engine (`accelerate launch -m lm_eval`), on this CPU machine.

What happens, checked here:
- `accelerate launch --cpu --num_processes 2` starts ONE process (accelerate's simple launcher: a
  multi-process CPU launch needs --multi_gpu with ACCELERATE_USE_CPU=true, or an MPI hostfile), so a
  "two-process" run that way is a one-process run and equal to one trivially.
- Two real processes (`ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2`, gloo) are
  not enough either: lm-eval 0.4.13 sets rank and world size only when torch counts more than one GPU
  (lm_eval/models/huggingface.py, `elif gpus > 1`); on CPU each process runs every document as rank 0.
- So the test runs lm-eval's multi-GPU path itself on two CPU processes: the probe
  (tests/lm_eval_probe, MEDEVAL_PROBE_DEVICES=1) makes torch report one device per process. Then each
  rank gets every other document (lm-eval strides them), rank 0 gathers, and the per-question
  log-likelihoods equal a one-process run's, in BioMistral's 3-shot regime.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval_run import load_run
from probing import events, loglikelihoods, probe_env, request_keys


TASK, LIMIT = "mmlu_anatomy_en", 8
ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(port: int) -> list[str]:
    return [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]


def lm_eval_args(model: Path, backend: str, out: Path) -> list[str]:
    return ["-m", "lm_eval", "run", "--model", backend, "--model_args", f"pretrained={model}", "--tasks", TASK,
            "--limit", str(LIMIT), "--batch_size", "1", "--log_samples", "--output_path", str(out),
            "--metadata", '{"fewshot_seed": 1}']


def run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_accelerate_cpu_flag_starts_a_single_process(tmp_path):
    script = tmp_path / "who.py"
    script.write_text("from accelerate import PartialState\ns = PartialState()\n"
                      "print('process', s.process_index, 'of', s.num_processes, s.distributed_type)\n")
    done = subprocess.run([ACCELERATE, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(script)],
                          capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.splitlines() == ["process 0 of 1 DistributedType.NO"]


@pytest.fixture(scope="module")
def one_process(tiny_llama, shared_data, tmp_path_factory):
    """backend -> (results, samples, request keys asked of the model) of a one-process run, run once."""
    runs = {}

    def reference(backend: str):
        if backend not in runs:
            out = tmp_path_factory.mktemp(f"one_{backend}")
            run([sys.executable, *lm_eval_args(tiny_llama, backend, out)], probe_env(out / "probe.jsonl", shared_data))
            results, samples = load_run(out)
            runs[backend] = (results, samples, [k for e in events(out / "probe.jsonl", "requests") for k in e["keys"]])
        return runs[backend]

    return reference


def check_split_and_equality(record: Path, out: Path, reference) -> None:
    """Two ranks, each asked every other document's requests, together all of them once; rank 0 wrote one
    results file whose per-question log-likelihoods equal the one-process run's."""
    ref_results, ref_samples, ref_asked = reference
    requests = events(record, "requests")
    assert sorted((e["rank"], e["world_size"]) for e in requests) == [(0, 2), (1, 2)]
    assert len({e["pid"] for e in requests}) == 2
    every = request_keys(ref_samples[TASK])
    per_rank = {e["rank"]: e["keys"] for e in requests}
    docs = {rank: sorted({every[k] for k in keys}) for rank, keys in per_rank.items()}
    assert docs == {0: list(range(0, LIMIT, 2)), 1: list(range(1, LIMIT, 2))}  # strided, half each
    assert sorted(per_rank[0] + per_rank[1]) == sorted(ref_asked) == sorted(every)  # all, once
    assert len(list(out.rglob("results_*.json"))) == 1
    results, samples = load_run(out)
    assert results["n-shot"][TASK] == 3 and results["config"]["model_args"]["pretrained"]
    assert loglikelihoods(samples[TASK]) == loglikelihoods(ref_samples[TASK])
    for metric in ("acc,none", "strict_acc,none", "ece,none", "brier,none"):
        assert results["results"][TASK][metric] == ref_results["results"][TASK][metric]


def test_hf_prefix_on_two_processes_splits_the_documents_and_matches_one_process(
        tiny_llama, shared_data, one_process, tmp_path):
    out, record = tmp_path / "out", tmp_path / "probe.jsonl"
    env = probe_env(record, shared_data, ACCELERATE_USE_CPU="true", MEDEVAL_PROBE_DEVICES="1")
    run([*two_processes(free_port()), *lm_eval_args(tiny_llama, "hf-prefix", out)], env)
    check_split_and_equality(record, out, one_process("hf-prefix"))


def test_a_sweep_with_a_data_parallel_launcher_runs_hf_on_two_processes_and_matches_one(
        tiny_llama, shared_data, one_process, tmp_path):
    run_folder, out, record = tmp_path / "run", tmp_path / "sweep", tmp_path / "probe.jsonl"
    shutil.copytree(tiny_llama, run_folder / "checkpoint-1")
    env = probe_env(record, shared_data, ACCELERATE_USE_CPU="true", MEDEVAL_PROBE_DEVICES="1")
    run([sys.executable, "-m", "medtasks.cli", "sweep", str(run_folder), "--tasks", TASK, "--seeds", "1",
         "--limit", str(LIMIT), "--backend", "hf", "-o", str(out),
         "--launcher", " ".join(two_processes(free_port()))], env)
    check_split_and_equality(record, out / "runs" / "checkpoint-1" / "seed1" / "all", one_process("hf"))
    assert "first checkpoint: no baseline" in (out / "sweep.md").read_text()
