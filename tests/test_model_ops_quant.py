"""model_ops quantization on a tiny random Mistral: each CPU method stays close to the original,
writes a card, and evaluates through lm_eval (slow); AWQ refuses CPU; registry, calibration,
GGUF details and the variants table."""
import json
import os
import subprocess
import sys

import pytest
import torch

from model_ops.calibration import BUILTIN, load_calibration
from model_ops.card import read_card
from model_ops.quantize import (METHODS, QuantizationUnavailable, eval_model_args, get_method, load_kwargs,
                                quantize)

IDS = torch.tensor([[5, 17, 40, 99, 3, 250, 12, 7, 64, 128, 33, 2]])
# Max |logit difference| / max |original logit| on a random 2-layer model (logits ~0.4): measured
# 8-bit ~1%, 4-bit 5-17%. The bounds leave room for seeds but catch a broken conversion (~100%+).
TOLERANCE = {"bnb-int8": 0.05, "gguf-q8_0": 0.05, "bnb-nf4": 0.3, "bnb-fp4": 0.3, "gguf-q4_0": 0.35,
             "gptq-int4": 0.3}
CPU_METHODS = ["bnb-nf4", "bnb-fp4", "bnb-int8", "gguf-q8_0", "gguf-q4_0"]


def logits(model_dir, **kwargs):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, device_map="cpu", **kwargs).eval()
    with torch.no_grad():
        return model(IDS).logits.float(), model


@pytest.fixture(scope="module")
def reference(tiny_mistral):
    return logits(tiny_mistral)[0]


@pytest.fixture(scope="module")
def quantized(tiny_mistral, tmp_path_factory):
    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = quantize(tiny_mistral, tmp_path_factory.mktemp(method) / "out", method, group_size=32)
        return cache[method]
    return get


@pytest.mark.parametrize("method", CPU_METHODS)
def test_quantized_logits_stay_close(method, quantized, reference, tiny_mistral):
    pytest.importorskip("bitsandbytes" if method.startswith("bnb") else "gguf")
    out = quantized(method)
    got, model = logits(out, **load_kwargs(out))
    rel = ((got - reference).abs().max() / reference.abs().max()).item()
    assert 0 < rel <= TOLERANCE[method], rel  # > 0: the weights really were quantized
    assert got.argmax(-1).eq(reference.argmax(-1)).float().mean() >= 0.5 if method in ("bnb-int8", "gguf-q8_0") else True
    card = read_card(out)
    assert card["kind"] == "quantization" and card["method"] == method
    assert card["inputs"][0]["model"] == str(tiny_mistral) and len(card["inputs"][0]["sha256"]) == 64
    assert (out / "tokenizer.json").is_file()


@pytest.mark.parametrize("method", ["bnb-nf4", "bnb-int8"])
def test_bnb_weights_are_stored_quantized(method, quantized):
    pytest.importorskip("bitsandbytes")
    from safetensors import safe_open

    out = quantized(method)
    with safe_open(out / "model.safetensors", "pt") as sf:
        dtype = sf.get_tensor("model.layers.0.mlp.up_proj.weight").dtype
    assert dtype in (torch.uint8, torch.int8)
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "bitsandbytes"


@pytest.mark.parametrize("qtype,ratio", [("gguf-q8_0", 0.32), ("gguf-q4_0", 0.20)])
def test_gguf_file_is_small_and_readable(qtype, ratio, quantized, tiny_mistral):
    gguf = pytest.importorskip("gguf")
    out = quantized(qtype)
    file = next(out.glob("*.gguf"))
    # float32 -> 8.5 bits (Q8_0) / 4.5 bits (Q4_0) per weight, norms stay float32
    assert file.stat().st_size < ratio * 1.25 * (tiny_mistral / "model.safetensors").stat().st_size
    reader = gguf.GGUFReader(file)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == qtype.split("-")[1].upper()
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert eval_model_args(out) == f"pretrained={out},gguf_file={file.name},tokenizer={out}"


