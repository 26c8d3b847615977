"""LoRA SFT on a benchmark's train split, one adapter per benchmark (BioMistral's recipe by default).

Examples come from the store through medtasks.prompts, the same builder the lm-eval tasks use:

    prompt     = build_prompt(question [, shots])     ... **Answer:**(
    completion = the gold letter                       loss on this token only

Prompt and letter are tokenized separately and concatenated, exactly as lm-eval scores a
loglikelihood request (context tokens + continuation tokens); no EOS follows the letter.
Defaults: r 16, alpha 16, dropout 0.05 on all projection layers, lr 2e-5 cosine, 3 epochs,
batch 4 x grad-accum 2, optional 8-bit base. The adapter loads in lm-eval with
`--model hf --model_args pretrained=BASE,peft=ADAPTER`; `merge_adapter` folds it into a full model.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable

from medtasks.common import UsageError, require
from medtasks.prompts import build_prompt
from medtasks.records import Record
from medtasks.spec import BENCHMARKS, SOURCE_LANGUAGE, task_name
from medtasks.store import MissingData, has_split, read_records, split_path
from training.config import SftConfig, to_yaml

# BioMistral trains four adapters; the six MMLU subjects (no train split) are scored with medqa5's.
ADAPTER_BENCHMARKS = ("medqa", "medqa5", "medmcqa", "pubmedqa")
HUB_TRAIN = ("medqa", "medmcqa")  # English hub datasets with a train split (medtasks/sources/hub.py)
OFFLINE_POOL = ("medqa", "medmcqa", "pubmedqa")  # English few-shot pools that `medeval import --data` stores


def adapter_for(benchmark: str) -> str:
    """Which adapter evaluates `benchmark` (mmlu_* -> medqa5, as BioMistral did)."""
    return "medqa5" if benchmark.startswith("mmlu_") else benchmark


def served_by(adapter: str) -> list[str]:
    """The benchmarks an adapter evaluates (medqa5 -> medqa5 and the six MMLU subjects)."""
    return [key for key in BENCHMARKS if adapter_for(key) == adapter]


def check_split(config: SftConfig, store: Path) -> None:
    """Fail before loading anything when the split is missing, saying which import provides it."""
    key, where = f"{config.benchmark}/{config.language}/{config.split}", f"the store at {store}"
    if adapter_for(config.benchmark) != config.benchmark:
        raise MissingData(f"{config.benchmark} has no train split: BioMistral scores it with the "
                          f"{adapter_for(config.benchmark)} adapter (--set benchmark={adapter_for(config.benchmark)})")
    if has_split(store, config.benchmark, config.language, config.split):
        return
    ways = [f"`medeval import --bioinstructqa data.zip --benchmarks {config.benchmark} --languages {config.language}`"]
    if config.language == SOURCE_LANGUAGE and config.benchmark in HUB_TRAIN:
        ways.insert(0, f"`medeval import --hub --benchmarks {config.benchmark}`")
    hint = f"{config.split} split: import it with " + " or ".join(ways)
    if config.split != "fewshot" and has_split(store, config.benchmark, config.language, "fewshot"):
        pool = split_path(store, config.benchmark, config.language, "fewshot")
        count = sum(1 for line in pool.open(encoding="utf-8") if line.strip())
        hint += f"; offline, train on the few-shot pool: --set split=fewshot ({count} questions in the store)"
    elif config.split != "fewshot" and config.language == SOURCE_LANGUAGE and config.benchmark in OFFLINE_POOL:
        hint += (f"; offline, `medeval import --data DIR --benchmarks {config.benchmark}` stores its few-shot pool: "
                 "then train on it with --set split=fewshot")
    raise MissingData(f"{key} is not in {where}; for the {hint}")


def _item(record: Record) -> dict:
    return {"question": record.question, "options": record.options, "answer": record.answer,
            "context": record.context}


def sft_examples(records: list[Record], shots: int = 0, seed: int = 0) -> list[dict]:
    """{id, prompt, completion} per record; `shots` solved examples come from the other records."""
    if shots and len(records) <= shots:
        raise ValueError(f"{shots} shots need more than {shots} records, got {len(records)}")
    rng = random.Random(seed)
    out = []
    for record in records:
        examples = []
        if shots:
            examples = [r for r in rng.sample(records, shots + 1) if r.id != record.id][:shots]
        out.append({"id": record.id, "prompt": build_prompt(_item(record), [_item(e) for e in examples]),
                    "completion": record.answer})
    return out


def tokenize_example(prompt: str, completion: str, tokenizer, max_length: int) -> dict:
    """input_ids = prompt tokens + completion tokens; completion_mask marks the completion.

    Too long: the prompt loses tokens from its start, so the question end and the answer stay.
    """
    prompt_ids = tokenizer(prompt)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if not completion_ids:
        raise ValueError(f"completion {completion!r} tokenizes to nothing")
    keep = max_length - len(completion_ids)
    truncated = len(prompt_ids) > keep
    prompt_ids = prompt_ids[-keep:] if truncated else prompt_ids
    return {"input_ids": prompt_ids + completion_ids,
            "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids), "truncated": truncated}


def build_dataset(examples: Iterable[dict], tokenizer, max_length: int):
    from datasets import Dataset

    rows = [tokenize_example(e["prompt"], e["completion"], tokenizer, max_length) for e in examples]
    return Dataset.from_list(rows)


def run_sft(config: SftConfig, resume: str | None = None, progress_bar: bool = True):
    """Train one LoRA adapter on the store's split and save it (plus tokenizer and card) to output_dir."""
    from medtasks.store import default_store, read_manifest
    from training.pretrain import load_model, resolve_resume, training_arguments

    store = Path(config.store) if config.store else default_store()
    check_split(config, store)
    peft = require("peft", "training", "LoRA SFT")
    trl = require("trl", "training", "LoRA SFT")
    records = read_records(store, config.benchmark, config.language, config.split)
    examples = sft_examples(records, config.shots, config.seed)
    quantization = None
    if config.load_in_8bit:
        require("bitsandbytes", "quant", "an 8-bit base (load_in_8bit)")
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_8bit=True)
    model, tokenizer = load_model(config, quantization)
    if config.load_in_8bit:
        model = peft.prepare_model_for_kbit_training(model, config.gradient_checkpointing)
    dataset = build_dataset(examples, tokenizer, config.max_length)
    truncated = sum(dataset["truncated"])
    dataset = dataset.remove_columns("truncated")
    lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                           target_modules=list(config.target_modules), task_type="CAUSAL_LM")
    args = training_arguments(config, cls=trl.SFTConfig, max_length=config.max_length, packing=config.packing,
                              completion_only_loss=True, disable_tqdm=not progress_bar)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
    trainer.train(resume_from_checkpoint=resolve_resume(resume, config.output_dir))
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        key = f"{config.benchmark}/{config.language}/{config.split}"
        tasks = ",".join(task_name(b, config.language) for b in served_by(config.benchmark))
        Path(config.output_dir, "recipe.yaml").write_text(to_yaml(config))
        Path(config.output_dir, "training_card.json").write_text(json.dumps(
            {"recipe": "sft", "base_model": config.model, "data": key, "examples": len(examples),
             "truncated": truncated, "store_entry": read_manifest(store).get(key),
             "prompt": "medtasks.prompts.build_prompt", "shots": config.shots,
             "global_step": trainer.state.global_step,
             "evaluate": f"lm_eval --model hf --model_args pretrained={config.model},peft={config.output_dir} "
                         f"--tasks {tasks}"}, indent=1) + "\n")
    return trainer


