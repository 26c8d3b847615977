"""Resumable evaluation: `medeval eval --resume` killed with kill -9 part-way and run again answers every
request the first run answered from lm-eval's request cache (SQLite, one file per rank, written request
by request as the model answers) and asks the model only the rest; the results equal an uninterrupted
run's. For both backends, hf and hf-prefix. The probe (tests/lm_eval_probe) counts the requests that
reach the model and its forward passes; a slow model (a pause per forward pass) lets the test stop the
first run part-way."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lm_eval_run import load_run
from probing import events, loglikelihoods, probe_env, request_keys

TASK, LIMIT = "mmlu_anatomy_en", 8  # 3-shot, 4 letters: 32 requests, one forward pass per question
TOL = 1e-4  # hf-prefix vs hf (medtasks/README_prefix_lm.md)


def medeval_eval(model: Path, out: Path, backend: str, resume: bool = True) -> list[str]:
    return [sys.executable, "-m", "medtasks.cli", "eval", "--model-path", str(model), "--tasks", TASK,
            "--limit", str(LIMIT), "--device", "cpu", "--backend", backend, "--output", str(out),
            *(["--resume"] if resume else [])]


def cached_keys(out: Path) -> set[str]:
    (db,) = out.glob(".request_cache/*/requests_rank0.db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return {key for (key,) in connection.execute("SELECT key FROM unnamed")}


def cached_count(out: Path) -> int:
    try:
        return len(cached_keys(out))
    except (ValueError, sqlite3.Error):  # not created yet, or being created
        return 0


@pytest.fixture(scope="module")
def reference(tiny_llama, shared_data, tmp_path_factory):
    """An uninterrupted run (hf, no cache): the numbers a resumed run must give."""
    out = tmp_path_factory.mktemp("reference")
    env = probe_env(out / "probe.jsonl", shared_data)
    subprocess.run(medeval_eval(tiny_llama, out, "hf", resume=False), env=env, check=True, capture_output=True,
                   timeout=900)
    return load_run(out)


def kill_part_way(command: list[str], env: dict, out: Path, record: Path) -> set[str]:
    """Start the run, kill -9 the medeval process once some requests are cached; lm-eval, its child, dies
    with it. Returns the cached request keys."""
    process = subprocess.Popen(command, env={**env, "MEDEVAL_PROBE_DELAY": "0.5"}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while cached_count(out) < 8 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None, "the run ended before it could be killed part-way"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        (child,) = {e["pid"] for e in events(record, "requests")}
        for _ in range(100):  # lm-eval was started to die with medeval (PR_SET_PDEATHSIG)
            if not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"lm-eval (pid {child}) outlived the killed medeval")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return cached_keys(out)


def resume(model, backend, tmp_path, shared_data):
    """(every request key of the run -> doc id, keys cached by the killed run, requests events, forward
    events and output of the resumed run)."""
    out = tmp_path / "out"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    cached = kill_part_way(medeval_eval(model, out, backend), probe_env(first, shared_data), out, first)
    done = subprocess.run(medeval_eval(model, out, backend), env=probe_env(second, shared_data),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Cached requests: {len(cached)}, Requests remaining: {4 * LIMIT - len(cached)}" in done.stderr
    return cached, events(second, "requests"), events(second, "forward"), load_run(out)


def asked(requests: list[dict]) -> list[str]:
    return [key for e in requests for key in e["keys"]]


def test_hf_resumes_without_recomputing_and_gives_identical_results(tiny_llama, shared_data, reference, tmp_path):
    cached, requests, forwards, (results, samples) = resume(tiny_llama, "hf", tmp_path, shared_data)
    every = request_keys(reference[1][TASK])
    assert len(every) == 4 * LIMIT and cached < set(every) and 8 <= len(cached) < len(every)  # part-way
    assert sorted(asked(requests)) == sorted(set(every) - cached)  # the model was asked only the rest
    remaining = {every[key] for key in set(every) - cached}
    assert len(forwards) == len(remaining)  # one forward pass per question not (fully) answered before
    assert loglikelihoods(samples[TASK]) == loglikelihoods(reference[1][TASK])  # bit for bit
    for metric in ("acc,none", "strict_acc,none", "ece,none", "brier,none"):
        assert results["results"][TASK][metric] == reference[0]["results"][TASK][metric]


def test_hf_prefix_resumes_without_recomputing_and_matches(tiny_llama, shared_data, reference, tmp_path):
    cached, requests, forwards, (results, samples) = resume(tiny_llama, "hf-prefix", tmp_path, shared_data)
    every = request_keys(reference[1][TASK])
    assert 8 <= len(cached) < len(every)
    assert sorted(asked(requests)) == sorted(set(every) - cached)
    remaining = {every[key] for key in set(every) - cached}
    # one pass per remaining question, at most one for their shared prefix, and the backend's 1-token probe
    assert len(remaining) <= len(forwards) <= len(remaining) + 2
    ours, stock = loglikelihoods(samples[TASK]), loglikelihoods(reference[1][TASK])
    assert ours.keys() == stock.keys()
    assert max(abs(a - b) for d in ours for a, b in zip(ours[d], stock[d])) <= TOL
    for metric in ("acc,none", "strict_acc,none"):
        assert results["results"][TASK][metric] == reference[0]["results"][TASK][metric]
