"""Model cards: how a merged or quantized model was made, as README.md and medeval_card.json.

The card is written without a timestamp so that the same inputs and seed give a byte-identical
output directory. Inputs are identified by revision (hub) or by content hash (local folder).
"""
from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from medtasks.common import MODEL_CARD_JSON, combine_hashes, model_files_sha256

_TOOLS = ("medeval", "torch", "transformers", "safetensors", "mergekit", "bitsandbytes", "gptqmodel",
          "gguf", "accelerate")


def tool_versions(names=_TOOLS) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def describe_input(ref: str, local_dir: Path, revision: str | None = None) -> dict:
    """Name, revision and the content hash over config + weights that results provenance also records
    (medtasks.common.model_content_hash), with the per-file hashes it combines."""
    per_file = model_files_sha256(local_dir)
    return {"model": ref, "revision": revision, "sha256": combine_hashes(per_file), "files": per_file}


def write_card(out_dir: Path, *, kind: str, method: str, parameters: dict, inputs: list[dict],
               reference: str, seed: int | None = None, config_yaml: str | None = None,
               notes: str = "") -> dict:
    card = {
        "kind": kind,  # "merge" or "quantization"
        "method": method,
        "parameters": parameters,
        "inputs": inputs,
        "seed": seed,
        "reference": reference,
        "tools": tool_versions(),
    }
    out_dir = Path(out_dir)
    (out_dir / MODEL_CARD_JSON).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(_markdown(card, config_yaml, notes), encoding="utf-8")
    return card


def read_card(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / MODEL_CARD_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _markdown(card: dict, config_yaml: str | None, notes: str) -> str:
    lines = [
        "---", "library_name: transformers", "tags: [medeval, " + card["kind"] + ", " + card["method"] + "]", "---",
        f"# {card['kind'].capitalize()}: {card['method']}", "",
        f"Made with `medeval {'merge' if card['kind'] == 'merge' else 'quantize'}`. Method reference: "
        f"{card['reference']}.", "",
        "## Inputs", "",
        "| model | revision | sha256 (config + weights) |", "|---|---|---|",
        *[f"| {i['model']} | {i['revision'] or '-'} | `{i['sha256']}` |" for i in card["inputs"]], "",
        "## Parameters", "", "```json", json.dumps(card["parameters"], indent=2, sort_keys=True), "```", "",
        f"Seed: {card['seed'] if card['seed'] is not None else 'none (deterministic method)'}", "",
        "## Tools", "", *[f"- {k} {v}" for k, v in sorted(card["tools"].items())], "",
    ]
    if config_yaml:
        lines += ["## mergekit configuration", "", "```yaml", config_yaml.rstrip(), "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    return "\n".join(lines)
