"""What every package of the project shares: the error and exit-code policy, the cache root,
file and model hashing, and the lazy import of an optional extra.

It sits at the ground floor (medtasks) and imports nothing heavy, so any command may use it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
from pathlib import Path

# Exit codes of every `medeval` command.
EXIT_OK = 0
EXIT_VERDICT = 1  # the command ran and its verdict is negative (a regression, a failed verification)
EXIT_USAGE = 2  # a bad argument, file or input: nothing was done (or nothing was left half-done)


class UsageError(Exception):
    """A bad argument, file or input. `medeval` prints its one-line message (which names the argument or
    file and what to do) as `medeval <command>: <message>` and exits 2, without a traceback."""


class MissingExtra(UsageError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that provides it."""


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional heavy dependency inside the function that needs it, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f"{purpose} needs {module}" if purpose else f"{module} is not installed"
        raise MissingExtra(f"{what}: pip install 'medeval[{extra}]' ({err})") from err


def cache_root() -> Path:
    """$XDG_CACHE_HOME/medtasks, else ~/.cache/medtasks: the store, models and hashes live under it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medtasks"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# The card model_ops writes into every merged or quantized folder, and results reads back.
MODEL_CARD_JSON = "medeval_card.json"

# What identifies a model folder's content: its config and weights (not its card, README or tokenizer).
MODEL_FILES = ("config.json", "*.safetensors", "*.gguf")


def model_files(model_dir: str | Path) -> list[Path]:
    """A model folder's config and weight files (MODEL_FILES), sorted by name."""
    return sorted({f for pattern in MODEL_FILES for f in Path(model_dir).glob(pattern)})


def model_files_sha256(model_dir: str | Path) -> dict[str, str]:
    """{file name: sha256} of a model folder's config and weight files, sorted by name. Per-file hashes
    are cached on disk (keyed by path, size and mtime): the weights of a 7B model take a minute to hash."""
    files = model_files(model_dir)
    cache_path = cache_root() / "model_hashes.json"
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    size = len(cache)
    per_file = {}
    for path in files:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cache:
            cache[key] = sha256_file(path)
        per_file[path.name] = cache[key]
    if len(cache) != size:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=0), encoding="utf-8")
        except OSError:
            pass  # a read-only cache only costs speed
    return per_file


def combine_hashes(per_file: dict[str, str]) -> str:
    """One sha256 over sorted `name:hash` lines: the content hash of a folder."""
    return sha256_bytes("".join(f"{name}:{digest}\n" for name, digest in sorted(per_file.items())).encode())


@functools.lru_cache(maxsize=None)
def model_content_hash(model_dir: str) -> str:
    """sha256 over the config and weight files of a local model folder (same value in model cards,
    results provenance and submissions, so an evaluated folder matches the card that made it)."""
    return combine_hashes(model_files_sha256(model_dir))


def parse_shard(text: str) -> tuple[int, int]:
    """--shard 'i/N' -> (i, N), 1 <= i <= N: the i-th of N parts of a job (a SLURM array task, a node)."""
    match = re.fullmatch(r"(\d+)/(\d+)", (text or "").strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard {text}: expected i/N with 1 <= i <= N, e.g. 2/8 "
                         "(SLURM: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(match.group(1)), int(match.group(2))
