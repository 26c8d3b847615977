"""End to end: English store -> our translation pipeline -> `lm_eval --tasks medqa_fr` on a tiny model."""
import json
import os
import subprocess
import sys

from libre_server import FakeLibre
from medtasks.store import read_records, write_records
from translation.backends import get_backend
from translation.pipeline import translate_store


def test_lm_eval_runs_on_a_translated_store(shared_data, tiny_llama, tmp_path):
    from medtasks.sources import import_folder

    store = tmp_path / "store"
    import_folder(shared_data, store, benchmarks=["medqa"])  # English test + the English few-shot pool
    write_records(store, read_records(store, "medqa", "en", "test")[:4])  # a few questions are enough
    with FakeLibre() as server:
        summary = translate_store(store, ["medqa"], ["test"], ["fr"], get_backend("libre", url=server.url),
                                  progress=False)
    assert summary["medqa/fr/test"]["translated"] >= 3, summary
    translated = read_records(store, "medqa", "fr", "test")
    out = tmp_path / "results"
    env = dict(os.environ, MEDTASKS_STORE=str(store))
    env.pop("MEDTASKS_DATA", None)  # the French split must come from our store, nowhere else
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                           f"pretrained={tiny_llama}", "--device", "cpu", "--tasks", "medqa_fr", "--limit", "3",
                           "--output_path", str(out), "--log_samples"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(out.rglob("results_*.json")).read_text())
    metrics = result["results"]["medqa_fr"]
    assert 0.0 <= metrics["acc,none"] <= 1.0 and "strict_acc,none" in metrics
    samples = [json.loads(line) for path in out.rglob("samples_medqa_fr*.jsonl") for line in path.open()]
    prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
    assert translated[0].question in prompt and "(A) " + translated[0].options["A"] in prompt  # French target
    assert "**Question:**" in prompt and prompt.count("**Answer:**(") == 4  # 3 shots (English) + the target
