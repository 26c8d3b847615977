"""model_ops quantization on a tiny random Mistral: each CPU method stays close to the original on
both of bitsandbytes' CPU kernel paths, writes a card, and evaluates through lm_eval; refusals
(AWQ on CPU, 4-bit shapes bitsandbytes' CPU kernel cannot take) come before any weight is read and
leave no output folder; registry, calibration, GGUF details and the variants table."""
import copy
import json

import pytest
import torch

from lm_eval_run import letter_scores, load_run, run_lm_eval
from medtasks.common import model_content_hash
from model_ops.calibration import BUILTIN, load_calibration
from model_ops.card import read_card
from model_ops.quantize import (METHODS, QuantizationUnavailable, bnb4_cpu_problems, eval_model_args, get_method,
                                load_kwargs, quantize, quantized_linear_shapes)

IDS = torch.tensor([[5, 17, 40, 99, 3, 250, 12, 7, 64, 128, 33, 2]])
# Quantized logits vs the original's on a random 2-layer, 64-wide Mistral (logits ~0.6 in size):
# (max |difference| / max |original logit|, Pearson correlation over all logits), measured with
# seeds 0 and 1: 8-bit rel 0.8-1.3% and corr 0.9999; bnb 4-bit rel 12-14%, corr 0.989-0.995;
# gguf-q4_0 rel 16-24%, corr 0.984-0.989. A broken conversion gives rel ~100% and corr ~0.
TOLERANCE = {  # method: (largest relative error, smallest correlation)
    "bnb-int8": (0.05, 0.999), "gguf-q8_0": (0.05, 0.999),
    "bnb-nf4": (0.3, 0.97), "bnb-fp4": (0.3, 0.97), "gguf-q4_0": (0.35, 0.97), "gptq-int4": (0.3, 0.97),
}
CPU_METHODS = ["bnb-nf4", "bnb-fp4", "bnb-int8", "gguf-q8_0", "gguf-q4_0"]


def logits(model_dir, **kwargs):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, device_map="cpu", **kwargs).eval()
    with torch.no_grad():
        return model(IDS).logits.float(), model


def assert_close(method, got, reference):
    rel = ((got - reference).abs().max() / reference.abs().max()).item()
    corr = torch.corrcoef(torch.stack([got.flatten(), reference.flatten()]))[0, 1].item()
    max_rel, min_corr = TOLERANCE[method]
    assert 0 < rel <= max_rel, (method, rel)  # > 0: the weights really were quantized
    assert corr >= min_corr, (method, corr)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """64 wide: every quantized layer fits bitsandbytes' packed CPU 4-bit kernel (tiny_mistral, 32 wide, does not)."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny64"), "mistral", seed=0, hidden=64)


@pytest.fixture(scope="module")
def reference(source):
    return logits(source)[0]


@pytest.fixture(scope="module")
def quantized(source, tmp_path_factory):
    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = quantize(source, tmp_path_factory.mktemp(method) / "out", method, group_size=32)
        return cache[method]
    return get


def test_tolerances_can_fail(reference, tmp_path):
    """The correlation floor rejects a model that is not the original (another random seed)."""
    from tiny import build_tiny_model

    other = logits(build_tiny_model(tmp_path / "other", "mistral", seed=1, hidden=64))[0]
    with pytest.raises(AssertionError):
        assert_close("gguf-q4_0", other, reference)


@pytest.mark.parametrize("method", CPU_METHODS)
def test_quantized_logits_stay_close(method, quantized, reference, source):
    """On this CPU's own bitsandbytes kernel path (the packed one where the CPU has AVX512-BF16)."""
    out = quantized(method)
    got, _ = logits(out, **load_kwargs(out))
    assert_close(method, got, reference)
    card = read_card(out)
    assert card["kind"] == "quantization" and card["method"] == method
    assert card["inputs"][0]["model"] == str(source)
    assert card["inputs"][0]["sha256"] == model_content_hash(str(source))  # what results provenance records
    assert (out / "tokenizer.json").is_file()


def _packed_kernel_in_torch(A, B, out=None, transposed_A=False, transposed_B=False, state=None):
    """What bitsandbytes' AVX512-BF16 kernel computes, in plain torch, so that its path runs on any CPU:
    undo the repacking (bitsandbytes' own inverse; the scales stay [in/blocksize, out]) and multiply."""
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse, dequantize_4bit

    assert state.packing_format_for_cpu
    qweight, unpacked = _convert_weight_packed_for_cpu_inverse(B.clone(), copy.copy(state))
    unpacked.absmax = state.absmax.T.reshape(-1).float()
    weight = dequantize_4bit(qweight, unpacked)
    return torch.nn.functional.linear(A, weight.to(A.dtype))


