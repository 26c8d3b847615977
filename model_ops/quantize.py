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

from medtasks.common import UsageError, require
from model_ops import ModelOpsError
from model_ops.card import describe_input, write_card
from model_ops.output import check_free, staged_dir


class QuantizationUnavailable(UsageError, RuntimeError):
    """The method cannot run here (hardware, library or model shapes); the message says what works instead."""


@dataclass(frozen=True)
class QuantMethod:
    name: str
    description: str
    reference: str
    run: Callable[..., dict]  # (src: Path, out: Path, **options) -> parameters recorded in the card
    extra: str  # the pip extra that provides the library
    check: Callable[[str, Path], None]  # (method, src): refuses before any weight is read or anything written


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                    "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja")


def _copy_tokenizer(src: Path, out: Path) -> None:
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)


# bitsandbytes 0.50 (pinned in the `quant` extra) has two CPU paths for 4-bit layers. On CPUs with
# AVX512-BF16 (e.g. Sapphire Rapids) the first forward pass repacks each weight for its fused kernel
# (functional._convert_weight_packed_for_cpu): rows in blocks of 32, and the per-block scales
# reshaped to [out_features, in_features / blocksize] with blocksize 64. Any other shape raises
# "shape '[N, 0]' is invalid" there, while the same folder works on an AVX2 CPU. We refuse such
# models on CPU whatever this CPU has, so a folder made here also loads on the next machine.
BNB4_BLOCKSIZE = 64
BNB4_ROW_BLOCK = 32


def quantized_linear_shapes(src: Path) -> dict[str, tuple[int, int]]:
    """(out_features, in_features) of every Linear layer that bitsandbytes replaces (all but the output
    head, which transformers keeps in full precision), read from a weightless (meta-device) skeleton."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(src, trust_remote_code=False)
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    except (ValueError, KeyError, OSError) as err:
        raise ModelOpsError(f"{src}/config.json: transformers cannot build this causal LM ("
                            + " ".join(str(err).split()) + ")") from None
    head = skeleton.get_output_embeddings()
    return {name: (module.out_features, module.in_features) for name, module in skeleton.named_modules()
            if type(module) is torch.nn.Linear and module is not head}


def bnb4_cpu_problems(shapes: dict[str, tuple[int, int]]) -> list[str]:
    """The layers bitsandbytes' packed CPU 4-bit kernel cannot take, as 'name out x in'."""
    return [f"{name} {out}x{inp}" for name, (out, inp) in shapes.items()
            if inp % BNB4_BLOCKSIZE or out % BNB4_ROW_BLOCK]


def _check_bnb(method: str, src: Path) -> None:
    bad = [] if method == "bnb-int8" or _cuda() else bnb4_cpu_problems(quantized_linear_shapes(src))
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        raise QuantizationUnavailable(
            f"{method} cannot quantize {src} for CPU: bitsandbytes' CPU 4-bit kernel (used on CPUs with "
            f"AVX512-BF16) needs in_features divisible by {BNB4_BLOCKSIZE} and out_features by {BNB4_ROW_BLOCK} "
            f"in every quantized layer, and {', '.join(bad[:3])}{more} are not; use bnb-int8, gguf-q4_0 or "
            "gptq-int4 instead, or quantize on a CUDA GPU")
    require("bitsandbytes", "quant", f"{method} quantization")


def _check_gptqmodel(method: str, src: Path) -> None:
    try:
        import gptqmodel  # noqa: F401
    except ImportError:
        raise QuantizationUnavailable(
            f"{method} needs gptqmodel, which is not installed: pip install gptqmodel==7.6.0 optimum==2.3.0 "
            "(7.7+ needs torch>=2.14.1; on CPU set GPTQMODEL_CPU_WORKERS=2 while it builds)") from None


def _check_awq(method: str, src: Path) -> None:
    if not _cuda():
        raise QuantizationUnavailable(
            "awq-int4 needs a CUDA GPU: AWQ's activation-aware scale search and its GEMM kernels run "
            "only on an accelerator, and no CUDA device is visible here; on CPU use gptq-int4, bnb-nf4, "
            "bnb-fp4 or gguf-q4_0, or run this command on a GPU machine")
    _check_gptqmodel(method, src)


def _check_gguf(method: str, src: Path) -> None:
    from model_ops.gguf_export import check_exportable

    check_exportable(src)


