"""The real deep-translator client over real HTTP against a LibreTranslate-compatible server on
127.0.0.1 with injected faults; the OpenAI-compatible chat backend; the store pipeline and its CLI."""
import json

import pytest

from libre_server import FakeLibre, fake_translate
from medtasks.records import Record
from medtasks.store import read_records, write_records
from translation.backends import get_backend
from translation.cache import Cache
from translation.engine import Engine, Job
from translation.pipeline import audit_path, translate_store

pytest.importorskip("deep_translator")

STEM = "A 45-year-old woman presents with fever of 39 °C and a cough for 3 days. Which of the following is the best next step?"
OPTIONS = ["Chest radiography", "Give 500 mg of amoxicillin", "Bronchoscopy", "Observation at home", "Lung biopsy"]


def english_store(path, n=6):
    """MedQA 4- and 5-option twins (shared stems, like the real data) and PubMedQA items with contexts."""
    records = []
    for i in range(n):
        stem = STEM.replace("45", str(40 + i))
        records.append(Record(f"q{i}", "medqa", "en", "test", stem, dict(zip("ABCD", OPTIONS[:4])), "B"))
        records.append(Record(f"q{i}", "medqa5", "en", "test", stem, dict(zip("ABCDE", OPTIONS)), "B"))
        records.append(Record(f"p{i}", "pubmedqa", "en", "test", f"Does drug {i} reduce mortality in sepsis?",
                              dict(zip("ABC", ["yes", "no", "maybe"])), "A",
                              context=" ".join([f"Sepsis trial number {i} enrolled 1200 patients."] * 30)))
    write_records(path, records)
    return path


@pytest.fixture
def server():
    with FakeLibre(slow_s=1.5) as srv:
        yield srv


def libre(server, **kw):
    return get_backend("libre", url=server.url, timeout=kw.pop("timeout", 0.5), workers=kw.pop("workers", 4), **kw)


def test_faults_are_retried_and_the_run_completes(server, tmp_path):
    store = english_store(tmp_path / "store")
    server.faults = ["429", "500", "503", "slow", "garbage", "empty", "drop", "429"]
    summary = translate_store(store, ["medqa", "medqa5", "pubmedqa"], ["test"], ["fr", "ru"], libre(server),
                              progress=False)
    run = summary.pop("_run")
    assert run["failed"] == 0 and run["retries"] >= 8 and run["calls"] == run["translated"] + run["retries"]
    assert all(c["translated"] == 6 and c["rejected"] == 0 for c in summary.values()), summary
    for benchmark in ("medqa", "medqa5", "pubmedqa"):
        english = read_records(store, benchmark, "en", "test")
        for lang in ("fr", "ru"):
            out = read_records(store, benchmark, lang, "test")
            assert [r.id for r in out] == [r.id for r in english]  # same ids, same order
            for e, t in zip(english, out):
                assert list(t.options) == list(e.options) and t.answer == e.answer
                assert t.options["A"] == fake_translate(e.options["A"], "en", lang)
                assert t.question == fake_translate(e.question, "en", lang)
                assert (t.context is None) == (e.context is None)
                prov = t.provenance
                assert prov["kind"] == "translation" and prov["engine"] == "libre"
                assert prov["engine_version"] == "LibreTranslate"
                assert "numbers" in prov["checks"] and len(prov["date"]) == 10
    # the context (~1,500 characters) went in segments under the limit, sentence by sentence
    sent = server.texts()
    assert max(map(len, sent)) <= 5000 and not any(t in ("B", "A") for t in sent)  # letters never sent


def test_dedup_sends_shared_stems_and_options_once(server, tmp_path):
    store = english_store(tmp_path / "store")
    summary = translate_store(store, ["medqa", "medqa5"], ["test"], ["es"], libre(server), progress=False)
    run = summary["_run"]
    sent = server.texts()
    assert len(sent) == len(set(sent)) == run["unique"]
    # 6 stems + 5 distinct options, though 6 x (5 + 6) texts were asked for
    assert run["unique"] == 6 + 5 and run["texts"] == 6 * 11 and run["saved_by_dedup"] == 55


def test_second_run_makes_no_requests_and_writes_the_same_bytes(server, tmp_path):
    store = english_store(tmp_path / "store")
    translate_store(store, ["pubmedqa"], ["test"], ["de"], libre(server), progress=False)
    first = (store / "pubmedqa/de/test.jsonl").read_bytes()
    before = len(server.requests)
    summary = translate_store(store, ["pubmedqa"], ["test"], ["de"], libre(server), progress=False)
    assert len(server.requests) == before and summary["_run"]["calls"] == 0
    assert summary["pubmedqa/de/test"]["cached"] == 6
    assert (store / "pubmedqa/de/test.jsonl").read_bytes() == first


