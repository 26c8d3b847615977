"""Benchmark model_ops: merge time and peak memory at two model sizes, and each quantized variant's
size and speed relative to the original. Prints its figures; everything runs one step at a time.

    .venv/bin/python benchmarks/bench_model_ops.py                 # defaults (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_model_ops.py --sizes 256x4 512x8 --methods bnb-nf4 gguf-q8_0

Models are random Mistral checkpoints (tests/tiny.py) of HIDDENxLAYERS. Each merge runs in its own
process, which reports its own peak RSS (VmHWM) and peak private memory (RssAnon, sampled every 5 ms;
RSS also counts the pages of the memory-mapped inputs, which the kernel can drop at will). mergekit memory-maps inputs and writes the output shard by
shard, so peak memory should track the shard size, not the model size: the report prints both ratios.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

_MERGE_CHILD = """
import sys, threading, time
peak_anon = [0]
def watch():  # RssAnon: the private memory the merge allocates, without memory-mapped file pages
    while True:
        with open("/proc/self/status") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("RssAnon:"))
        peak_anon[0] = max(peak_anon[0], kb)
        time.sleep(0.005)
threading.Thread(target=watch, daemon=True).start()
from model_ops.merge import merge
from model_ops.presets import build_config
merge(build_config(sys.argv[1], sys.argv[2], sys.argv[3], dtype="float32"), sys.argv[4], seed=0,
      shard_size=sys.argv[5], quiet=True)
from model_ops.measure import peak_rss_mb
print(peak_rss_mb(), peak_anon[0] / 1024)
"""


def run_child(args: list[str]) -> tuple[float, list[float]]:
    """(wall seconds, [memory figures in MB]) of a child process, which prints its own last
    (wait4's ru_maxrss would include the parent's RSS inherited at fork)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr[-2000:]}")
    return wall, [float(x) for x in proc.stdout.strip().splitlines()[-1].split()]


def parse_shard_bytes(text: str) -> int:
    """mergekit's shard size notation: 100M, 5B ... (bytes)."""
    scale = {"K": 10**3, "M": 10**6, "B": 10**9}
    return int(float(text[:-1]) * scale[text[-1].upper()]) if text[-1].upper() in scale else int(text)


def weights_mb(model_dir: Path) -> float:
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors")) / 2**20


def bench_merges(root: Path, sizes: list[str], preset: str, shard_size: str) -> list[dict]:
    from tiny import build_tiny_model

    rows = []
    for size in sizes:
        hidden, layers = map(int, size.split("x"))
        base = build_tiny_model(root / f"{size}_a", "mistral", seed=0, hidden=hidden, layers=layers)
        other = build_tiny_model(root / f"{size}_b", "mistral", seed=1, hidden=hidden, layers=layers)
        wall, (rss, anon) = run_child(["-c", _MERGE_CHILD, preset, str(base), str(other), str(root / f"{size}_m"),
                                       shard_size])
        rows.append({"size": size, "model_mb": round(weights_mb(base), 1), "merge_s": round(wall, 1),
                     "peak_rss_mb": round(rss, 1), "peak_anon_mb": round(anon, 1)})
        print(f"merge {preset} {size}: model {rows[-1]['model_mb']} MB, {wall:.1f} s, peak RSS {rss:.0f} MB "
              f"(of which private, not file-mapped: {anon:.0f} MB)", flush=True)
    return rows


def bench_quant(root: Path, size: str, methods: list[str], new_tokens: int, repeats: int) -> list[dict]:
    from model_ops.quantize import quantize
    from model_ops.variants import Variant, build_table

    src = root / f"{size}_a"
    variants = []
    for method in methods:
        start = time.perf_counter()
        try:
            out = quantize(src, root / f"q_{method}", method, group_size=128)
        except Exception as err:  # e.g. gptqmodel not installed: report, keep going
            print(f"quantize {method}: skipped ({str(err).splitlines()[0]})", flush=True)
            continue
        print(f"quantize {method}: {time.perf_counter() - start:.1f} s", flush=True)
        variants.append(Variant(method, out))
    return build_table(Variant("original", src), variants, tasks=[], limit=None, new_tokens=new_tokens,
                       repeats=repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs=2, default=["512x8", "1024x16"], help="two HIDDENxLAYERS sizes")
    parser.add_argument("--preset", default="ties")
    parser.add_argument("--shard-size", default="100M", help="output shard size (bytes, mergekit notation) for the merges")
    parser.add_argument("--methods", nargs="+", default=["bnb-nf4", "bnb-fp4", "bnb-int8", "gguf-q8_0", "gguf-q4_0"])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed generation passes per model (median shown)")
    args = parser.parse_args()

    from model_ops.variants import to_markdown

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        merges = bench_merges(root, args.sizes, args.preset, args.shard_size)
        small, large = merges
        print(f"\nmodel size ratio {large['model_mb'] / small['model_mb']:.2f}x; "
              f"merge peak RSS ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x, "
              f"private-memory ratio {large['peak_anon_mb'] / small['peak_anon_mb']:.2f}x; "
              f"time ratio {large['merge_s'] / small['merge_s']:.2f}x")
        shard_mb = parse_shard_bytes(args.shard_size) / 2**20
        growth = large["peak_anon_mb"] - small["peak_anon_mb"]
        print(f"private memory grew {growth:.0f} MB for {large['model_mb'] - small['model_mb']:.0f} MB more model: "
              f"{growth / shard_mb:.2f} output shards of {shard_mb:.0f} MB (mergekit writes one shard in the "
              f"background while the next fills)\n")
        rows = bench_quant(root, args.sizes[0], args.methods, args.new_tokens, args.repeats)
        print(f"\nquantized variants of the {args.sizes[0]} model:")
        print(to_markdown(rows, {"device": "cpu", "new_tokens": args.new_tokens, "repeats": args.repeats}))
        print(json.dumps({"merges": merges, "variants": [{k: r[k] for k in (
            "name", "size_bytes", "size_ratio", "weights_mb", "peak_memory_mb", "memory_ratio", "tokens_per_s",
            "tokens_per_s_min", "tokens_per_s_max", "speed_ratio")} for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
