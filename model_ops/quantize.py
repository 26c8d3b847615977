"""Quantization methods in one registry; each writes a loadable directory with a model card.

| name       | library                   | runs on  | output                              |
|------------|---------------------------|----------|-------------------------------------|
| bnb-nf4    | bitsandbytes              | CPU, GPU | HF dir (4-bit NormalFloat)          |
| bnb-fp4    | bitsandbytes              | CPU, GPU | HF dir (BioMistral's 4-bit default) |
| bnb-int8   | bitsandbytes (LLM.int8)   | CPU, GPU | HF dir                              |
| gptq-int4  | gptqmodel                 | CPU, GPU | HF dir (GPTQ format)                |
| awq-int4   | gptqmodel (AWQ GEMM)      | GPU only | HF dir (AWQ format)                 |
| gguf-q8_0  | gguf (pure Python)        | CPU      | dir with model-Q8_0.gguf + tokenizer|
| gguf-q4_0  | gguf (pure Python)        | CPU      | dir with model-Q4_0.gguf + tokenizer|
Every output evaluates with `lm_eval --model hf --model_args pretrained=DIR` (GGUF: add
`gguf_file=model-Q8_0.gguf,tokenizer=DIR`); `eval_model_args(DIR)` prints the right string.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from medtasks.common import UsageError
from model_ops.card import describe_input, write_card


class QuantizationUnavailable(UsageError, RuntimeError):
    """The method cannot run here (missing hardware or library); the message says what to do."""


@dataclass(frozen=True)
class QuantMethod:
    name: str
    description: str
    reference: str
    run: Callable[..., dict]  # (src: Path, out: Path, **options) -> parameters recorded in the card
    extra: str  # the pip extra that provides the library


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                    "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja")


def _copy_tokenizer(src: Path, out: Path) -> None:
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)


def _bnb(quant_type: str | None):
    def run(src: Path, out: Path, **_options) -> dict:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as err:
            raise ImportError("bitsandbytes quantization needs: pip install 'medeval[quant]'") from err
        import torch
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        if quant_type is None:
            params = {"load_in_8bit": True}
        else:  # compute in float32 on CPU (bf16 matmuls are slow there), bf16 on GPU as BioMistral
            compute = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            params = {"load_in_4bit": True, "bnb_4bit_quant_type": quant_type,
                      "bnb_4bit_compute_dtype": compute}
        device_map = "auto" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(src, quantization_config=BitsAndBytesConfig(**params),
                                                     device_map=device_map, trust_remote_code=False)
        model.save_pretrained(out, safe_serialization=True)
        _copy_tokenizer(src, out)
        return {k: str(v) for k, v in params.items()}
    return run


def _require_gptqmodel():
    try:
        import gptqmodel  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "GPTQ/AWQ need gptqmodel: pip install gptqmodel==7.6.0 (7.7+ needs torch>=2.14.1; on CPU set "
            "GPTQMODEL_CPU_WORKERS=2 while it builds)") from err


def _gptq(src: Path, out: Path, *, calibration: list[str], group_size: int = 128, **_options) -> dict:
    _require_gptqmodel()
    from gptqmodel import GPTQModel, QuantizeConfig

    qconfig = QuantizeConfig(bits=4, group_size=group_size, desc_act=False, sym=True)
    device = "cuda" if _cuda() else "cpu"
    model = GPTQModel.load(str(src), qconfig, trust_remote_code=False, device=device)
    model.quantize(calibration, batch_size=1)
    model.save(str(out))
    _copy_tokenizer(src, out)
    return {"bits": 4, "group_size": group_size, "sym": True, "desc_act": False,
            "calibration_samples": len(calibration)}


def _awq(src: Path, out: Path, *, calibration: list[str], group_size: int = 128, **_options) -> dict:
    if not _cuda():
        raise QuantizationUnavailable(
            "awq-int4 needs a CUDA GPU: AWQ's activation-aware scale search and its GEMM kernels run "
            "only on an accelerator, and no CUDA device is visible here. On CPU use gptq-int4, bnb-nf4, "
            "bnb-fp4 or gguf-q4_0; or run this command on a GPU machine.")
    _require_gptqmodel()
    from gptqmodel import GPTQModel
    from gptqmodel.quantization.config import AWQConfig

    # BioMistral's AWQ: 4-bit, group 128, zero point (asymmetric), GEMM kernels.
    qconfig = AWQConfig(bits=4, group_size=group_size, sym=False)
    model = GPTQModel.load(str(src), qconfig, trust_remote_code=False, device="cuda")
    model.quantize(calibration, batch_size=1)
    model.save(str(out))
    _copy_tokenizer(src, out)
    return {"bits": 4, "group_size": group_size, "zero_point": True, "format": "gemm",
            "calibration_samples": len(calibration)}


def _gguf(qtype: str):
    def run(src: Path, out: Path, **_options) -> dict:
        from model_ops.gguf_export import export_gguf

        export_gguf(src, out / gguf_filename(qtype), qtype)
        _copy_tokenizer(src, out)
        shutil.copy2(src / "config.json", out / "config.json")
        return {"type": qtype, "file": gguf_filename(qtype)}
    return run


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def gguf_filename(qtype: str) -> str:
    return f"model-{qtype}.gguf"


METHODS: dict[str, QuantMethod] = {m.name: m for m in (
    QuantMethod("bnb-nf4", "bitsandbytes 4-bit NormalFloat", "Dettmers et al., QLoRA, arXiv:2305.14314",
                _bnb("nf4"), "quant"),
    QuantMethod("bnb-fp4", "bitsandbytes 4-bit float (transformers' default, BioMistral's BnB 4-bit)",
                "Dettmers et al., QLoRA, arXiv:2305.14314", _bnb("fp4"), "quant"),
    QuantMethod("bnb-int8", "bitsandbytes LLM.int8 8-bit", "Dettmers et al., LLM.int8(), arXiv:2208.07339",
                _bnb(None), "quant"),
    QuantMethod("gptq-int4", "GPTQ 4-bit, symmetric, group 128 (gptqmodel)",
                "Frantar et al., GPTQ, arXiv:2210.17323", _gptq, "gptqmodel==7.6.0"),
    QuantMethod("awq-int4", "AWQ 4-bit, group 128, zero point, GEMM (gptqmodel; needs a GPU)",
                "Lin et al., AWQ, arXiv:2306.00978", _awq, "gptqmodel==7.6.0"),
    QuantMethod("gguf-q8_0", "GGUF Q8_0 for llama.cpp (8-bit blocks of 32)",
                "ggml GGUF format, github.com/ggml-org/ggml/blob/master/docs/gguf.md", _gguf("Q8_0"), "gguf"),
    QuantMethod("gguf-q4_0", "GGUF Q4_0 for llama.cpp (4-bit blocks of 32)",
                "ggml GGUF format, github.com/ggml-org/ggml/blob/master/docs/gguf.md", _gguf("Q4_0"), "gguf"),
)}

_NEEDS_CALIBRATION = {"gptq-int4", "awq-int4"}


def get_method(name: str) -> QuantMethod:
    if name not in METHODS:
        raise KeyError(f"unknown quantization method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def quantize(src: str | Path, out_dir: str | Path, method: str, *, calibration_file: str | Path | None = None,
             calibration_limit: int | None = None, group_size: int = 128) -> Path:
    """Quantize the model directory `src` with `method` into out_dir (with a model card)."""
    qmethod = get_method(method)
    src, out_dir = Path(src), Path(out_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: not a model directory (no config.json)")
    options = {"group_size": group_size}
    if method in _NEEDS_CALIBRATION:
        from model_ops.calibration import load_calibration

        options["calibration"] = load_calibration(calibration_file, calibration_limit)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = qmethod.run(src, out_dir, **options)
    if method in _NEEDS_CALIBRATION:
        params["calibration"] = str(calibration_file) if calibration_file else "built-in medical sample"
    write_card(out_dir, kind="quantization", method=method, parameters=params,
               inputs=[describe_input(str(src), src)], reference=qmethod.reference,
               notes=f"Evaluate: `lm_eval --model hf --model_args {eval_model_args(out_dir)} --tasks medqa_en`")
    return out_dir


def eval_model_args(model_dir: str | Path) -> str:
    """The lm-eval `--model_args` that load this directory (GGUF needs the file and tokenizer named)."""
    model_dir = Path(model_dir)
    ggufs = sorted(model_dir.glob("*.gguf"))
    if ggufs:
        return f"pretrained={model_dir},gguf_file={ggufs[0].name},tokenizer={model_dir}"
    return f"pretrained={model_dir}"


def load_kwargs(model_dir: str | Path) -> dict:
    """from_pretrained keyword arguments matching eval_model_args (used by the variants table)."""
    ggufs = sorted(Path(model_dir).glob("*.gguf"))
    return {"gguf_file": ggufs[0].name} if ggufs else {}