def test_permanent_errors_and_warnings_go_to_the_rejected_file(server, tmp_path):
    store = english_store(tmp_path / "store", n=3)
    server.text_faults = {"Does drug 1": ["warning"] * 10, "Does drug 2": ["garbage"] * 10}
    backend = libre(server, retries=2)
    summary = translate_store(store, ["pubmedqa"], ["test"], ["fr"], backend, progress=False)
    assert summary["pubmedqa/fr/test"] == {"items": 3, "translated": 1, "rejected": 2, "kept": 0, "cached": 0}
    assert [r.id for r in read_records(store, "pubmedqa", "fr", "test")] == ["p0"]
    rejected = [json.loads(line) for line in audit_path(store, "pubmedqa", "fr", "test", "rejected.jsonl").open()]
    reasons = {r["id"]: " ".join(r["reasons"]) for r in rejected}
    assert "warning instead of a translation" in reasons["p1"]
    assert "gave up after 3 attempts" in reasons["p2"] and "unreadable answer" in reasons["p2"]


def test_untranslated_output_is_rejected_by_the_checks(server, tmp_path):
    store = english_store(tmp_path / "store", n=2)
    import libre_server  # make the server echo English back, as a broken service does

    original = libre_server.fake_translate
    libre_server.fake_translate = lambda text, source, target: text
    try:
        summary = translate_store(store, ["medqa"], ["test"], ["fr"], libre(server), progress=False)
    finally:
        libre_server.fake_translate = original
    assert summary["medqa/fr/test"]["rejected"] == 2
    line = json.loads(audit_path(store, "medqa", "fr", "test", "rejected.jsonl").open().readline())
    assert any("left untranslated" in reason for reason in line["reasons"])


def test_keys_never_travel_in_urls_nor_reach_the_cache(server, tmp_path, monkeypatch):
    import libre_server

    monkeypatch.setenv("LIBRE_API_KEY", "libre-secret-key")
    monkeypatch.setenv("DEEPL_API_KEY", "deepl-secret-key:fx")
    request_lines, original = [], libre_server._Handler.do_POST

    def spy(handler):
        request_lines.append(handler.path)
        return original(handler)

    monkeypatch.setattr(libre_server._Handler, "do_POST", spy)
    cache = Cache(tmp_path / "c.sqlite")
    Engine(libre(server), cache, progress=False).run([Job({"question": STEM, "options": OPTIONS, "context": None},
                                                         "en", "fr")])
    deepl = get_backend("deepl", url=server.url + "v2/", timeout=1)
    assert deepl.new_client("en", "de")(["Which of the following"]) == [fake_translate("Which of the following", "en", "de")]
    assert "/v2/translate" in request_lines and all("secret" not in line for line in request_lines), request_lines
    assert server.headers_seen[-1]["Authorization"] == "DeepL-Auth-Key deepl-secret-key:fx"  # DeepL: a header
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite*"))
    assert b"secret" not in raw and cache.count() == 1 + len(OPTIONS)


def test_chat_backend_translates_whole_items_and_retries_bad_json(server, tmp_path):
    store = english_store(tmp_path / "store", n=2)
    server.faults = ["garbage", "429"]
    backend = get_backend("openai-chat", url=server.url + "v1", model="tiny-llm", timeout=2)
    summary = translate_store(store, ["medqa5", "pubmedqa"], ["test"], ["zh"], backend, progress=False)
    assert summary["medqa5/zh/test"]["translated"] == 2 and summary["pubmedqa/zh/test"]["translated"] == 2
    record = read_records(store, "pubmedqa", "zh", "test")[1]
    english = read_records(store, "pubmedqa", "en", "test")[1]
    assert record.context == fake_translate(english.context, "en", "zh")
    assert record.provenance["engine"] == "openai-chat" and "tiny-llm prompt:" in record.provenance["engine_version"]
    sent = [json.loads(t) for t in server.texts("/v1/chat/completions")]
    assert all(set(item) == {"question", "options", "context"} for item in sent)  # no letters, no answer key
    assert summary["_run"]["retries"] == 2


def test_cli_translate_and_report(server, tmp_path, capsys):
    from translation.__main__ import main

    store = english_store(tmp_path / "store", n=3)
    code = main(["translate", "--store", str(store), "--benchmarks", "medqa", "pubmedqa", "--languages", "fr", "ar",
                 "--backend", "libre", "--url", server.url, "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "medqa/ar/test: 3 translated, 0 rejected" in out and "saved by de-duplication" in out
    code = main(["translation-report", "--store", str(store), "--benchmarks", "medqa", "pubmedqa",
                 "--languages", "fr", "ar", "--roundtrip", "libre", "--url", server.url, "--no-progress",
                 "--out", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0 and len(report["groups"]) == 4
    fr = next(g for g in report["groups"] if g["language"] == "fr" and g["benchmark"] == "medqa")
    assert fr["roundtrip"]["chrf"] == pytest.approx(100) and fr["flagged"] == [] and fr["rejected"] == 0
    assert "| fr | medqa | 3 | 0 | 0 | 0 | 100.0 |" in (tmp_path / "report.md").read_text()
