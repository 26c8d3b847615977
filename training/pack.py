"""Tokenize corpus chunks, append EOS, and pack them into fixed-length blocks (BioMistral: 2048).

Blocks go to a flat uint32 file (`blocks-<size>.bin`, rows of `block_size` token ids) that the
trainer memory-maps, so tokenizing happens once and a 100 GB corpus never sits in RAM. The tail
that does not fill a last block is dropped, as in BioMistral's recipe.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from medtasks.store import atomic_write_bytes


def pack_blocks(sequences: Iterable[list[int]], block_size: int) -> Iterator[list[int]]:
    """Concatenate token sequences and cut full blocks of `block_size`; the last partial block is dropped."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    buffer: list[int] = []
    for ids in sequences:
        buffer.extend(ids)
        full = len(buffer) // block_size * block_size
        for start in range(0, full, block_size):
            yield buffer[start:start + block_size]
        del buffer[:full]


def with_eos(ids: list[int], eos_id: int) -> list[int]:
    return ids if ids and ids[-1] == eos_id else ids + [eos_id]


def iter_texts(files: Iterable[Path], field: str = "text") -> Iterator[str]:
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)[field]


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def tokenize_and_pack(files: list[Path], tokenizer, block_size: int, out_dir: Path,
                      batch_size: int = 256, progress_bar: bool = True) -> Path:
    """Write (or reuse) `out_dir/blocks-<block_size>.bin` plus its .json summary; return the .bin path.

    Reused only when the summary matches these inputs (files, their sizes, tokenizer, block size).
    """
    from tqdm.auto import tqdm

    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token: continued pretraining appends one after each text")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"blocks-{block_size}.bin"
    summary_path = target.with_suffix(".json")
    key = {"files": [[str(f), Path(f).stat().st_size] for f in files], "block_size": block_size,
           "tokenizer": getattr(tokenizer, "name_or_path", ""), "vocab": len(tokenizer), "eos": tokenizer.eos_token_id}
    if target.exists() and summary_path.exists() and json.loads(summary_path.read_text()).get("key") == key:
        return target
    texts = tokens = blocks = 0
    tmp = target.with_suffix(".bin.tmp")

    def sequences():
        nonlocal texts, tokens
        for batch in _batched(tqdm(iter_texts(files), desc="tokenize", unit="chunk", disable=not progress_bar),
                              batch_size):
            for ids in tokenizer(batch)["input_ids"]:
                ids = with_eos(ids, tokenizer.eos_token_id)
                texts += 1
                tokens += len(ids)
                yield ids

    with open(tmp, "wb") as handle:
        for block in pack_blocks(sequences(), block_size):
            handle.write(np.asarray(block, dtype=np.uint32).tobytes())
            blocks += 1
    tmp.replace(target)
    summary = {"key": key, "texts": texts, "tokens": tokens, "blocks": blocks,
               "tokens_in_blocks": blocks * block_size, "dropped_tail": tokens - blocks * block_size}
    atomic_write_bytes(summary_path, (json.dumps(summary, indent=1) + "\n").encode())
    return target


class BlockDataset:
    """A torch-style map dataset over a blocks file: item i = {input_ids, labels} of row i."""

    def __init__(self, path: Path, block_size: int):
        if Path(path).stat().st_size < block_size * 4:
            raise ValueError(f"{path} holds no full block of {block_size} tokens: the corpus is too small "
                             "for this block_size")
        self.blocks = np.memmap(path, dtype=np.uint32, mode="r").reshape(-1, block_size)

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> dict:
        import torch

        ids = torch.from_numpy(self.blocks[index].astype(np.int64))
        return {"input_ids": ids, "labels": ids.clone()}
