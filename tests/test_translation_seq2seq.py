"""The transformers seq2seq backend on tiny random Marian and M2M100 models built in a temp dir."""
import json

import pytest

from medtasks.store import read_records
from test_translation_web import english_store
from translation.backends import get_backend
from translation.net import PermanentError
from translation.pipeline import audit_path, translate_store

pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    from tiny_seq2seq import build_tiny_marian

    return build_tiny_marian(tmp_path_factory.mktemp("marian"))


def test_marian_translates_batches_and_reports_overlong_segments(marian):
    backend = get_backend("seq2seq", model=f"en-fr={marian}", batch_size=4, max_new_tokens=16)
    client = backend.new_client("en", "fr")
    out = client(["Which of the following is the most likely diagnosis?", "5 mg", "x " * 300])
    assert isinstance(out[0], str) and out[0].strip() and isinstance(out[1], str)
    assert isinstance(out[2], PermanentError) and "exceeds the model's 128-token input" in str(out[2])
    assert backend.version("en", "fr").startswith(marian.name + "@sha256:")
    with pytest.raises(PermanentError, match="no seq2seq model configured for en-de"):
        backend.new_client("en", "de")


def test_generation_cut_at_the_limit_is_an_error_not_a_translation(tmp_path):
    from tiny_seq2seq import build_tiny_marian

    model = build_tiny_marian(tmp_path / "m", stop=False)
    out = get_backend("seq2seq", model=str(model), max_new_tokens=6).new_client("en", "fr")(["hello"])
    assert isinstance(out[0], PermanentError) and "max_new_tokens=6" in str(out[0])


def test_m2m100_forces_the_target_language_token(tmp_path):
    from tiny_seq2seq import build_tiny_m2m100

    model = build_tiny_m2m100(tmp_path / "m2m")
    backend = get_backend("seq2seq", model=str(model), max_new_tokens=12)
    tokenizer, net, device, forced = backend._load("en", "ru")
    assert forced == tokenizer.get_lang_id("ru") and tokenizer.src_lang == "en"
    assert all(isinstance(t, str) for t in backend.new_client("en", "ru")(["The heart", "The lung"]))


def test_pipeline_with_seq2seq_keeps_garbage_out_of_the_store(marian, tmp_path):
    store = english_store(tmp_path / "store", n=2)
    backend = get_backend("seq2seq", model=str(marian), max_new_tokens=24)
    summary = translate_store(store, ["medqa"], ["test"], ["fr"], backend, progress=False)
    # a random model's output loses the numbers: every item is rejected, with its reasons
    assert summary["medqa/fr/test"]["rejected"] == 2 and summary["_run"]["calls"] >= 1
    rejected = [json.loads(line) for line in audit_path(store, "medqa", "fr", "test", "rejected.jsonl").open()]
    assert all(any("numbers missing" in r for r in item["reasons"]) for item in rejected)
    assert not (store / "medqa/fr/test.jsonl").exists()
    assert read_records(store, "medqa", "en", "test")  # the English side untouched
