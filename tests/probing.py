"""Run lm-eval (or `medeval`, `accelerate launch`, which start it) with the test probe of
tests/lm_eval_probe/sitecustomize.py, and read what it recorded: the requests that reached the model
and the model's forward passes, per process and rank."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROBE_DIR = Path(__file__).resolve().parent / "lm_eval_probe"


def probe_env(record: Path, data: Path, **extra: str) -> dict:
    """os.environ plus the probe recording into `record`, the real data, no hub, this venv on PATH, and
    one torch thread per process (tiny models; the test machine's cores are shared)."""
    return {**os.environ, "PYTHONPATH": str(PROBE_DIR), "MEDEVAL_PROBE": str(record), "MEDTASKS_DATA": str(data),
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}


def events(record: Path, kind: str) -> list[dict]:
    if not record.exists():
        return []
    return [e for e in map(json.loads, record.read_text().splitlines()) if e["event"] == kind]


def request_keys(samples: list[dict]) -> dict[str, int]:
    """lm-eval's request-cache key (hash_args) of every request of a task's samples -> its doc_id."""
    from lm_eval.api.model import hash_args

    return {hash_args("loglikelihood", (arg["arg_0"], arg["arg_1"])): sample["doc_id"]
            for sample in samples for arg in sample["arguments"].values()}


def loglikelihoods(samples: list[dict]) -> dict[int, list[float]]:
    """doc_id -> the log-likelihood of each choice, as lm-eval logged them."""
    return {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in samples}
