"""Continued pretraining on a prepared corpus with the HF Trainer (BioMistral's recipe by default).

    chunks -> tokenize, + EOS -> concatenate -> 2048-token blocks -> causal LM loss on every token
    AdamW, lr 2e-5 cosine, no warmup, weight decay 0.01, grad clip 1.0

Runs as is on one CPU or GPU, and under `accelerate launch` (FSDP, multi-node) with the configs
in training/configs/accelerate. Checkpoints (`checkpoint-<step>/`) and the final output are
ordinary model directories (safetensors + config + tokenizer) that lm_eval loads directly.
"""
from __future__ import annotations

import json
from pathlib import Path

from medtasks.common import UsageError
from training.config import Common, PretrainConfig, to_yaml


def load_model(config: Common, quantization_config=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if Path(config.model).is_dir() and not (Path(config.model) / "config.json").is_file():
        raise UsageError(f"model {config.model} is a folder without config.json: give a model folder or hub id")
    tokenizer = AutoTokenizer.from_pretrained(config.model, trust_remote_code=config.trust_remote_code)
    dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    model = AutoModelForCausalLM.from_pretrained(
        config.model, dtype=dtype, attn_implementation=config.attn_implementation,
        trust_remote_code=config.trust_remote_code, quantization_config=quantization_config)
    return model, tokenizer


def training_arguments(config: Common, cls=None, **extra):
    """Trainer arguments from a recipe config (`cls` lets SFT pass TRL's SFTConfig)."""
    if cls is None:
        from transformers import TrainingArguments as cls
    return cls(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        optim="adamw_torch",
        bf16=config.dtype == "bfloat16",
        fp16=config.dtype == "float16",
        activation_checkpointing=config.gradient_checkpointing,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to=config.report_to,
        **extra,
    )


def resolve_resume(resume: str | None, output_dir: str) -> str | bool | None:
    """None: fresh start; 'auto': the latest checkpoint in output_dir if any; else a checkpoint path."""
    if resume in (None, "", "no"):
        return None
    if resume == "auto":
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    if not Path(resume).is_dir():
        raise UsageError(f"--resume {resume}: no such checkpoint folder (or use --resume auto)")
    return resume


def run_pretrain(config: PretrainConfig, resume: str | None = None, progress_bar: bool = True):
    """Pack the corpus (once), train, save the final model to output_dir; returns the Trainer."""
    from transformers import Trainer, default_data_collator

    from training.corpus import corpus_files
    from training.pack import BlockDataset, tokenize_and_pack

    files = corpus_files(Path(config.corpus))  # checked before the model loads
    model, tokenizer = load_model(config)
    args = training_arguments(config, disable_tqdm=not progress_bar)
    with args.main_process_first(desc="tokenize and pack"):  # rank 0 packs, the others reuse its file
        blocks = tokenize_and_pack(files, tokenizer, config.block_size,
                                   Path(config.output_dir) / "data", config.tokenize_batch, progress_bar)
    dataset = BlockDataset(blocks, config.block_size)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      data_collator=default_data_collator)
    trainer.train(resume_from_checkpoint=resolve_resume(resume, config.output_dir))
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        Path(config.output_dir, "recipe.yaml").write_text(to_yaml(config))
        summary = json.loads(blocks.with_suffix(".json").read_text())
        Path(config.output_dir, "training_card.json").write_text(json.dumps(
            {"recipe": "pretrain", "base_model": config.model, "corpus": config.corpus,
             "data": {k: v for k, v in summary.items() if k != "key"},
             "global_step": trainer.state.global_step}, indent=1) + "\n")
    return trainer
