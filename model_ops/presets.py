"""BioMistral's merge recipes as named presets: one registry, each entry builds a mergekit config.

Values are the ones in BioMistral's paper and model cards (bf16, base = the general model,
the domain model merged into it). A preset is just a function of the two model references, so
`medeval merge --preset dare --base X --model Y` and a hand-written mergekit YAML run the same path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from model_ops import ModelOpsError


@dataclass(frozen=True)
class MergePreset:
    name: str
    method: str  # mergekit merge_method
    description: str
    reference: str  # the method's paper
    build: Callable[..., dict]


def _slerp(base: str, model: str, dtype: str, t: float | None = None) -> dict:
    # Attention leans towards the base in early layers and the domain model late; MLPs the
    # reverse; everything else (embeddings, norms, head) half-way. Lists are spread over depth.
    schedule = [
        {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
        {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
        {"value": 0.5},
    ]
    return {
        "merge_method": "slerp",
        "base_model": base,
        "models": [{"model": base}, {"model": model}],
        "parameters": {"t": schedule if t is None else t},
        "dtype": dtype,
    }


def _task_arithmetic(method: str, **extra):
    def build(base: str, model: str, dtype: str, density: float = 0.5, weight: float = 0.5,
              normalize: bool = True) -> dict:
        return {
            "merge_method": method,
            "base_model": base,
            "models": [{"model": base},
                       {"model": model, "parameters": {"density": density, "weight": weight}}],
            "parameters": {"normalize": normalize, **extra},
            "dtype": dtype,
        }
    return build


PRESETS: dict[str, MergePreset] = {p.name: p for p in (
    MergePreset("slerp", "slerp",
                "spherical interpolation; per-layer t: self_attn [0,0.5,0.3,0.7,1], mlp [1,0.5,0.7,0.3,0], rest 0.5",
                "Shoemake, Animating rotation with quaternion curves, SIGGRAPH 1985", _slerp),
    MergePreset("ties", "ties", "TIES: density 0.5, weight 0.5, normalize",
                "Yadav et al., TIES-Merging, NeurIPS 2023, arXiv:2306.01708", _task_arithmetic("ties")),
    MergePreset("dare", "dare_ties", "DARE + TIES sign election: density 0.5, weight 0.5, int8_mask (random: seeded)",
                "Yu et al., Language Models are Super Mario (DARE), ICML 2024, arXiv:2311.03099",
                _task_arithmetic("dare_ties", int8_mask=True)),
)}

METHOD_REFERENCES = {p.method: p.reference for p in PRESETS.values()}


def get_preset(name: str) -> MergePreset:
    if name not in PRESETS:
        raise KeyError(f"unknown merge preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def build_config(name: str, base: str, model: str, dtype: str = "bfloat16", **params) -> dict:
    """The mergekit configuration of preset `name`; params override its defaults (e.g. density=0.3)."""
    preset = get_preset(name)
    try:
        return preset.build(base, model, dtype, **params)
    except TypeError as err:
        raise ModelOpsError(f"preset {name!r}: bad parameter ({err}); see medeval merge --help") from None
