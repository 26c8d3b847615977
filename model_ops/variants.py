"""The BioMistral quantization table, generated: a model and its variants side by side.

For each model: size on disk, peak memory of loading it, tokens per second on the same prompts,
and accuracy on a task set, each relative to the original (first row). Every model is measured
in its own process (model_ops.measure) one after the other, never in parallel.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from model_ops.calibration import BUILTIN
from model_ops.card import read_card

DEFAULT_PROMPTS = [text.split(". ")[0] + "." for text in BUILTIN[:4]]
_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass(frozen=True)
class Variant:
    name: str
    path: Path


def parse_variant(spec: str) -> Variant:
    """NAME=DIR, or DIR alone (named after its model card's method, else the folder name)."""
    name, sep, path = spec.partition("=")
    if not sep:
        path = spec
        card = read_card(path) if Path(path).is_dir() else None
        name = card["method"] if card else Path(path).name
    if not Path(path).is_dir():
        raise FileNotFoundError(f"variant {name!r}: {path} is not a model directory")
    return Variant(name, Path(path))


def size_on_disk(model_dir: Path) -> int:
    """Bytes of weight files (what a user downloads and loads), tokenizer and card excluded."""
    return sum(f.stat().st_size for f in model_dir.iterdir() if f.suffix in _WEIGHT_SUFFIXES)


def measure_in_subprocess(model_dir: Path, spec: dict, timeout: float | None = None) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", "model_ops.measure", str(model_dir), "--spec", json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {model_dir} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mean_accuracy(acc: dict, metric: str = "acc") -> float | None:
    values = [m[metric] for m in acc.values() if metric in m]
    return sum(values) / len(values) if values else None


def relative_rows(rows: list[dict]) -> list[dict]:
    """Add ratios against the first row (the original): size and memory x, speed x, accuracy delta."""
    base = rows[0]
    for row in rows:
        row["size_ratio"] = round(row["size_bytes"] / base["size_bytes"], 3)
        row["memory_ratio"] = round(row["peak_load_mb"] / base["peak_load_mb"], 3) if base["peak_load_mb"] else None
        row["speed_ratio"] = round(row["tokens_per_s"] / base["tokens_per_s"], 3)
        acc, base_acc = row.get("mean_acc"), base.get("mean_acc")
        row["acc_delta"] = None if acc is None or base_acc is None else round(acc - base_acc, 4)
    return rows


def to_markdown(rows: list[dict]) -> str:
    def fmt(value, spec=".2f"):
        return "-" if value is None else format(value, spec)

    lines = ["| model | size (MB) | size x | peak load memory (MB) | memory x | tokens/s | speed x | "
             "accuracy | delta vs original |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['size_bytes'] / 2**20:.1f} | {fmt(r['size_ratio'])} | "
                     f"{fmt(r['peak_load_mb'], '.1f')} | {fmt(r['memory_ratio'])} | {fmt(r['tokens_per_s'], '.1f')} | "
                     f"{fmt(r['speed_ratio'])} | {fmt(r.get('mean_acc'), '.3f')} | {fmt(r['acc_delta'], '+.3f')} |")
    return "\n".join(lines) + "\n"


def build_table(original: Variant, variants: list[Variant], *, tasks: list[str], limit: int | None,
                prompts: list[str] | None = None, new_tokens: int = 32, device: str = "cpu",
                include_path: str | None = None) -> list[dict]:
    from tqdm import tqdm

    spec = {"prompts": prompts or DEFAULT_PROMPTS, "new_tokens": new_tokens, "tasks": tasks, "limit": limit,
            "device": device, "include_path": include_path}
    rows = []
    for variant in tqdm([original, *variants], desc="variants", unit="model"):
        measured = measure_in_subprocess(variant.path, spec)
        card = read_card(variant.path) or {}
        rows.append({"name": variant.name, "path": str(variant.path), "method": card.get("method", "original"),
                     "size_bytes": size_on_disk(variant.path), **measured,
                     "mean_acc": mean_accuracy(measured.get("accuracy", {}))})
    return relative_rows(rows)


def write_table(rows: list[dict], out_prefix: str | Path, settings: dict) -> tuple[Path, Path]:
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    md, js = out_prefix.with_suffix(".md"), out_prefix.with_suffix(".json")
    md.write_text(to_markdown(rows), encoding="utf-8")
    js.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return md, js
