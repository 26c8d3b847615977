"""Continued pretraining and LoRA SFT on a tiny random model, on CPU: packing, loss going down,
resume from a checkpoint, adapters and merged models; lm_eval on the outputs, checked against a direct
transformers computation and the SFT prompt (slow)."""
import json
import random
import re
import shlex
from pathlib import Path

import pytest

from medtasks.prompts import build_prompt
from medtasks.records import Record
from lm_eval_run import load_run, run_lm_eval
from medtasks.store import write_records
from pmc_samples import write_random_package
from training.pack import BlockDataset, pack_blocks, tokenize_and_pack, with_eos
from training.sft import adapter_for, served_by, sft_examples, tokenize_example

CPU = ["dtype=float32", "gradient_checkpointing=false", "logging_steps=1", "per_device_batch_size=4", "grad_accum=1"]


@pytest.mark.parametrize("sequences, size, expected", [
    ([[1, 2, 3], [4, 5], [6, 7, 8, 9]], 4, [[1, 2, 3, 4], [5, 6, 7, 8]]),  # 9 is the dropped tail
    ([[1, 2], [3, 4]], 2, [[1, 2], [3, 4]]),
    ([[1, 2, 3, 4, 5, 6, 7]], 3, [[1, 2, 3], [4, 5, 6]]),
    ([[1, 2, 3]], 5, []),
    ([], 2, []),
])
def test_pack_blocks(sequences, size, expected):
    assert list(pack_blocks(iter(sequences), size)) == expected


