"""The hub path: fails fast and clearly offline; its row converters are pure and tested on rows built here.

No test downloads anything: the endpoint is pointed at loopback servers started here.
"""
import http.server
import socket
import threading
import time

import pytest

from medtasks.records import DataError
from medtasks.sources import HubUnavailable, import_hub
from medtasks.sources import hub, medmcqa

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def online_env(monkeypatch):
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    return monkeypatch


@pytest.fixture
def silent_endpoint(online_env):
    """A port that accepts connections and never answers: the worst case for a probe."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    online_env.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    yield
    server.close()


@pytest.mark.parametrize("flag", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_offline_flag_fails_at_once(online_env, tmp_path, flag):
    online_env.setenv(flag, "1")
    start = time.monotonic()
    with pytest.raises(HubUnavailable, match=f"{flag} is set") as caught:
        import_hub("medqa", tmp_path)
    assert time.monotonic() - start < 1
    assert "MEDTASKS_DATA" in str(caught.value) and "medeval import" in str(caught.value)
    assert not any(tmp_path.iterdir())


def test_unreachable_hub_fails_fast(silent_endpoint, tmp_path):
    # English from a benchmark's own dataset; French from BioInstructQA's data.zip
    for call in (lambda: import_hub("mmlu_anatomy", tmp_path), lambda: import_hub("medqa", tmp_path, "fr")):
        start = time.monotonic()
        with pytest.raises(HubUnavailable, match="unreachable") as caught:
            call()
        assert time.monotonic() - start < 5
        assert "MEDTASKS_DATA" in str(caught.value)
    start = time.monotonic()  # the failed probe is remembered: later tasks do not wait again
    with pytest.raises(HubUnavailable):
        import_hub("medmcqa", tmp_path)
    assert time.monotonic() - start < 0.5


def test_refused_connection_fails_fast(online_env, tmp_path):
    with socket.socket() as probe_socket:  # a port nobody listens on once closed
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    online_env.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(HubUnavailable, match="refused|unreachable"):
        import_hub("pubmedqa", tmp_path)
    assert time.monotonic() - start < 5


def test_probe_accepts_any_http_answer():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert hub.probe(f"http://127.0.0.1:{server.server_port}") is None
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_benchmark_or_language(tmp_path):
    with pytest.raises(KeyError, match="valid: "):
        import_hub("medqa7", tmp_path)
    with pytest.raises(KeyError, match="valid: en"):
        import_hub("medqa", tmp_path, "xx")
    with pytest.raises(KeyError, match="BioInstructQA"):
        hub.fetch("medqa5")


def prov(row=1):
    return {"kind": "import", "importer": "hub", "source": "repo:split", "sha256": "0" * 64, "row": row}


GBAKER = {"id": "x", "sent1": "Which drug?", "sent2": "", "ending0": "a", "ending1": "b", "ending2": "c",
          "ending3": "d", "label": 2}
HUB_MCQA = {"id": "u-1", "question": "Which nerve?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0,
            "choice_type": "single", "exp": "", "subject_name": "Anatomy", "topic_name": None}
HUB_PQA = {"pubid": 25429730, "question": "Does it work?", "context": {"contexts": ["First.", "Second."],
           "labels": ["A", "B"], "meshes": []}, "long_answer": "...", "final_decision": "maybe"}
HUB_MMLU = {"question": "Which bone?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 3}


@pytest.mark.parametrize("convert,row,expect", [
    (lambda r: hub.convert_medqa(r, "test", 7, prov(7)), GBAKER,
     {"id": "medqa-test-0007", "answer": "C", "question": "Which drug?", "benchmark": "medqa", "split": "test"}),
    (lambda r: hub.convert_medqa(r, "train", 10178, prov()), {**GBAKER, "label": 0},
     {"id": "medqa-train-10178", "answer": "A", "split": "train"}),
    (lambda r: medmcqa.convert_row(r, "test", prov(), cop_base=0), HUB_MCQA,
     {"id": "u-1", "answer": "A", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}}),
    (lambda r: medmcqa.convert_row(r, "train", prov(), cop_base=0), {**HUB_MCQA, "cop": 3},
     {"answer": "D", "split": "train"}),
    (lambda r: medmcqa.convert_row(r, "test", prov()), {**HUB_MCQA, "cop": 1}, {"answer": "A"}),  # official 1-4
    (lambda r: hub.convert_pubmedqa(r, "test", prov("25429730")), HUB_PQA,
     {"id": "pubmedqa-25429730", "answer": "C", "context": "First. Second.",
      "options": {"A": "yes", "B": "no", "C": "maybe"}}),
    (lambda r: hub.convert_mmlu(r, "mmlu_anatomy", "fewshot", "dev", 2, prov(2)), HUB_MMLU,
     {"id": "mmlu_anatomy-dev-0002", "answer": "D", "split": "fewshot", "benchmark": "mmlu_anatomy"}),
])
def test_hub_row_converters(convert, row, expect):
    record = convert(row)
    for key, value in expect.items():
        assert getattr(record, key) == value, key
    assert record.language == "en" and record.provenance["source"] == "repo:split"


@pytest.mark.parametrize("convert,row,field_name", [
    (lambda r: hub.convert_medqa(r, "test", 1, prov()), {**GBAKER, "label": 4}, "label"),
    (lambda r: hub.convert_medqa(r, "test", 1, prov()), {**GBAKER, "ending3": ""}, "ending3"),
    (lambda r: medmcqa.convert_row(r, "test", prov(), cop_base=0), {**HUB_MCQA, "cop": 4}, "cop"),
    (lambda r: medmcqa.convert_row(r, "test", prov(), cop_base=0), {**HUB_MCQA, "cop": True}, "cop"),
    (lambda r: hub.convert_pubmedqa(r, "test", prov()), {**HUB_PQA, "final_decision": "unsure"}, "final_decision"),
    (lambda r: hub.convert_pubmedqa(r, "test", prov()), {**HUB_PQA, "context": {"contexts": []}}, "CONTEXTS"),
    (lambda r: hub.convert_mmlu(r, "mmlu_anatomy", "test", "test", 1, prov()), {**HUB_MMLU, "choices": ["a"]},
     "choices"),
    (lambda r: hub.convert_mmlu(r, "mmlu_anatomy", "test", "test", 1, prov()), {**HUB_MMLU, "answer": "B"}, "answer"),
])
def test_hub_row_converters_reject(convert, row, field_name):
    with pytest.raises(DataError, match=f"field '{field_name}'"):
        convert(row)


def test_rows_checksum_is_content_based():
    assert hub.rows_sha256([GBAKER]) == hub.rows_sha256([dict(reversed(list(GBAKER.items())))])
    assert hub.rows_sha256([GBAKER]) != hub.rows_sha256([{**GBAKER, "label": 1}])