def _bnb(quant_type: str | None):
    def run(src: Path, out: Path, **_options) -> dict:
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


def _gptq(src: Path, out: Path, *, calibration: list[str], group_size: int = 128, **_options) -> dict:
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
                _bnb("nf4"), "quant", _check_bnb),
    QuantMethod("bnb-fp4", "bitsandbytes 4-bit float (transformers' default, BioMistral's BnB 4-bit)",
                "Dettmers et al., QLoRA, arXiv:2305.14314", _bnb("fp4"), "quant", _check_bnb),
    QuantMethod("bnb-int8", "bitsandbytes LLM.int8 8-bit", "Dettmers et al., LLM.int8(), arXiv:2208.07339",
                _bnb(None), "quant", _check_bnb),
    QuantMethod("gptq-int4", "GPTQ 4-bit, symmetric, group 128 (gptqmodel)",
                "Frantar et al., GPTQ, arXiv:2210.17323", _gptq, "gptqmodel==7.6.0", _check_gptqmodel),
    QuantMethod("awq-int4", "AWQ 4-bit, group 128, zero point, GEMM (gptqmodel; needs a GPU)",
                "Lin et al., AWQ, arXiv:2306.00978", _awq, "gptqmodel==7.6.0", _check_awq),
    QuantMethod("gguf-q8_0", "GGUF Q8_0 for llama.cpp (8-bit blocks of 32)",
                "ggml GGUF format, github.com/ggml-org/ggml/blob/master/docs/gguf.md", _gguf("Q8_0"), "gguf",
                _check_gguf),
    QuantMethod("gguf-q4_0", "GGUF Q4_0 for llama.cpp (4-bit blocks of 32)",
                "ggml GGUF format, github.com/ggml-org/ggml/blob/master/docs/gguf.md", _gguf("Q4_0"), "gguf",
                _check_gguf),
)}

_NEEDS_CALIBRATION = {"gptq-int4", "awq-int4"}


def get_method(name: str) -> QuantMethod:
    if name not in METHODS:
        raise KeyError(f"unknown quantization method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name]


def quantize(src: str | Path, out_dir: str | Path, method: str, *, calibration_file: str | Path | None = None,
             calibration_limit: int | None = None, group_size: int = 128) -> Path:
    """Quantize the model directory `src` with `method` into out_dir (with a model card).

    Everything that can refuse (method, source, output folder, machine, shapes, calibration file) is
    checked before any weight is read; the output folder appears only once it is complete."""
    qmethod = get_method(method)
    src, out_dir = Path(src), Path(out_dir)
    if not (src / "config.json").is_file():
        raise ModelOpsError(f"{src}: not a model directory (no config.json)")
    check_free(out_dir)
    qmethod.check(method, src)
    options = {"group_size": group_size}
    if method in _NEEDS_CALIBRATION:
        from model_ops.calibration import load_calibration

        options["calibration"] = load_calibration(calibration_file, calibration_limit)
    with staged_dir(out_dir) as staging:
        params = qmethod.run(src, staging, **options)
        if method in _NEEDS_CALIBRATION:
            params["calibration"] = str(calibration_file) if calibration_file else "built-in medical sample"
        write_card(staging, kind="quantization", method=method, parameters=params,
                   inputs=[describe_input(str(src), src)], reference=qmethod.reference,
                   notes=f"Evaluate: `lm_eval --model hf --model_args {eval_model_args(out_dir, staging)} "
                         "--tasks medqa_en`")
    return out_dir


def eval_model_args(model_dir: str | Path, files_in: str | Path | None = None) -> str:
    """The lm-eval `--model_args` that load this directory (GGUF needs the file and tokenizer named).
    files_in: where the files are now, when that is not yet model_dir (a folder being written)."""
    model_dir = Path(model_dir)
    ggufs = sorted(Path(files_in or model_dir).glob("*.gguf"))
    if ggufs:
        return f"pretrained={model_dir},gguf_file={ggufs[0].name},tokenizer={model_dir}"
    return f"pretrained={model_dir}"


def load_kwargs(model_dir: str | Path) -> dict:
    """from_pretrained keyword arguments matching eval_model_args (used by the variants table)."""
    ggufs = sorted(Path(model_dir).glob("*.gguf"))
    return {"gguf_file": ggufs[0].name} if ggufs else {}
