"""The quality report on the real third-party French and Spanish MMLU (../shared/data) and on our
own pipeline's output for the same items (offline: the loopback server is our only backend here).

The third-party files are scored as the system under test: the report must flag their known
truncated professional_medicine vignettes (question under 30% of the English length: the data
README counts es 130/272, fr 55/272). Our output is scored against them as the reference."""
import json

import pytest

from libre_server import FakeLibre
from medtasks.store import read_records, write_records
from translation.backends import get_backend
from translation.cache import Cache
from translation.engine import Engine
from translation.pipeline import translate_store
from translation.quality import quality_report, to_markdown

pytest.importorskip("sacrebleu")
BENCH = "mmlu_professional_medicine"


@pytest.fixture(scope="module")
def third_party(shared_data, tmp_path_factory):
    from medtasks.sources import import_folder

    store = tmp_path_factory.mktemp("third_party")
    import_folder(shared_data, store, benchmarks=[BENCH])
    return store


def _truncated(store, language):
    english = {r.id: r for r in read_records(store, BENCH, "en", "test")}
    return {r.id for r in read_records(store, BENCH, language, "test")
            if len(r.question) < 0.3 * len(english[r.id].question)}


def test_report_flags_the_truncated_third_party_vignettes(third_party, tmp_path):
    report = quality_report(third_party, [BENCH], ["fr", "es"], reference_store=third_party)
    groups = {g["language"]: g for g in report["groups"]}
    for language, expected in (("fr", 55), ("es", 130)):
        group = groups[language]
        truncated = _truncated(third_party, language)
        assert abs(len(truncated) - expected) <= 3  # the data README's count
        flagged = {f["id"] for f in group["flagged"]}
        length_flags = {f["id"] for f in group["flagged"] if any("length ratio" in r for r in f["reasons"])}
        assert truncated <= flagged and len(truncated - length_flags) <= 0.05 * len(truncated)
        assert group["stored"] == 272 and group["kinds"] == {"pretranslated": 272}
        assert group["reference"]["chrf"] == pytest.approx(100)  # against itself: the scorer is sane
    markdown = to_markdown(report)
    assert "length ratio" in markdown and "| es | mmlu_professional_medicine | 272 |" in markdown


@pytest.mark.parametrize("items", [40, pytest.param(272, marks=pytest.mark.slow)])
def test_our_pipeline_scored_against_the_third_party_reference(third_party, tmp_path, items):
    out, source = tmp_path / "ours", tmp_path / "source"
    write_records(source, [r for lang in ("en", "fr", "es") for r in read_records(third_party, BENCH, lang, "test")[:items]])
    with FakeLibre() as server:
        backend = get_backend("libre", url=server.url, workers=4, timeout=2)
        summary = translate_store(source, [BENCH], ["test"], ["fr", "es"], backend, out_store=out,
                                  progress=False)
        assert summary["_run"]["failed"] == 0
        roundtrip = Engine(backend, Cache(tmp_path / "rt.sqlite"), progress=False)
        report = quality_report(out, [BENCH], ["fr", "es"], english_store=source, roundtrip=roundtrip,
                                reference_store=source)
    for group in report["groups"]:
        assert group["stored"] + group["rejected"] == items and group["kinds"] == {"translation": group["stored"]}
        assert group["roundtrip"]["chrf"] == pytest.approx(100) and group["roundtrip"]["outliers"] == []
        ref = group["reference"]
        assert ref["n"] == group["stored"] and 0 < ref["chrf"] < 60 and ref["bleu_tokenize"] == "13a"
        assert len(ref["per_item_chrf"]) == ref["n"]
    json.dumps(report)  # serialisable as written by the CLI


def test_roundtrip_outliers_find_damaged_items(tmp_path):
    from test_translation_web import english_store

    store = english_store(tmp_path / "store", n=12)
    with FakeLibre() as server:
        backend = get_backend("libre", url=server.url, timeout=2)
        translate_store(store, ["pubmedqa"], ["test"], ["ru"], backend, progress=False)
        path = store / "pubmedqa/ru/test.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        damaged = json.loads(lines[4])
        damaged["context"] = "Совсем другой текст про другое исследование. " * 25  # a wrong context
        lines[4] = json.dumps(damaged, ensure_ascii=False)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        report = quality_report(store, ["pubmedqa"], ["ru"], roundtrip=Engine(backend, Cache(tmp_path / "c"), False))
    group = report["groups"][0]
    assert group["roundtrip"]["outliers"] == ["p4"]
    assert group["roundtrip"]["per_item_chrf"]["p4"] < 30 < group["roundtrip"]["per_item_chrf"]["p0"]
