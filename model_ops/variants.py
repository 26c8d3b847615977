"""The BioMistral quantization table, generated: a model and its variants side by side.

For each model: size on disk, memory while it runs, tokens per second on the same prompts (median
of repeated passes after a warm-up) and accuracy per task (acc and strict_acc), each relative to
the original (first row). Every model is measured in its own process (model_ops.measure, whose
docstring defines each figure) one after the other, never in parallel; the Markdown says how.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medtasks.store import atomic_write_bytes
from model_ops import ModelOpsError
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
        raise ModelOpsError(f"{path}: not a model directory (given as {spec!r})")
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
    """Add ratios against the first row (the original): size and memory x, speed x, accuracy deltas."""
    base = rows[0]

    def delta(row, key):
        return None if row.get(key) is None or base.get(key) is None else round(row[key] - base[key], 4)

    for row in rows:
        row["size_ratio"] = round(row["size_bytes"] / base["size_bytes"], 3)
        row["memory_ratio"] = (round(row["peak_memory_mb"] / base["peak_memory_mb"], 3)
                               if base["peak_memory_mb"] else None)
        row["speed_ratio"] = round(row["tokens_per_s"] / base["tokens_per_s"], 3)
        row["acc_delta"], row["strict_acc_delta"] = delta(row, "mean_acc"), delta(row, "mean_strict_acc")
    return rows


def _fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def how_measured(settings: dict) -> str:
    """The caption printed under the table: what each figure is and how it was measured."""
    prompts = settings.get("prompts")
    n_prompts = len(prompts) if isinstance(prompts, list) else len(DEFAULT_PROMPTS)
    limit = settings.get("limit")
    tasks = ", ".join(settings.get("tasks") or []) or "none"
    return (f"Measured on {settings.get('device', 'cpu')}, each model in its own process, one after another. "
            "Size: weight files on disk. Memory: peak resident memory growth from just before loading to the "
            "end of generation (GPU: torch.cuda.max_memory_allocated); weights: parameter + buffer bytes once "
            f"loaded. Speed: greedy generation of {settings.get('new_tokens')} tokens for each of {n_prompts} "
            f"prompts, one prompt at a time, after one untimed warm-up pass; median of "
            f"{settings.get('repeats')} timed passes (min-max). Accuracy: lm-eval acc / strict_acc on {tasks}"
            f"{f', first {limit} questions per task' if limit else ''}; deltas are against the first row.")


def to_markdown(rows: list[dict], settings: dict) -> str:
    lines = ["| model | size (MB) | size x | weights in memory (MB) | peak memory (MB) | memory x | "
             "tokens/s median (min-max) | speed x | mean acc | delta | mean strict acc | delta |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = f"{r['tokens_per_s']:.1f} ({r['tokens_per_s_min']:.1f}-{r['tokens_per_s_max']:.1f})"
        lines.append(f"| {r['name']} | {r['size_bytes'] / 2**20:.1f} | {_fmt(r['size_ratio'])} | "
                     f"{_fmt(r.get('weights_mb'), '.1f')} | {_fmt(r['peak_memory_mb'], '.1f')} | "
                     f"{_fmt(r['memory_ratio'])} | {speed} | {_fmt(r['speed_ratio'])} | "
                     f"{_fmt(r.get('mean_acc'), '.3f')} | {_fmt(r['acc_delta'], '+.3f')} | "
                     f"{_fmt(r.get('mean_strict_acc'), '.3f')} | {_fmt(r['strict_acc_delta'], '+.3f')} |")
    tasks = sorted({task for r in rows for task in r.get("accuracy", {})})
    if tasks:  # per task, as in BioMistral's tables: acc / strict_acc
        lines += ["", "| model | " + " | ".join(f"{t} acc / strict" for t in tasks) + " |",
                  "|---|" + "---|" * len(tasks)]
        for r in rows:
            cells = [f"{_fmt(r['accuracy'].get(t, {}).get('acc'), '.3f')} / "
                     f"{_fmt(r['accuracy'].get(t, {}).get('strict_acc'), '.3f')}" for t in tasks]
            lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + how_measured(settings) + "\n"


def build_table(original: Variant, variants: list[Variant], *, tasks: list[str], limit: int | None,
                prompts: list[str] | None = None, new_tokens: int = 32, device: str = "cpu",
                include_path: str | None = None, repeats: int = 3) -> list[dict]:
    from tqdm import tqdm

    spec = {"prompts": prompts or DEFAULT_PROMPTS, "new_tokens": new_tokens, "tasks": tasks, "limit": limit,
            "device": device, "include_path": include_path, "repeats": repeats}
    rows = []
    for variant in tqdm([original, *variants], desc="variants", unit="model"):
        measured = measure_in_subprocess(variant.path, spec)
        card = read_card(variant.path) or {}
        accuracy = measured.get("accuracy", {})
        rows.append({"name": variant.name, "path": str(variant.path), "method": card.get("method", "original"),
                     "size_bytes": size_on_disk(variant.path), **measured,
                     "mean_acc": mean_accuracy(accuracy), "mean_strict_acc": mean_accuracy(accuracy, "strict_acc")})
    return relative_rows(rows)


def write_table(rows: list[dict], out_prefix: str | Path, settings: dict) -> tuple[Path, Path]:
    """PREFIX.md and PREFIX.json, each written atomically (never half-written)."""
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    md, js = out_prefix.with_suffix(".md"), out_prefix.with_suffix(".json")
    for path, text in ((md, to_markdown(rows, settings)),
                       (js, json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")):
        atomic_write_bytes(path, text.encode())
    return md, js
