"""Run a merge through mergekit: resolve inputs, check compatibility, merge with a seed, write a card.

mergekit (LGPL-3.0, `pip install medeval[merge]`) does the work: inputs are memory-mapped and
the output is written shard by shard, so memory stays near one shard whatever the model size.
"""
from __future__ import annotations

from pathlib import Path

from medtasks.common import require
from model_ops import ModelOpsError
from model_ops.card import describe_input, write_card
from model_ops.compat import check_compatible
from model_ops.output import check_free, staged_dir
from model_ops.presets import METHOD_REFERENCES


def resolve_model(ref: str) -> tuple[Path, str | None]:
    """A local directory as is; otherwise a hub repo id ("org/name" or "org/name@rev") downloaded
    (safetensors, config and tokenizer only). Returns (local dir, resolved revision or None)."""
    if Path(ref).is_dir():
        return Path(ref), None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    repo_id, _, revision = ref.partition("@")
    try:
        local = Path(snapshot_download(repo_id, revision=revision or None,
                                       allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"]))
    except HFValidationError:
        raise ModelOpsError(f"{ref}: no such model folder, and not a hub id (org/name[@revision])") from None
    except OSError as err:  # offline, unknown repo, network: the hub could not provide it
        raise ModelOpsError(f"{ref}: not a local folder, and the hub could not provide it ({err})") from None
    return local, local.name  # snapshot folders are named by commit hash


def _replace_refs(node, mapping: dict[str, str]):
    if isinstance(node, dict):
        return {k: _replace_refs(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, mapping) for v in node]
    return mapping.get(node, node) if isinstance(node, str) else node


def _ref_name(value) -> str | None:
    """A model reference as mergekit writes it: "path[@revision][+lora]" or {model: {path, revision}}."""
    if isinstance(value, str):
        return value.split("+", 1)[0]  # a LoRA applied on top does not change the base's tensors
    if isinstance(value, dict) and isinstance(value.get("model"), dict) and "path" in value["model"]:
        revision = value["model"].get("revision")
        return value["model"]["path"] + (f"@{revision}" if revision else "")
    return None


def referenced_models(config: dict) -> list[str]:
    """The models a mergekit configuration merges (base first), read from the plain mapping
    (base_model, models[].model, slices[].sources[].model, the same inside modules) without
    importing mergekit, so that incompatible inputs are refused in about a second."""
    refs: list[str] = []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                name = _ref_name(value) if key in ("model", "base_model") else None
                if name and name not in refs:
                    refs.append(name)
                elif name is None:
                    walk(value)

    walk(config)
    base = _ref_name(config.get("base_model"))
    return sorted(refs, key=lambda ref: ref != base)


def _validated(config: dict):
    from mergekit.config import MergeConfiguration

    try:
        return MergeConfiguration.model_validate(config)
    except Exception as err:  # pydantic's message names the bad field
        raise ModelOpsError("invalid mergekit configuration: " + " ".join(str(err).split())) from None


def merge(config: dict, out_dir: str | Path, *, seed: int | None = 0, preset: str | None = None,
          shard_size: str = "5B", check: bool = True, quiet: bool = False) -> Path:
    """Merge the models of a mergekit `config` into out_dir; returns out_dir.

    The inputs are checked from their headers before mergekit is even imported; the output folder
    appears only when complete. seed=None is allowed for reproducing unseeded runs, but the default
    is seeded because DARE's random drop otherwise changes the model at every run.
    """
    refs = referenced_models(config)
    out_dir = check_free(out_dir)
    resolved = {ref: resolve_model(ref) for ref in refs}
    if check and resolved:
        # A tokenizer section means mergekit builds a joint vocabulary: ids may then differ.
        vocab_may_differ = bool(config.get("tokenizer_source") or config.get("tokenizer"))
        check_compatible([path for path, _ in resolved.values()], check_vocab=not vocab_may_differ)

    require("mergekit", "merge", "merging")
    import yaml
    from mergekit.common import parse_kmb
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    local_config = _validated(_replace_refs(config, {ref: str(path) for ref, (path, _) in resolved.items()}))
    try:
        out_shard_size = parse_kmb(shard_size)
    except ValueError:
        raise ModelOpsError(f"--shard-size {shard_size!r}: expected a number with K, M or B, e.g. 500M") from None
    options = MergeOptions(random_seed=seed, out_shard_size=out_shard_size, copy_tokenizer=True,
                           trust_remote_code=False, write_model_card=False, safe_serialization=True,
                           quiet=quiet)
    config_yaml = yaml.safe_dump(config, sort_keys=False)
    method = config.get("merge_method", "?")
    with staged_dir(out_dir) as staging:
        run_merge(local_config, str(staging), options)
        (staging / "mergekit_config.yml").write_text(config_yaml, encoding="utf-8")
        inputs = [describe_input(ref, path, rev) for ref, (path, rev) in resolved.items()]
        write_card(staging, kind="merge", method=method,
                   parameters={"preset": preset, "config": config, "shard_size": shard_size},
                   inputs=inputs, seed=seed, config_yaml=config_yaml,
                   reference=METHOD_REFERENCES.get(method, _mergekit_reference(method)))
    return out_dir


def _mergekit_reference(method: str) -> str:
    from mergekit.merge_methods import registry

    try:
        return registry.get(method).spec.reference_url or "see mergekit documentation"
    except Exception:
        return "see mergekit documentation"


def load_config_file(path: str | Path) -> dict:
    """A user's mergekit YAML, accepted as is (validated by mergekit's own schema in merge())."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ModelOpsError(f"{path}: not valid YAML: " + " ".join(str(err).split())) from None
    if not isinstance(config, dict):
        raise ModelOpsError(f"{path}: expected a mergekit configuration (a mapping), got {type(config).__name__}")
    return config