def test_permute_qk_is_inverted_by_transformers():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from model_ops.gguf_export import permute_qk

    w = torch.randn(16, 32).numpy()
    proc = LlamaTensorProcessor(config={"num_attention_heads": 4, "num_key_value_heads": 2})
    for n_kv in (4, 2):
        back = proc._reverse_permute_weights(permute_qk(w[: 16 * n_kv // 4], 4, n_kv), 4, n_kv)
        assert (back == w[: 16 * n_kv // 4]).all()
        assert not (permute_qk(w[: 16 * n_kv // 4], 4, n_kv) == w[: 16 * n_kv // 4]).all()


def test_gguf_refuses_sentencepiece_tokenizers(tiny_mistral, tmp_path):
    import shutil

    from model_ops.gguf_export import export_gguf

    src = tmp_path / "spm"
    shutil.copytree(tiny_mistral, src)
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["model"]["byte_fallback"] = True
    (src / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match="only byte-level BPE.*convert_hf_to_gguf.py"):
        export_gguf(src, tmp_path / "x.gguf", "Q8_0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal; a GPU is present")
def test_awq_refuses_cpu_with_a_clear_message(tiny_mistral, tmp_path):
    with pytest.raises(QuantizationUnavailable, match="awq-int4 needs a CUDA GPU.*gptq-int4"):
        quantize(tiny_mistral, tmp_path / "awq", "awq-int4")
    from medtasks.cli import main

    assert main(["quantize", str(tiny_mistral), "--method", "awq-int4", "--out", str(tmp_path / "awq2")]) == 1


def test_gptq_real_path(tiny_mistral, tmp_path, reference):
    pytest.importorskip("gptqmodel", reason="gptqmodel not installed (pip install gptqmodel==7.6.0; see README)")
    pytest.importorskip("optimum.gptq", reason="transformers loads GPTQ checkpoints through optimum")
    out = quantize(tiny_mistral, tmp_path / "gptq", "gptq-int4", group_size=32)
    got, _ = logits(out)
    rel = ((got - reference).abs().max() / reference.abs().max()).item()
    assert 0 < rel <= TOLERANCE["gptq-int4"]
    assert read_card(out)["parameters"]["calibration"] == "built-in medical sample"


def test_registry_lists_valid_methods():
    assert list(METHODS) == ["bnb-nf4", "bnb-fp4", "bnb-int8", "gptq-int4", "awq-int4", "gguf-q8_0", "gguf-q4_0"]
    with pytest.raises(KeyError, match="valid methods: bnb-nf4, bnb-fp4"):
        get_method("int3")


def test_calibration_sources(tmp_path):
    assert load_calibration() == BUILTIN and len(BUILTIN) >= 10
    (tmp_path / "c.txt").write_text("first paragraph\nstill first\n\nsecond\n")
    assert load_calibration(tmp_path / "c.txt") == ["first paragraph\nstill first", "second"]
    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}\n{"txt": "c"}\n')
    with pytest.raises(ValueError, match=r"c.jsonl:4: field 'text'"):
        load_calibration(tmp_path / "c.jsonl")
    (tmp_path / "d.json").write_text('["x", "y", "z"]')
    assert load_calibration(tmp_path / "d.json", limit=2) == ["x", "y"]


def test_variants_relative_rows_and_markdown():
    from model_ops.variants import relative_rows, to_markdown

    rows = relative_rows([
        {"name": "original", "size_bytes": 1000, "peak_load_mb": 200.0, "tokens_per_s": 10.0, "mean_acc": 0.5},
        {"name": "bnb-nf4", "size_bytes": 300, "peak_load_mb": 80.0, "tokens_per_s": 25.0, "mean_acc": 0.45},
        {"name": "gguf", "size_bytes": 500, "peak_load_mb": 100.0, "tokens_per_s": 5.0, "mean_acc": None},
    ])
    assert [r["size_ratio"] for r in rows] == [1.0, 0.3, 0.5]
    assert [r["memory_ratio"] for r in rows] == [1.0, 0.4, 0.5]
    assert [r["speed_ratio"] for r in rows] == [1.0, 2.5, 0.5]
    assert [r["acc_delta"] for r in rows] == [0.0, -0.05, None]
    md = to_markdown(rows).splitlines()
    assert md[0].startswith("| model | size (MB)") and len(md) == 5
    assert md[3].split("|")[-2].strip() == "-0.050" and md[4].split("|")[-2].strip() == "-"


def _lm_eval(model_args, tmp_path, shared_data):
    env = dict(os.environ, MEDTASKS_DATA=str(shared_data), MEDTASKS_STORE=str(tmp_path / "store"))
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", model_args, "--device", "cpu",
                           "--tasks", "medqa_en", "--limit", "3", "--output_path", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(out.rglob("results_*.json")).read_text())
    return result["results"]["medqa_en"]


@pytest.mark.parametrize("method", ["bnb-nf4", "gguf-q8_0"])
def test_lm_eval_evaluates_the_quantized_directory(method, quantized, tmp_path, shared_data):
    pytest.importorskip("bitsandbytes" if method.startswith("bnb") else "gguf")
    metrics = _lm_eval(eval_model_args(quantized(method)), tmp_path, shared_data)
    assert 0.0 <= metrics["acc,none"] <= 1.0 and "strict_acc,none" in metrics


def test_variants_command_writes_markdown_and_json(quantized, tiny_mistral, tmp_path, shared_data, monkeypatch):
    pytest.importorskip("gguf")
    from medtasks.cli import main

    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path / "store"))
    q8 = quantized("gguf-q8_0")
    assert main(["variants", "--original", str(tiny_mistral), "--variant", f"q8={q8}", "--tasks", "medqa_en",
                 "--limit", "2", "--new-tokens", "8", "--out", str(tmp_path / "table")]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    names = [r["name"] for r in table["rows"]]
    assert names == ["original", "q8"]
    q8_row = table["rows"][1]
    assert q8_row["size_ratio"] < 0.5 and q8_row["tokens_per_s"] > 0 and q8_row["peak_load_mb"] > 0
    assert set(q8_row["accuracy"]) == {"medqa_en"} and q8_row["acc_delta"] is not None
    assert "| q8 |" in (tmp_path / "table.md").read_text()