def test_with_eos():
    assert with_eos([5, 6], 0) == [5, 6, 0] and with_eos([5, 0], 0) == [5, 0] and with_eos([], 0) == [0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from training.corpus import Options, prepare_corpus

    tmp = tmp_path_factory.mktemp("corpus")
    package, _ = write_random_package(tmp / "oa_comm_xml.PMC000xxxxxx.baseline.2024-01-01.tar.gz", 30, seed=1)
    prepare_corpus([package], tmp / "corpus", Options(), progress_bar=False)
    return tmp / "corpus"


def test_tokenize_and_pack(corpus, tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    from training.corpus import corpus_files
    from training.pack import iter_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    files = corpus_files(corpus)
    path = tokenize_and_pack(files, tokenizer, 64, tmp_path, batch_size=7, progress_bar=False)
    summary = json.loads(path.with_suffix(".json").read_text())
    expected = [with_eos(tokenizer(t)["input_ids"], tokenizer.eos_token_id) for t in iter_texts(files)]
    assert summary["tokens"] == sum(map(len, expected)) and summary["blocks"] == summary["tokens"] // 64
    blocks = BlockDataset(path, 64)
    assert len(blocks) == summary["blocks"]
    assert blocks[1]["input_ids"].tolist() == list(pack_blocks(expected, 64))[1]
    mtime = path.stat().st_mtime_ns
    assert tokenize_and_pack(files, tokenizer, 64, tmp_path, progress_bar=False).stat().st_mtime_ns == mtime  # reused


def _run(argv):
    from medtasks.cli import main

    assert main(argv) == 0


def _log(checkpoint: Path) -> list[float]:
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [h["loss"] for h in state["log_history"] if "loss" in h]


@pytest.fixture(scope="module")
def pretrained(corpus, tiny_llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpt") / "run"
    _run(["pretrain", "--quiet", "--set", f"model={tiny_llama}", "--set", f"corpus={corpus}", "--set", f"output_dir={out}",
          "--set", "block_size=64", "--set", "max_steps=6", "--set", "save_steps=3", "--set", "learning_rate=1e-3",
          *[x for kv in CPU for x in ("--set", kv)]])
    return out


def test_pretraining_lowers_the_loss_and_saves_model_folders(pretrained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    losses = _log(pretrained / "checkpoint-6")
    assert len(losses) == 6 and losses[-1] < losses[0]
    for folder in (pretrained, pretrained / "checkpoint-3"):
        AutoModelForCausalLM.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)
    card = json.loads((pretrained / "training_card.json").read_text())
    assert card["global_step"] == 6 and card["data"]["blocks"] > 0


def test_resume_from_checkpoint_reaches_the_same_weights(pretrained, corpus, tiny_llama, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file
    from transformers import Trainer

    from training.config import build
    from training.pretrain import run_pretrain

    config = build("pretrain", {"model": str(tiny_llama), "corpus": str(corpus), "output_dir": str(tmp_path / "r"),
                                "block_size": 64, "max_steps": 6, "save_steps": 3, "learning_rate": 1e-3,
                                "dtype": "float32", "gradient_checkpointing": False, "logging_steps": 1,
                                "per_device_batch_size": 4, "grad_accum": 1})
    steps, real_step = [], Trainer.training_step
    monkeypatch.setattr(Trainer, "training_step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k))
    trainer = run_pretrain(config, resume=str(pretrained / "checkpoint-3"), progress_bar=False)
    assert trainer.state.global_step == 6 and len(steps) == 3  # only steps 4-6 ran
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses == pytest.approx(_log(pretrained / "checkpoint-6"), rel=1e-4)  # 1-3 restored, 4-6 retrained alike
    resumed, straight = load_file(tmp_path / "r" / "model.safetensors"), load_file(pretrained / "model.safetensors")
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def _records(n=16, split="train"):
    rng = random.Random(0)
    organs = ["heart", "lung", "kidney", "liver"]
    out = []
    for i in range(n):
        out.append(Record(id=f"q{i}", benchmark="medqa", language="en", split=split,
                          question=f"Case {i}: which organ pumps blood?", options=dict(zip("ABCD", organs)),
                          answer="A", context=None, provenance={"kind": "test", "row": i}))
        rng.shuffle(organs)
    return out


def test_sft_examples_use_the_task_prompt_builder():
    records = _records(6)
    examples = sft_examples(records)
    first = records[0]
    assert examples[0]["prompt"] == build_prompt({"question": first.question, "options": first.options})
    assert examples[0]["prompt"].endswith("**Answer:**(") and examples[0]["completion"] == "A"
    with_shots = sft_examples(records, shots=2, seed=1)
    for record, example in zip(records, with_shots):
        assert example["prompt"].count("**Question:**") == 3
        assert example["prompt"].count(record.question) == 1  # never its own example
    assert sft_examples(records, shots=2, seed=1) == with_shots  # seeded


def test_tokenize_example_masks_the_answer_only(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prompt = build_prompt({"question": "Which organ pumps blood?", "options": {"A": "heart", "B": "lung"}})
    row = tokenize_example(prompt, "A", tokenizer, 512)
    letter = tokenizer("A", add_special_tokens=False)["input_ids"]
    assert row["input_ids"] == tokenizer(prompt)["input_ids"] + letter and not row["truncated"]
    assert row["completion_mask"] == [0] * (len(row["input_ids"]) - len(letter)) + [1] * len(letter)
    short = tokenize_example(prompt, "A", tokenizer, 10)
    assert len(short["input_ids"]) == 10 and short["truncated"] and short["input_ids"][-len(letter):] == letter


def test_adapter_for():
    assert adapter_for("mmlu_anatomy") == "medqa5" and adapter_for("pubmedqa") == "pubmedqa"
    assert served_by("medqa5") == ["mmlu_clinical_knowledge", "mmlu_medical_genetics", "mmlu_anatomy",
                                   "mmlu_professional_medicine", "mmlu_college_biology", "mmlu_college_medicine",
                                   "medqa5"]
    assert served_by("medqa") == ["medqa"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    write_records(path, _records(16))
    return path


@pytest.fixture(scope="module")
def adapter(store, tiny_llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "medqa"
    _run(["sft", "--quiet", "--set", f"model={tiny_llama}", "--set", f"store={store}", "--set", f"output_dir={out}",
          "--set", "max_steps=8", "--set", "save_steps=4", "--set", "learning_rate=1e-2",
          *[x for kv in CPU for x in ("--set", kv)]])
    return out


def test_sft_lowers_the_loss_and_writes_an_adapter(adapter):
    losses = _log(adapter / "checkpoint-8")
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.3
    assert (adapter / "adapter_model.safetensors").exists()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 16, 0.05)
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    card = json.loads((adapter / "training_card.json").read_text())
    assert card["data"] == "medqa/en/train" and card["examples"] == 16 and card["store_entry"]["count"] == 16
    assert card["evaluate"].endswith(f"peft={adapter} --tasks medqa_en")


def test_sft_trains_on_the_answer_letter_only(store, tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    from training.config import build
    from training.sft import run_sft

    config = build("sft", {"model": str(tiny_llama), "store": str(store), "output_dir": str(tmp_path / "o"),
                           "max_steps": 1, "dtype": "float32", "gradient_checkpointing": False})
    trainer = run_sft(config, progress_bar=False)
    letter = AutoTokenizer.from_pretrained(tiny_llama)("A", add_special_tokens=False)["input_ids"]
    for labels in trainer.train_dataset["labels"]:
        assert [t for t in labels if t != -100] == letter


def test_merged_model_matches_base_plus_adapter(adapter, tiny_llama, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _run(["merge-adapter", str(adapter), "-o", str(tmp_path / "merged")])
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        peft_logits = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), adapter)(ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(ids).logits
        base_logits = AutoModelForCausalLM.from_pretrained(tiny_llama)(ids).logits
    torch.testing.assert_close(merged_logits, peft_logits, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-4)  # the adapter did change the model


def _hints(message: str) -> list[list[str]]:
    """The `medeval ...` commands a message suggests, as argv lists."""
    return [shlex.split(cmd)[1:] for cmd in re.findall(r"`(medeval [^`]+)`", message)]


def _sft_error(argv, capsys) -> str:
    from medtasks.cli import main

    assert main(["sft", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_missing_train_split_says_which_import_provides_it(tmp_path, capsys):
    from medtasks.cli import build_parser

    err = _sft_error(["--set", f"store={tmp_path}", "--set", "benchmark=medqa"], capsys)
    assert "medqa/en/train is not in the store" in err
    assert "`medeval import --hub --benchmarks medqa`" in err and "--set split=fewshot" in err
    err5 = _sft_error(["--set", f"store={tmp_path}", "--set", "benchmark=pubmedqa", "--set", "language=fr"], capsys)
    assert "pubmedqa/fr/train" in err5 and "--bioinstructqa" in err5 and "--hub" not in err5
    for argv in _hints(err) + _hints(err5):  # every suggested command parses with the real CLI
        assert build_parser().parse_args(argv).command == "import"


def test_missing_train_split_names_the_fewshot_pool_in_the_store(tmp_path, capsys):
    write_records(tmp_path, _records(5, split="fewshot"))
    err = _sft_error(["--set", f"store={tmp_path}", "--set", "benchmark=medqa"], capsys)
    assert "--set split=fewshot (5 questions in the store)" in err


def test_mmlu_has_no_adapter_of_its_own(tmp_path, capsys):
    err = _sft_error(["--set", f"store={tmp_path}", "--set", "benchmark=mmlu_anatomy"], capsys)
    assert "no train split" in err and "medqa5 adapter" in err


def test_sft_refuses_the_test_split(capsys):
    err = _sft_error(["--set", "split=test", "--print-config"], capsys)
    assert "field 'split'" in err and "test" in err


def test_sft_trains_offline_on_the_fewshot_split(tiny_llama, tmp_path):
    store = tmp_path / "store"
    write_records(store, _records(6, split="fewshot"))
    out = tmp_path / "o"
    _run(["sft", "--quiet", "--set", f"model={tiny_llama}", "--set", f"store={store}", "--set", f"output_dir={out}",
          "--set", "split=fewshot", "--set", "max_steps=1", *[x for kv in CPU for x in ("--set", kv)]])
    card = json.loads((out / "training_card.json").read_text())
    assert card["data"] == "medqa/en/fewshot" and card["examples"] == 6


def _requests(samples: list[dict]) -> list[tuple[str, str, str, float]]:
    """(doc id, context, continuation, logged log-likelihood) of every request of every sample."""
    return [(sample["doc"]["id"], args["arg_0"], args["arg_1"], float(resp[0][0]))
            for sample in samples for args, resp in zip(sample["arguments"].values(), sample["resps"])]


def _direct_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """log p(continuation | context) with transformers alone, tokenized the way lm-eval's HF backend does."""
    import torch

    whole, prefix = tokenizer.encode(context + continuation), tokenizer.encode(context)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([whole[:-1]])).logits[0].float(), -1)
    return sum(logprobs[len(prefix) - 1 + i, token].item() for i, token in enumerate(whole[len(prefix):]))


def _lm_eval(model: str, out: Path, shared_data: Path, *extra: str) -> list[tuple[str, str, str, float]]:
    done = run_lm_eval(model, "medqa_en", out / "results", store=out / "store", data=shared_data, limit=3,
                       extra=extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return _requests(load_run(out / "results")[1]["medqa_en"])


def test_lm_eval_scores_the_pretrained_checkpoint_as_transformers_does(pretrained, tmp_path, shared_data):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = pretrained / "checkpoint-3"
    requests = _lm_eval(str(checkpoint), tmp_path, shared_data)
    assert len(requests) == 3 * 4 and all(r[1].endswith("**Answer:**(") for r in requests)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(checkpoint)
    assert len({round(r[3], 2) for r in requests}) > 1  # the letters are told apart
    for _, context, continuation, logged in requests:
        assert _direct_loglikelihood(model, tokenizer, context, continuation) == pytest.approx(logged, abs=2e-3)


def test_lm_eval_runs_the_adapter_and_the_merged_model_on_the_sft_prompt(adapter, tiny_llama, tmp_path, shared_data):
    """Zero-shot, so lm-eval's prompt is the SFT prompt of the question, byte for byte; the adapter (PEFT) and
    the merged model score every letter alike."""
    from medtasks.store import read_records

    _run(["merge-adapter", str(adapter), "-o", str(tmp_path / "merged")])
    with_peft = _lm_eval(f"{tiny_llama},peft={adapter}", tmp_path / "a", shared_data, "--num_fewshot", "0")
    merged = _lm_eval(str(tmp_path / "merged"), tmp_path / "b", shared_data, "--num_fewshot", "0")
    assert [r[:3] for r in with_peft] == [r[:3] for r in merged] and len(with_peft) == 3 * 4
    assert [r[3] for r in with_peft] == pytest.approx([r[3] for r in merged], abs=1e-3)
    records = {r.id: r for r in read_records(tmp_path / "a" / "store", "medqa", "en", "test")}
    for doc_id, context, continuation, _ in with_peft:
        example = sft_examples([records[doc_id]])[0]
        assert context == example["prompt"] and continuation in "ABCD"


def test_sft_with_an_8bit_base(store, tiny_llama, tmp_path):
    pytest.importorskip("bitsandbytes", reason="8-bit base needs medeval[quant]")
    from training.config import build
    from training.sft import run_sft

    config = build("sft", {"model": str(tiny_llama), "store": str(store), "output_dir": str(tmp_path / "o"),
                           "max_steps": 2, "dtype": "float32", "gradient_checkpointing": False,
                           "load_in_8bit": True, "logging_steps": 1})
    trainer = run_sft(config, progress_bar=False)
    assert trainer.state.global_step == 2 and (tmp_path / "o" / "adapter_model.safetensors").exists()
