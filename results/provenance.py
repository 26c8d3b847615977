"""Where a number comes from: the model's revision or content hash, and this project's commit."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from medtasks.common import model_content_hash


def model_revision(model_path: str, model_sha: str = "", revision: str = "", hash_models: bool = True) -> str:
    """Hub commit when lm-eval recorded one; else the content hash of a local folder as it is NOW
    (at load time; medtasks.common's definition, the one model_ops' cards record); else the named
    revision; else "unknown"."""
    if model_sha:
        return f"git:{model_sha}"
    if hash_models and Path(model_path).is_dir():
        return f"sha256:{model_content_hash(str(Path(model_path).resolve()))}"
    if revision and revision != "main":
        return f"rev:{revision}"
    return "unknown"


@functools.lru_cache(maxsize=1)
def project_commit() -> str:
    """This project's git commit (`git rev-parse HEAD` of the checkout holding this package), or "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
