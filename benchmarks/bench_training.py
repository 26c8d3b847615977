"""Training package throughput, measured in one run on synthetic PMC packages and a tiny model.

    .venv/bin/python benchmarks/bench_training.py [--articles 400] [--steps 10] [--no-training]

Prints: corpus preparation (articles/s, words/s) beside a bare stream read of the same package
(the ratio is the cost of parsing, filtering and writing), packing (tokens/s, with and without
tokenization), and training steps/s of CPT and LoRA SFT on a tiny random model (informational).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pmc_samples import write_random_package  # noqa: E402
from tiny import build_tiny_model  # noqa: E402
from training.corpus import Options, corpus_files, iter_package, prepare_corpus  # noqa: E402
from training.pack import iter_texts, pack_blocks, tokenize_and_pack, with_eos  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_corpus(tmp: Path, n_articles: int) -> Path:
    package, _ = write_random_package(tmp / "oa_comm_xml.PMC000xxxxxx.baseline.2024-01-01.tar.gz", n_articles,
                                      paragraphs=12, words_per_paragraph=60)
    # every licence kept, so each article is parsed, chunked and written
    options = Options(licenses=("CC BY", "CC0", "CC BY-NC", "CC BY-SA", "CC BY-ND", "CC BY-NC-ND", "NO-CC CODE"))
    read, t_read = timed(lambda: sum(len(a.extractfile(m).read()) for _, a, m in iter_package(package)))
    manifest, t_prep = timed(lambda: prepare_corpus([package], tmp / "corpus", options, progress_bar=False))
    print(f"package: {n_articles} articles, {package.stat().st_size / 1e6:.1f} MB gzipped, {read / 1e6:.1f} MB of XML")
    print(f"stream read only : {n_articles / t_read:9.0f} articles/s  ({t_read:.2f} s)")
    print(f"corpus prepare   : {manifest['articles_read'] / t_prep:9.0f} articles/s  "
          f"{manifest['words'] / t_prep:11.0f} words/s  ({t_prep:.2f} s, {manifest['chunks']} chunks; "
          f"x{t_prep / t_read:.1f} the bare read)")
    return tmp / "corpus"


def bench_packing(corpus: Path, model: Path, tmp: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    files = corpus_files(corpus)
    path, t_all = timed(lambda: tokenize_and_pack(files, tokenizer, 2048, tmp / "packed", progress_bar=False))
    summary = json.loads(path.with_suffix(".json").read_text())
    sequences = [with_eos(tokenizer(t)["input_ids"], tokenizer.eos_token_id) for t in iter_texts(files)]
    blocks, t_pack = timed(lambda: sum(1 for _ in pack_blocks(sequences, 2048)))
    print(f"tokenize + pack  : {summary['tokens'] / t_all:11.0f} tokens/s  ({summary['blocks']} blocks of 2048)")
    print(f"pack only        : {summary['tokens'] / t_pack:11.0f} tokens/s  ({blocks} blocks; "
          f"tokenization is x{t_all / t_pack:.0f} the packing time)")


def bench_training(corpus: Path, model: Path, tmp: Path, steps: int) -> None:
    from medtasks.records import Record
    from medtasks.store import write_records
    from training.config import build
    from training.pretrain import run_pretrain
    from training.sft import run_sft

    common = {"model": str(model), "max_steps": steps, "save_steps": 10 ** 6, "logging_steps": steps,
              "dtype": "float32", "gradient_checkpointing": False, "per_device_batch_size": 4, "grad_accum": 1}
    cpt = run_pretrain(build("pretrain", {**common, "corpus": str(corpus), "output_dir": str(tmp / "cpt"),
                                          "block_size": 256}), progress_bar=False)
    records = [Record(f"q{i}", "medqa", "en", "train", f"Case {i}: which organ pumps blood?",
                      {"A": "heart", "B": "lung", "C": "kidney", "D": "liver"}, "A") for i in range(32)]
    write_records(tmp / "store", records)
    sft = run_sft(build("sft", {**common, "store": str(tmp / "store"), "output_dir": str(tmp / "sft")}),
                  progress_bar=False)
    for name, trainer, unit in (("CPT tiny model  ", cpt, "4 x 256 tokens"), ("SFT tiny LoRA   ", sft, "4 examples")):
        rate = trainer.state.log_history[-1]["train_steps_per_second"]
        print(f"{name} : {rate:9.1f} steps/s  (batch {unit}; informational)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-training", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = bench_corpus(tmp, args.articles)
        model = build_tiny_model(tmp / "tiny")
        bench_packing(corpus, model, tmp)
        if not args.no_training:
            bench_training(corpus, model, tmp, args.steps)


if __name__ == "__main__":
    main()
