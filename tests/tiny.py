"""Tiny random causal LMs built in a temp dir, with a byte-level BPE tokenizer trained on the spot.

Nothing is downloaded: every test that needs "a model" uses one of these (seconds to build).
"""
from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "The following are multiple choice questions (with answers) about medical knowledge.",
    "**Question:** Which of the following is the most likely diagnosis? \n (A) yes \n (B) no \n (C) maybe \n **Answer:**(A",
    "A 45-year-old man presents with chest pain, fever and a cough. Blood pressure is 120/80 mm Hg.",
    "patient treatment disease protein gene cell heart lung kidney liver brain drug dose mg kg",
    "ABCDE abcdefghijklmnopqrstuvwxyz 0123456789 ()[]{}.,;:!?-+*/%=<>'\"",
]


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>"
    )


def build_tiny_model(out_dir: str | Path, arch: str = "llama", seed: int = 0, hidden: int = 32,
                     layers: int = 2, vocab_size: int = 400) -> Path:
    """Write a random `arch` ("llama" or "mistral") model + tokenizer to out_dir (safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(vocab_size)
    config_cls = {"llama": LlamaConfig, "mistral": MistralConfig}[arch]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
