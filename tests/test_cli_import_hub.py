"""`medeval import --hub`: benchmarks x languages in one read of each source and one store transaction
(the hub itself is replaced by local stand-ins: no test reaches the network)."""
import pytest
from test_sources_bioinstructqa import build_zip

from medtasks import cli
from medtasks.records import Record
from medtasks.sources import hub
from medtasks.store import read_manifest, verify_store


def english(benchmark, n=2):
    return [Record(f"{benchmark}-test-{i}", benchmark, "en", "test", f"Q{i}?", dict(zip("ABCD", "abcd")), "A",
                   provenance={"kind": "import", "source": "hub", "row": i}) for i in range(n)]


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    calls = {"fetch": [], "zip": 0}
    zip_path = build_zip(tmp_path / "data.zip")

    def download():
        calls["zip"] += 1
        return zip_path

    monkeypatch.setattr(hub, "ensure_hub", lambda what: None)
    monkeypatch.setattr(hub, "fetch", lambda key: calls["fetch"].append(key) or english(key))
    monkeypatch.setattr(hub, "download_bioinstructqa", download)
    return calls


def test_languages_come_from_one_archive_read_and_one_transaction(tmp_path, capsys, fake_hub):
    code = cli.main(["import", "--hub", "--benchmarks", "medqa", "pubmedqa", "--languages", "en", "fr", "zh",
                     "--store", str(tmp_path / "store")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert fake_hub == {"fetch": ["medqa", "pubmedqa"], "zip": 1}
    manifest = read_manifest(tmp_path / "store")
    assert manifest["medqa/en/test"]["sources"] == ["import:hub"]  # the archive's English copy did not mix in
    assert {key for key in manifest if "/fr/" in key or "/zh/" in key} == {
        "medqa/fr/test", "medqa/zh/test", "pubmedqa/fr/test", "pubmedqa/zh/test"}
    assert "medqa/en/fewshot1" in manifest  # the archive's English few-shot sets come along
    assert verify_store(tmp_path / "store") == []


def test_a_benchmark_the_hub_lacks_in_a_language_names_the_translation(tmp_path, capsys, fake_hub):
    code = cli.main(["import", "--hub", "--benchmarks", "truthfulqa_med", "--languages", "fr",
                     "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and "`medeval translate --benchmarks truthfulqa_med --languages fr`" in err
    assert not (tmp_path / "store").exists()


def test_offline_hub_import_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli.main(["import", "--hub", "--benchmarks", "medqa", "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("medeval import: cannot fetch medqa (en): HF_HUB_OFFLINE is set.")
    assert len(err.strip().splitlines()) == 1
