"""Output folders appear whole or not at all.

A merge or quantization writes into a hidden folder beside the target and renames it at the end,
so a refused, failed or interrupted command leaves no folder (and never half of one) behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from model_ops import ModelOpsError


def check_free(out_dir: str | Path) -> Path:
    """The output folder, refused when it already holds files (nothing is overwritten)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ModelOpsError(f"--out {out_dir}: already exists and is not empty; remove it or choose another folder")
    return out_dir


@contextlib.contextmanager
def staged_dir(out_dir: str | Path):
    """Yield a temporary folder beside out_dir; on success it becomes out_dir, on any error it is removed."""
    out_dir = check_free(out_dir).absolute()
    new_parents = [p for p in (out_dir.parent, *out_dir.parent.parents) if not p.exists()]  # deepest first
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if out_dir.is_dir():
            out_dir.rmdir()  # empty (checked above): replaced by the finished folder
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in new_parents:  # folders made only for this output go too
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