@pytest.fixture
def bnb_cpu_path(monkeypatch):
    """Force bitsandbytes' CPU 4-bit path: packed (what AVX512-BF16 CPUs take) or plain (AVX2 CPUs)."""
    bnb = pytest.importorskip("bitsandbytes")
    import bitsandbytes.nn.modules

    def force(packed: bool):
        monkeypatch.setattr(bitsandbytes.nn.modules, "has_avx512bf16", lambda: packed)
        if packed:
            monkeypatch.setattr(bnb.functional, "gemv_4bit", _packed_kernel_in_torch)
    return force


@pytest.mark.parametrize("packed", [False, True], ids=["plain-kernel", "packed-kernel"])
@pytest.mark.parametrize("method", ["bnb-nf4", "bnb-fp4"])
def test_bnb4_logits_on_both_cpu_kernel_paths(method, packed, bnb_cpu_path, quantized, reference):
    bnb_cpu_path(packed)
    got, model = logits(quantized(method))
    layers = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert layers and all(bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False)) == packed
                          for m in layers)
    assert_close(method, got, reference)


def test_bnb4_refuses_shapes_the_packed_kernel_cannot_take(tiny_mistral, tmp_path, monkeypatch, capsys):
    """tiny_mistral's layers are 32 wide: bitsandbytes' packed CPU kernel fails on them on AVX512-BF16
    CPUs only. quantize refuses on every CPU, before loading any weight, and leaves no folder."""
    from transformers import AutoModelForCausalLM

    from medtasks.cli import main

    def never(*_args, **_kwargs):
        raise AssertionError("a refused quantization loaded weights")

    monkeypatch.setattr("model_ops.quantize._cuda", lambda: False)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", never)
    with pytest.raises(QuantizationUnavailable,
                       match=r"bnb-nf4 cannot quantize .* in_features divisible by 64 and out_features by 32 "
                             r".*model\.layers\.0\.self_attn\.q_proj 32x32.*use bnb-int8, gguf-q4_0 or gptq-int4"):
        quantize(tiny_mistral, tmp_path / "nf4", "bnb-nf4")
    assert main(["quantize", str(tiny_mistral), "--method", "bnb-fp4", "--out", str(tmp_path / "fp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medeval quantize: bnb-fp4 cannot quantize") and err.count("\n") == 1
    assert not (tmp_path / "nf4").exists() and not (tmp_path / "fp4").exists()


def test_the_refused_shapes_really_fail_in_bitsandbytes_packed_kernel(tiny_mistral, bnb_cpu_path):
    """Why the refusal above exists: loaded straight through transformers, the 32-wide model fails on
    the packed path with the error seen on AVX512-BF16 CPUs, and works on the plain path."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    def load():
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
        return AutoModelForCausalLM.from_pretrained(tiny_mistral, quantization_config=config, device_map="cpu").eval()

    bnb_cpu_path(False)
    with torch.no_grad():
        assert torch.isfinite(load()(IDS).logits).all()
    bnb_cpu_path(True)
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"shape '\[32, 0\]' is invalid"):
        load()(IDS)


def test_bnb4_shape_rule(tmp_path):
    """The rule on real architectures, read from config.json alone (no weights): BioMistral-7B's and
    SmolLM2-135M's (the default model) layers fit; 32-wide or 48-wide layers do not."""
    assert bnb4_cpu_problems({"a": (4096, 14336), "b": (1024, 4096), "c": (192, 576), "d": (1536, 576)}) == []
    assert bnb4_cpu_problems({"q": (32, 32), "up": (96, 48), "ok": (64, 64), "rows": (48, 64)}) == [
        "q 32x32", "up 96x48", "rows 48x64"]
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
              "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
              "num_hidden_layers": 2, "vocab_size": 49152, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shapes = quantized_linear_shapes(tmp_path)
    assert shapes["model.layers.0.self_attn.k_proj"] == (192, 576)
    assert shapes["model.layers.1.mlp.down_proj"] == (576, 1536)
    assert "lm_head" not in shapes and len(shapes) == 14 and bnb4_cpu_problems(shapes) == []


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
def test_gguf_file_is_small_and_readable(qtype, ratio, quantized, source):
    gguf = pytest.importorskip("gguf")
    out = quantized(qtype)
    file = next(out.glob("*.gguf"))
    # float32 -> 8.5 bits (Q8_0) / 4.5 bits (Q4_0) per weight, norms stay float32
    assert file.stat().st_size < ratio * 1.25 * (source / "model.safetensors").stat().st_size
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


def test_awq_refuses_cpu_with_a_clear_message(tiny_mistral, tmp_path, monkeypatch, capsys):
    from medtasks.cli import main

    monkeypatch.setattr("model_ops.quantize._cuda", lambda: False)  # the refusal is checked on any machine
    with pytest.raises(QuantizationUnavailable, match="awq-int4 needs a CUDA GPU.*gptq-int4"):
        quantize(tiny_mistral, tmp_path / "awq", "awq-int4")
    assert main(["quantize", str(tiny_mistral), "--method", "awq-int4", "--out", str(tmp_path / "out" / "awq2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medeval quantize: awq-int4 needs a CUDA GPU") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, not even the parent made for it


@pytest.mark.parametrize("bad,message", [
    (["--group-size", "0"], "--group-size 0: expected a positive size"),
    (["--calibration-limit", "0"], "--calibration-limit 0: expected at least 1"),
    (["--calibration", "CAL"], "cal.jsonl:2: not JSON"),
])
def test_quantize_bad_arguments_are_one_line_exit_2(bad, message, source, tmp_path, monkeypatch, capsys):
    from medtasks.cli import main

    import dataclasses

    # whether gptqmodel is installed or not: the arguments are checked either way
    monkeypatch.setitem(METHODS, "gptq-int4", dataclasses.replace(METHODS["gptq-int4"], check=lambda m, s: None))
    (tmp_path / "cal.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    args = [str(tmp_path / "cal.jsonl") if a == "CAL" else a for a in bad]
    assert main(["quantize", str(source), "--method", "gptq-int4", "--out", str(tmp_path / "q"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medeval quantize: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_failed_quantization_leaves_no_folder(source, tmp_path, monkeypatch):
    import model_ops.gguf_export

    def crash(src, out_file, qtype):
        out_file.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(model_ops.gguf_export, "export_gguf", crash)
    with pytest.raises(OSError, match="disk full"):
        quantize(source, tmp_path / "q8", "gguf-q8_0")
    assert list(tmp_path.iterdir()) == []


def test_output_folder_is_never_overwritten(source, tmp_path):
    from model_ops import ModelOpsError

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ModelOpsError, match="--out .*taken: already exists and is not empty"):
        quantize(source, tmp_path / "taken", "gguf-q8_0")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()  # an empty folder is filled
    out = quantize(source, tmp_path / "empty", "gguf-q8_0")
    assert (out / "model-Q8_0.gguf").is_file() and read_card(out)["method"] == "gguf-q8_0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken"]  # no staging folder left


def test_gptq_real_path(source, tmp_path, reference):
    pytest.importorskip("gptqmodel", reason="gptqmodel not installed (pip install gptqmodel==7.6.0; see README)")
    pytest.importorskip("optimum.gptq", reason="transformers loads GPTQ checkpoints through optimum")
    out = quantize(source, tmp_path / "gptq", "gptq-int4", group_size=32)
    got, _ = logits(out)
    assert_close("gptq-int4", got, reference)
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
    from model_ops.measure import speed_summary
    from model_ops.variants import relative_rows, to_markdown

    assert speed_summary([9.0, 30.0, 10.0]) == {"tokens_per_s": 10.0, "tokens_per_s_min": 9.0,
                                                "tokens_per_s_max": 30.0, "speed_repeats": 3}
    speed = {"tokens_per_s_min": 1.0, "tokens_per_s_max": 40.0}
    rows = relative_rows([
        {"name": "original", "size_bytes": 1000, "weights_mb": 190.0, "peak_memory_mb": 200.0, "tokens_per_s": 10.0,
         **speed, "mean_acc": 0.5, "mean_strict_acc": 0.4,
         "accuracy": {"medqa_en": {"acc": 0.5, "strict_acc": 0.4}}},
        {"name": "bnb-nf4", "size_bytes": 300, "weights_mb": 60.0, "peak_memory_mb": 80.0, "tokens_per_s": 25.0,
         **speed, "mean_acc": 0.45, "mean_strict_acc": 0.25,
         "accuracy": {"medqa_en": {"acc": 0.45, "strict_acc": 0.25}}},
        {"name": "gguf", "size_bytes": 500, "weights_mb": None, "peak_memory_mb": 100.0, "tokens_per_s": 5.0,
         **speed, "mean_acc": None, "mean_strict_acc": None, "accuracy": {}},
    ])
    assert [r["size_ratio"] for r in rows] == [1.0, 0.3, 0.5]
    assert [r["memory_ratio"] for r in rows] == [1.0, 0.4, 0.5]
    assert [r["speed_ratio"] for r in rows] == [1.0, 2.5, 0.5]
    assert [r["acc_delta"] for r in rows] == [0.0, -0.05, None]
    assert [r["strict_acc_delta"] for r in rows] == [0.0, -0.15, None]
    settings = {"device": "cpu", "new_tokens": 8, "repeats": 5, "tasks": ["medqa_en"], "limit": 20}
    md = to_markdown(rows, settings).splitlines()
    assert md[0].startswith("| model | size (MB)") and md[4].startswith("| gguf |") and md[5] == ""
    cells = [c.strip() for c in md[3].split("|")[1:-1]]
    assert cells[0] == "bnb-nf4" and cells[6] == "25.0 (1.0-40.0)" and cells[-3:] == ["-0.050", "0.250", "-0.150"]
    assert md[6] == "| model | medqa_en acc / strict |" and md[9] == "| bnb-nf4 | 0.450 / 0.250 |"
    assert md[10] == "| gguf | - / - |"
    caption = md[-1]
    assert "median of 5 timed passes" in caption and "8 tokens for each of 4 prompts" in caption
    assert "after one untimed warm-up pass" in caption and "first 20 questions per task" in caption


def _loglikelihood(model, tokenizer, context: str, continuation: str) -> tuple[float, bool]:
    """(log P(continuation | context), whether every continuation token is the argmax), tokenized and
    truncated as lm-eval's HF backend does."""
    spaces = len(context) - len(context.rstrip())
    if spaces:  # lm-eval moves the context's trailing spaces onto the continuation
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    target = torch.tensor(whole[n_context:])
    inputs = torch.tensor([whole[-(model.config.max_position_embeddings + 1):][:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(inputs).logits[0, -len(target):].float(), dim=-1)
    return logprobs[torch.arange(len(target)), target].sum().item(), bool((logprobs.argmax(-1) == target).all())


@pytest.mark.parametrize("method", ["bnb-nf4", "gguf-q8_0"])
def test_lm_eval_evaluates_the_quantized_directory(method, quantized, tmp_path, shared_data):
    """lm-eval's log-likelihood and is-greedy flag of every answer letter equal a direct computation on
    the quantized model, and its acc and strict_acc follow from them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = quantized(method)
    done = run_lm_eval(eval_model_args(out), "medqa_en", tmp_path / "results", store=tmp_path / "store",
                       data=shared_data, limit=3, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results, samples = load_run(tmp_path / "results")
    metrics, samples = results["results"]["medqa_en"], samples["medqa_en"]
    model = AutoModelForCausalLM.from_pretrained(out, device_map="cpu", **load_kwargs(out)).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(samples) == 3
    correct = strict = 0
    for sample in samples:
        logged, greedy = letter_scores(sample)
        mine = [_loglikelihood(model, tokenizer, args["arg_0"], args["arg_1"]) for args in sample["arguments"].values()]
        assert [ll for ll, _ in mine] == pytest.approx(logged, abs=2e-3)
        assert [flag for _, flag in mine] == greedy
        gold = [args["arg_1"] for args in sample["arguments"].values()].index(sample["target"])  # target: gold letter
        correct += logged.index(max(logged)) == gold
        strict += greedy[gold]
    assert metrics["acc,none"] == pytest.approx(correct / len(samples))
    assert metrics["strict_acc,none"] == pytest.approx(strict / len(samples))


def test_variants_command_writes_markdown_and_json(quantized, source, tmp_path, shared_data, monkeypatch):
    pytest.importorskip("gguf")
    from medtasks.cli import main

    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path / "store"))
    q8 = quantized("gguf-q8_0")
    assert main(["variants", "--original", str(source), "--variant", f"q8={q8}", "--tasks", "medqa_en",
                 "--limit", "2", "--new-tokens", "8", "--repeats", "2", "--out", str(tmp_path / "table")]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    names = [r["name"] for r in table["rows"]]
    assert names == ["original", "q8"]
    original, q8_row = table["rows"]
    weights = (source / "model.safetensors").stat().st_size / 2**20
    # the original's memory is at least its weights (fp32 safetensors: file size = parameter bytes)
    assert original["weights_mb"] == pytest.approx(weights, rel=0.05)
    assert original["peak_memory_mb"] >= original["weights_mb"]
    assert q8_row["peak_memory_mb"] >= q8_row["weights_mb"] > 0  # transformers de-quantizes GGUF on load
    for row in table["rows"]:
        assert row["speed_repeats"] == 2 and row["generated_tokens"] == 8 * 4
        assert 0 < row["tokens_per_s_min"] <= row["tokens_per_s"] <= row["tokens_per_s_max"]
    assert q8_row["size_ratio"] < 0.5
    assert set(q8_row["accuracy"]) == {"medqa_en"} and q8_row["acc_delta"] is not None
    md = (tmp_path / "table.md").read_text()
    acc = q8_row["accuracy"]["medqa_en"]
    assert f"| q8 | {acc['acc']:.3f} / {acc['strict_acc']:.3f} |" in md
    assert "median of 2 timed passes" in md and "first 2 questions per task" in md
