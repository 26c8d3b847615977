"""Write a Llama/Mistral checkpoint as a GGUF file (Q8_0 or Q4_0) with the pure-Python `gguf` package.

This covers what llama.cpp's converter does for these two architectures: hyper-parameters,
tensor renaming, the rotary permutation of q/k rows that llama.cpp expects, block quantization
of 2-D weights (norms stay float32), and a byte-level BPE ("gpt2") tokenizer read from
tokenizer.json. SentencePiece-style tokenizers (byte-fallback BPE, e.g. Mistral-7B's) are refused
with a pointer to llama.cpp's own converter, rather than written approximately.
"""
from __future__ import annotations

import json
from pathlib import Path

from model_ops import ModelOpsError

_ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}
_QTYPES = ("Q8_0", "Q4_0")


def permute_qk(w, n_head: int, n_head_kv: int | None = None):
    """llama.cpp's rotary layout: interleave the two halves of each head's rows (inverse of the
    reverse permutation transformers applies when it reads GGUF)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _tokenizer(src: Path) -> tuple[list[str], list[int], list[str]]:
    """(tokens by id, token types, merges) of a byte-level BPE tokenizer.json."""
    import gguf

    tok_file = src / "tokenizer.json"
    if not tok_file.is_file():
        raise ModelOpsError(f"{src}: GGUF export needs tokenizer.json (fast tokenizer)")
    data = json.loads(tok_file.read_text(encoding="utf-8"))
    model = data.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ModelOpsError(
            f"{tok_file}: only byte-level BPE tokenizers are exported here (found {model.get('type')}, "
            f"byte_fallback={model.get('byte_fallback')}); for SentencePiece tokenizers use llama.cpp's "
            "convert_hf_to_gguf.py")
    vocab = dict(model["vocab"])
    special = {t["content"] for t in data.get("added_tokens", []) if t.get("special")}
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [None] * (max(vocab.values()) + 1)
    for token, idx in vocab.items():
        tokens[idx] = token
    if None in tokens:
        raise ModelOpsError(f"{tok_file}: token ids are not contiguous (id {tokens.index(None)} missing)")
    types = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, [int(t) for t in types], merges


def check_exportable(src: Path) -> tuple[dict, str]:
    """(config, architecture) when src can be exported; refuses otherwise, from config and tokenizer only."""
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in _ARCHS:
        raise ModelOpsError(f"{src}/config.json: architecture {arch} not supported for GGUF export "
                            f"(supported: {', '.join(_ARCHS)})")
    _tokenizer(src)
    return config, arch


def export_gguf(src: str | Path, out_file: str | Path, qtype: str = "Q8_0") -> Path:
    import gguf
    import numpy as np
    from safetensors import safe_open
    from tqdm import tqdm

    if qtype not in _QTYPES:
        raise ModelOpsError(f"unknown GGUF type {qtype!r}; valid: {', '.join(_QTYPES)}")
    src, out_file = Path(src), Path(out_file)
    config, arch = check_exportable(src)
    n_head, n_kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    rope = config.get("rope_parameters") or {}
    tokens, types, merges = _tokenizer(src)

    writer = gguf.GGUFWriter(out_file, "llama")  # llama.cpp runs Mistral as "llama"
    # Never exactly "mistral": transformers then maps the file to a Mistral arch that gguf 0.19 lacks
    # and fails; read as Llama it is the same network (Mistral's sliding window only acts past 4096).
    writer.add_name(f"{src.name} ({_ARCHS[arch]})")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(getattr(gguf.LlamaFileType, f"MOSTLY_{qtype}"))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    gguf.SpecialVocab(src, load_merges=False, n_vocab=len(tokens)).add_to_gguf(writer)

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    target = getattr(gguf.GGMLQuantizationType, qtype)
    block = gguf.GGML_QUANT_SIZES[target][0]
    files = sorted(src.glob("*.safetensors"))
    for file in tqdm(files, desc=f"GGUF {qtype}", unit="shard"):
        with safe_open(file, framework="pt") as sf:
            for name in sf.keys():
                new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
                if new_name is None:
                    raise ModelOpsError(f"{file}: tensor {name} has no GGUF name for {arch}")
                data = sf.get_tensor(name).float().numpy()
                if name.endswith("q_proj.weight"):
                    data = permute_qk(data, n_head, n_head)
                elif name.endswith("k_proj.weight"):
                    data = permute_qk(data, n_head, n_kv)
                if data.ndim == 2 and data.shape[-1] % block == 0:
                    writer.add_tensor(new_name, gguf.quants.quantize(data, target), raw_dtype=target)
                else:  # norms and rows that do not split into blocks stay float32, as llama.cpp does
                    writer.add_tensor(new_name, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_file