def merge_adapter(adapter: str | Path, output: str | Path, base: str | None = None, dtype: str = "float32",
                  trust_remote_code: bool = False) -> Path:
    """Fold a LoRA adapter into its base: a full safetensors model directory at `output`."""
    adapter, output = Path(adapter), Path(output)
    if not (adapter / "adapter_config.json").is_file():  # checked before the 20 s of heavy imports
        raise UsageError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json): give one `medeval sft` wrote")
    try:
        recorded = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (ValueError, AttributeError):
        raise UsageError(f"{adapter}/adapter_config.json is not a JSON object: give an adapter `medeval sft` wrote") from None
    base = base or recorded
    if not base:
        raise UsageError(f"{adapter}/adapter_config.json names no base model (base_model_name_or_path): pass --base")
    peft = require("peft", "training", "merging a LoRA adapter")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype),
                                                 trust_remote_code=trust_remote_code)
    merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(output, safe_serialization=True)
    has_tokenizer = any((adapter / name).exists() for name in ("tokenizer.json", "tokenizer_config.json"))
    AutoTokenizer.from_pretrained(str(adapter) if has_tokenizer else base,
                                  trust_remote_code=trust_remote_code).save_pretrained(output)
    (output / "training_card.json").write_text(json.dumps(
        {"recipe": "merge-adapter", "base_model": base, "adapter": str(adapter), "dtype": dtype}, indent=1) + "\n")
    return output
