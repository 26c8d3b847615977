"""Tiny random seq2seq translation models (Marian, M2M100) with a sentencepiece tokenizer trained
on the spot, written to a temp dir in seconds. Nothing is downloaded.

Their final-logits bias favours end-of-sequence after a few tokens (min_new_tokens), so generation
ends the way a trained model's does; `stop=False` leaves it random, to exercise truncation checks.
"""
from __future__ import annotations

import json
from pathlib import Path

_CORPUS = [
    "Which of the following is the most likely diagnosis?",
    "A 45-year-old man presents with chest pain, fever and a cough for 3 days.",
    "Blood pressure is 120/80 mm Hg and the pulse is 90/min.",
    "Quel est le diagnostic le plus probable ? Un homme de 45 ans consulte pour une douleur thoracique.",
    "La pression artérielle est de 120/80 mm Hg. Le patient reçoit 5 mg de morphine.",
    "patient treatment disease protein gene cell heart lung kidney liver brain drug dose mg kg",
]


def _train_spm(out_dir: Path, vocab_size: int) -> Path:
    import sentencepiece as spm

    corpus = out_dir / "corpus.txt"
    corpus.write_text("\n".join(_CORPUS * 10), encoding="utf-8")
    prefix = out_dir / "spm"
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size,
                                   character_coverage=1.0, model_type="unigram", hard_vocab_limit=False, bos_id=-1, eos_id=-1,
                                   unk_id=0, pad_id=-1, minloglevel=2)
    corpus.unlink()
    return prefix.with_suffix(".model")


def _pieces(spm_path: Path) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _bias_to_eos(model, eos_id: int, min_new_tokens: int, stop: bool) -> None:
    import torch

    if stop:
        with torch.no_grad():
            model.final_logits_bias[0, eos_id] = 50.0
    model.generation_config.min_new_tokens = min_new_tokens
    model.generation_config.max_length = None


def build_tiny_marian(out_dir, seed: int = 0, stop: bool = True, vocab_size: int = 100) -> Path:
    import shutil

    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_path = _train_spm(out_dir, vocab_size)
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for piece in _pieces(spm_path):
        vocab.setdefault(piece, len(vocab))
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    shutil.copy(spm_path, out_dir / "source.spm")
    shutil.move(spm_path, out_dir / "target.spm")
    spm_path.with_suffix(".vocab").unlink()
    tokenizer = MarianTokenizer(str(out_dir / "source.spm"), str(out_dir / "target.spm"), str(out_dir / "vocab.json"))
    config = MarianConfig(vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=2, eos_token_id=0,
                          decoder_start_token_id=2, forced_eos_token_id=0)
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    _bias_to_eos(model, 0, 3, stop)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_m2m100(out_dir, seed: int = 0, vocab_size: int = 100) -> Path:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm_path = _train_spm(out_dir, vocab_size)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in _pieces(spm_path):
        vocab.setdefault(piece, len(vocab))
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    spm_path.rename(out_dir / "sentencepiece.bpe.model")
    spm_path.with_suffix(".vocab").unlink()
    tokenizer = M2M100Tokenizer(str(out_dir / "vocab.json"), str(out_dir / "sentencepiece.bpe.model"),
                                src_lang="en", tgt_lang="fr")
    vocab = max(tokenizer.lang_token_to_id.values()) + 1 + tokenizer.num_madeup_words  # language tokens sit after the pieces
    config = M2M100Config(vocab_size=vocab, d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, decoder_start_token_id=2)
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    with torch.no_grad():  # M2M100 has no logits bias: a constant direction in the final norm, aligned with EOS
        direction = torch.randn(32)
        model.model.decoder.layer_norm.weight.fill_(0.01)
        model.model.decoder.layer_norm.bias.copy_(direction)
        model.model.shared.weight[config.eos_token_id] = direction * 5
    model.generation_config.min_new_tokens = 3
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
