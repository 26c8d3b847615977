"""Run a merge through mergekit: resolve inputs, check compatibility, merge with a seed, write a card.

mergekit (LGPL-3.0, `pip install medeval[merge]`) does the work: inputs are memory-mapped and
the output is written shard by shard, so memory stays near one shard whatever the model size.
"""
from __future__ import annotations

from pathlib import Path

from model_ops.card import describe_input, write_card
from model_ops.compat import check_compatible
from model_ops.presets import METHOD_REFERENCES


def _require_mergekit():
    try:
        import mergekit  # noqa: F401
    except ImportError as err:
        raise ImportError("merging needs mergekit (LGPL-3.0): pip install 'medeval[merge]'") from err


def resolve_model(ref: str) -> tuple[Path, str | None]:
    """A local directory as is; otherwise a hub repo id ("org/name" or "org/name@rev") downloaded
    (safetensors, config and tokenizer only). Returns (local dir, resolved revision or None)."""
    if Path(ref).is_dir():
        return Path(ref), None
    from huggingface_hub import snapshot_download

    repo_id, _, revision = ref.partition("@")
    local = Path(snapshot_download(repo_id, revision=revision or None,
                                   allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"]))
    return local, local.name  # snapshot folders are named by commit hash


def _replace_refs(node, mapping: dict[str, str]):
    if isinstance(node, dict):
        return {k: _replace_refs(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, mapping) for v in node]
    return mapping.get(node, node) if isinstance(node, str) else node


def _referenced(config: dict) -> list[str]:
    from mergekit.config import MergeConfiguration

    try:
        parsed = MergeConfiguration.model_validate(config)
    except Exception as err:  # pydantic's message names the bad field
        raise ValueError(f"invalid mergekit configuration: {err}") from None
    refs = []
    for ref in parsed.referenced_models():
        name = ref.model.path + (f"@{ref.model.revision}" if ref.model.revision else "")
        if name not in refs:
            refs.append(name)
    base = parsed.base_model
    if base is not None:  # base first: compatibility is reported relative to it
        base_name = base.model.path + (f"@{base.model.revision}" if base.model.revision else "")
        refs.sort(key=lambda r: r != base_name)
    return refs


def merge(config: dict, out_dir: str | Path, *, seed: int | None = 0, preset: str | None = None,
          shard_size: str = "5B", check: bool = True, quiet: bool = False) -> Path:
    """Merge the models of a mergekit `config` into out_dir; returns out_dir.

    seed=None is allowed for reproducing unseeded runs, but the default is seeded because
    DARE's random drop otherwise changes the model at every run.
    """
    _require_mergekit()
    import yaml
    from mergekit.common import parse_kmb
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    refs = _referenced(config)
    resolved = {ref: resolve_model(ref) for ref in refs}
    local_config = _replace_refs(config, {ref: str(path) for ref, (path, _) in resolved.items()})
    if check:
        # A tokenizer section means mergekit builds a joint vocabulary: ids may then differ.
        vocab_may_differ = bool(config.get("tokenizer_source") or config.get("tokenizer"))
        check_compatible([path for path, _ in resolved.values()], check_vocab=not vocab_may_differ)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = MergeOptions(random_seed=seed, out_shard_size=parse_kmb(shard_size), copy_tokenizer=True,
                           trust_remote_code=False, write_model_card=False, safe_serialization=True,
                           quiet=quiet)
    run_merge(MergeConfiguration.model_validate(local_config), str(out_dir), options)

    config_yaml = yaml.safe_dump(config, sort_keys=False)
    (out_dir / "mergekit_config.yml").write_text(config_yaml, encoding="utf-8")
    method = config.get("merge_method", "?")
    inputs = [describe_input(ref, path, rev) for ref, (path, rev) in resolved.items()]
    write_card(out_dir, kind="merge", method=method,
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
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mergekit configuration (a mapping), got {type(config).__name__}")
    return config
