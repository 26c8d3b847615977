"""End to end: English store -> our translation pipeline -> `lm_eval --tasks medqa_fr` on a tiny model."""
import pytest
from libre_server import FakeLibre
from lm_eval_run import load_run, recomputed, run_lm_eval

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
    # no MEDTASKS_DATA: the French split must come from our store, nowhere else
    proc = run_lm_eval(tiny_llama, "medqa_fr", out, store=store, limit=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result, logged = load_run(out)
    metrics, samples = result["results"]["medqa_fr"], logged["medqa_fr"]
    expected = recomputed(samples)
    for metric in ("acc", "strict_acc", "brier"):  # each follows from the logged log-likelihoods
        assert metrics[f"{metric},none"] == pytest.approx(expected[metric])
    prompt = samples[0]["arguments"]["gen_args_0"]["arg_0"]
    assert translated[0].question in prompt and "(A) " + translated[0].options["A"] in prompt  # French target
    assert "**Question:**" in prompt and prompt.count("**Answer:**(") == 4  # 3 shots (English) + the target
