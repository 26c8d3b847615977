"""Where a number comes from: the model's revision or content hash, and this project's commit."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

# Same definition as model_ops' model cards (config + weights, sorted names, then bytes), so the hash
# of an evaluated folder matches the `sha256` its card records for it as an input.
_HASHED = ("config.json", "*.safetensors", "*.gguf")


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "medtasks" / "model_hashes.json"


def _file_sha256(path: Path, cache: dict) -> str:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"  # re-hash only files that changed
    if key not in cache:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        cache[key] = digest.hexdigest()
    return cache[key]


@functools.lru_cache(maxsize=None)
def content_hash(model_dir: str) -> str:
    """sha256 over config + weight files of a local model folder; per-file hashes are cached on disk
    (keyed by path, size and mtime) because weights of a 7B model take a minute to hash."""
    folder = Path(model_dir)
    files = sorted({f for pattern in _HASHED for f in folder.glob(pattern)})
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    size = len(cache)
    per_file = {f.name: _file_sha256(f, cache) for f in files}
    if len(cache) != size:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=0), encoding="utf-8")
        except OSError:
            pass  # a read-only cache only costs speed
    return hashlib.sha256("".join(f"{n}:{h}\n" for n, h in per_file.items()).encode()).hexdigest()


def model_revision(model_path: str, model_sha: str = "", revision: str = "", hash_models: bool = True) -> str:
    """Hub commit when lm-eval recorded one; else the content hash of a local folder as it is NOW
    (at load time); else the named revision; else "unknown"."""
    if model_sha:
        return f"git:{model_sha}"
    if hash_models and Path(model_path).is_dir():
        return f"sha256:{content_hash(str(Path(model_path).resolve()))}"
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
