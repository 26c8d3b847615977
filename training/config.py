"""Typed recipe configs, loaded from YAML and validated at the boundary.

Defaults are BioMistral's (arXiv 2402.10373 and its public training code), so an empty config
is their recipe. An unknown key, a wrong type or a bad value is an error naming the file, the
line and the field. `--set key=value` overrides go through the same checks.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from medtasks.common import UsageError

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
DTYPES = ("bfloat16", "float16", "float32", "auto")


class ConfigError(UsageError, ValueError):
    def __init__(self, source: str, line: int | None, field_name: str | None, problem: str):
        where = f"{source}" + (f", line {line}" if line else "") + (f", field {field_name!r}" if field_name else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class Common:
    """What both recipes share: model, optimisation and checkpointing."""
    model: str = "mistralai/Mistral-7B-Instruct-v0.1"  # BioMistral's base
    output_dir: str = "out/training"
    learning_rate: float = 2e-5
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    per_device_batch_size: int = 32
    grad_accum: int = 2
    dtype: str = "bfloat16"  # weights and mixed precision; float32 on CPU
    gradient_checkpointing: bool = True
    attn_implementation: str = "sdpa"  # flash_attention_2 on GPUs that have it
    save_steps: int = 500
    save_total_limit: int | None = None
    logging_steps: int = 10
    seed: int = 42
    trust_remote_code: bool = False
    report_to: str = "none"

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.lr_scheduler not in SCHEDULERS:
            problems.append(("lr_scheduler", f"expected one of {', '.join(SCHEDULERS)}"))
        if self.dtype not in DTYPES:
            problems.append(("dtype", f"expected one of {', '.join(DTYPES)}"))
        for name in ("learning_rate", "per_device_batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) <= 0:
                problems.append((name, "must be > 0"))
        if self.max_steps <= 0 and self.num_epochs <= 0:
            problems.append(("num_epochs", "must be > 0 when max_steps is not set"))
        return problems


@dataclass
class PretrainConfig(Common):
    corpus: str = "out/corpus"  # a folder made by `medeval corpus`, or one JSONL file of {"text": ...}
    block_size: int = 2048
    tokenize_batch: int = 256

    def check(self):
        problems = super().check()
        if self.block_size < 2:
            problems.append(("block_size", "must be >= 2"))
        return problems


@dataclass
class SftConfig(Common):
    benchmark: str = "medqa"  # one adapter per benchmark (MMLU is scored with the medqa5 adapter)
    language: str = "en"
    split: str = "train"
    store: str | None = None  # default: $MEDTASKS_STORE or ~/.cache/medtasks/store
    shots: int = 0  # solved examples before the question, drawn from the same split
    max_length: int = 2048
    packing: bool = False  # on CPU attention, packed examples see each other: keep off unless flash-attn
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(PROJECTIONS))
    load_in_8bit: bool = False  # BioMistral loaded the base in 8-bit (needs medeval[quant])
    num_epochs: float = 3.0
    per_device_batch_size: int = 4

    def check(self):
        from medtasks.records import SPLITS
        from medtasks.spec import BENCHMARKS, LANGUAGES

        problems = super().check()
        if self.benchmark not in BENCHMARKS:
            problems.append(("benchmark", f"expected one of {', '.join(BENCHMARKS)}"))
        if self.language not in LANGUAGES:
            problems.append(("language", f"expected one of {', '.join(LANGUAGES)}"))
        if self.split not in SPLITS or self.split == "test":
            problems.append(("split", f"expected a training split ({', '.join(s for s in SPLITS if s != 'test')}); "
                                      "training on test questions contaminates the evaluation"))
        if self.shots < 0:
            problems.append(("shots", "must be >= 0"))
        if not self.target_modules:
            problems.append(("target_modules", "must name at least one module"))
        return problems


RECIPES: dict[str, type[Common]] = {"pretrain": PretrainConfig, "sft": SftConfig}


def _coerce(value: Any, hint: Any) -> Any:
    """Check `value` against a simple annotation (int/float/str/bool, optional, list[str])."""
    text = str(hint)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise TypeError("may not be null")
    if "list" in text:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
        return value
    for kind in (bool, int, float, str):
        if kind.__name__ in text.replace("list", ""):
            if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
                try:  # YAML 1.1 reads 2e-5 (no dot) as a string
                    return float(value)
                except ValueError:
                    pass
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
    raise TypeError(f"unsupported annotation {hint}")


def build(recipe: str, values: dict, source: str = "<config>", lines: dict | None = None) -> Common:
    """Make a validated config of `recipe` from a flat dict; errors name source, line and field."""
    if recipe not in RECIPES:
        raise ConfigError(source, None, "recipe", f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    cls = RECIPES[recipe]
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    lines = lines or {}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(source, lines.get(key), key, f"unknown field; valid: {', '.join(sorted(known))}")
        try:
            kwargs[key] = _coerce(value, hints[key])
        except TypeError as err:
            raise ConfigError(source, lines.get(key), key, str(err)) from None
    config = cls(**kwargs)
    for name, problem in config.check():
        raise ConfigError(source, lines.get(name), name, f"{problem}, got {getattr(config, name)!r}")
    return config


def load(path: str | Path, overrides: list[str] = ()) -> Common:
    """Read a recipe YAML (`recipe: pretrain|sft` plus fields) and apply `key=value` overrides."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConfigError(str(path), mark.line + 1 if mark else None, None, f"not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), 1, None, "expected a mapping of fields")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if node is not None else {}
    recipe = data.pop("recipe", None)
    if recipe is None:
        raise ConfigError(str(path), 1, "recipe", f"missing; expected one of {', '.join(RECIPES)}")
    data.update(parse_overrides(overrides))
    return build(recipe, data, str(path), lines)


def parse_overrides(items) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError("--set", None, item, "expected key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def to_yaml(config: Common) -> str:
    recipe = next(name for name, cls in RECIPES.items() if type(config) is cls)
    return yaml.safe_dump({"recipe": recipe, **dataclasses.asdict(config)}, sort_keys=False)
