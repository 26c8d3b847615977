"""Can these checkpoints be merged? Checked from headers only, before any tensor is read.

A merge of mismatched models either crashes deep inside mergekit after minutes of work or,
worse, silently produces garbage (two vocabularies whose ids mean different tokens). We read
config.json, the safetensors headers (names, shapes, dtypes: a few KB per shard) and the
tokenizer's vocabulary, and refuse with a message that names the first differences.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from medtasks.common import UsageError


class IncompatibleModels(UsageError, ValueError):
    """The inputs of a merge disagree on architecture, tensors or vocabulary."""


@dataclass(frozen=True)
class ModelSummary:
    path: Path
    architecture: str
    tensors: dict[str, tuple[int, ...]]  # name -> shape
    vocab: dict[str, int] | None  # token -> id, None when no tokenizer is found


def read_safetensors_header(file: Path) -> dict[str, dict]:
    """The JSON header of a .safetensors file (8-byte little-endian length, then JSON)."""
    with open(file, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    header.pop("__metadata__", None)
    return header


def _tensor_shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise IncompatibleModels(
            f"{model_dir}: no *.safetensors files (pickled .bin checkpoints are not accepted; "
            "convert them with save_pretrained(safe_serialization=True))")
    shapes = {}
    for file in files:
        for name, info in read_safetensors_header(file).items():
            shapes[name] = tuple(info["shape"])
    return shapes


def _vocab(model_dir: Path) -> dict[str, int] | None:
    tok_json = model_dir / "tokenizer.json"
    if tok_json.is_file():
        data = json.loads(tok_json.read_text(encoding="utf-8"))
        vocab = dict(data.get("model", {}).get("vocab") or {})
        for added in data.get("added_tokens", []):
            vocab[added["content"]] = added["id"]
        if isinstance(data.get("model", {}).get("vocab"), list):  # unigram: [[piece, score], ...]
            vocab = {piece: i for i, (piece, _score) in enumerate(data["model"]["vocab"])}
        return vocab
    return None


def summarize(model_dir: str | Path) -> ModelSummary:
    """Architecture, tensor shapes and vocabulary of a local model directory."""
    model_dir = Path(model_dir)
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise IncompatibleModels(f"{model_dir}: no config.json (is this a Hugging Face model directory?)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    arch = ",".join(config.get("architectures") or [config.get("model_type", "?")])
    return ModelSummary(model_dir, arch, _tensor_shapes(model_dir), _vocab(model_dir))


def _first(items, n: int = 5) -> str:
    items = sorted(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def compare(base: ModelSummary, other: ModelSummary, *, check_vocab: bool = True) -> list[str]:
    """Every reason why `other` cannot be merged into `base`; an empty list means compatible."""
    problems = []
    where = f"{base.path} vs {other.path}"
    if base.architecture != other.architecture:
        problems.append(f"architecture differs ({where}): {base.architecture} vs {other.architecture}")
    missing = base.tensors.keys() - other.tensors.keys()
    extra = other.tensors.keys() - base.tensors.keys()
    if missing:
        problems.append(f"tensors only in {base.path}: {_first(missing)}")
    if extra:
        problems.append(f"tensors only in {other.path}: {_first(extra)}")
    shape_diffs = [f"{name} {base.tensors[name]} vs {other.tensors[name]}"
                   for name in base.tensors.keys() & other.tensors.keys()
                   if base.tensors[name] != other.tensors[name]]
    if shape_diffs:
        problems.append(f"tensor shapes differ ({where}): {_first(shape_diffs)}")
    if check_vocab and base.vocab is not None and other.vocab is not None and base.vocab != other.vocab:
        differ = [tok for tok in base.vocab.keys() | other.vocab.keys()
                  if base.vocab.get(tok) != other.vocab.get(tok)]
        problems.append(
            f"vocabularies differ ({where}): {len(base.vocab)} vs {len(other.vocab)} tokens, "
            f"{len(differ)} tokens with a different id, e.g. {_first(repr(t) for t in differ)}. "
            "Token ids would mean different strings in the merged model.")
    return problems


def check_compatible(model_dirs: list[str | Path], *, check_vocab: bool = True) -> list[ModelSummary]:
    """Raise IncompatibleModels listing every problem; return the summaries when all agree."""
    summaries = [summarize(d) for d in model_dirs]
    problems = [p for other in summaries[1:] for p in compare(summaries[0], other, check_vocab=check_vocab)]
    if problems:
        raise IncompatibleModels("models cannot be merged: " + "; ".join(problems))
    return summaries
