"""PMC corpus preparation: JATS -> text, chunking, licence filter, manifest, malformed XML, resume."""
import json
import tarfile

import pytest

from medtasks.common import UsageError
from medtasks.records import DataError
from pmc_samples import MARKERS_DROPPED, jats_article, write_package, write_random_package
from training import corpus as corpus_mod
from training.corpus import Options, normalize_license, prepare_corpus, read_file_list
from training.jats import JatsError, chunk_paragraphs, clean, parse_article


def test_jats_keeps_prose_and_drops_everything_else():
    article = parse_article(jats_article("PMC1", paragraphs=2))
    text = "\n".join(article.paragraphs())
    assert article.title.startswith("Effects of a drug on blood pressure")
    assert article.abstract[:2] == ["Background", "We studied the effect of treatment on outcome."]
    assert "Risk fell by 12% (p < 0.05)." in article.abstract
    assert {"Introduction", "Methods", "adults over 18", "written consent"} <= set(article.body)
    assert "The dose was mg per kg." in article.body
    assert "Patients were followed for one year." in article.body
    for marker in MARKERS_DROPPED:
        assert marker not in text, marker


@pytest.mark.parametrize("raw, expected", [
    ("  a\n  b  ", "a b"),
    ("as shown [ , ] here .", "as shown here."),
    ("effect ( ; ) held , then", "effect held, then"),
    ("value (p < 0.05) kept", "value (p < 0.05) kept"),
])
def test_clean(raw, expected):
    assert clean(raw) == expected


def _cite(rid: str) -> str:
    return f'<xref ref-type="bibr" rid="B{rid}">{rid}</xref>'


@pytest.mark.parametrize("xml, expected", [
    (f"Trials disagreed {_cite(1)}, {_cite(2)}.", "Trials disagreed."),
    (f"Trials disagreed {_cite(1)},{_cite(2)}; {_cite(3)}.", "Trials disagreed."),
    (f"Trials disagreed [{_cite(1)}–{_cite(3)}].", "Trials disagreed."),
    (f"Trials disagreed [{_cite(1)}], [{_cite(2)}] and more.", "Trials disagreed and more."),
    (f"Trials disagreed ({_cite(4)}; {_cite(5)}), then agreed.", "Trials disagreed, then agreed."),
    (f"Trials disagreed<sup>{_cite(1)},{_cite(2)}</sup>.", "Trials disagreed."),
    (f"Trials disagreed [{_cite(1)}, {_cite(2)}, {_cite(3)}–{_cite(6)}].", "Trials disagreed."),
    (f"Blood pressure, heart rate {_cite(1)}, and weight were kept.", "Blood pressure, heart rate, and weight were kept."),
    (f"Risk fell (p &lt; 0.05, {_cite(7)}) in 1–3 years.", "Risk fell (p < 0.05) in 1–3 years."),
    (f"Risk fell ({_cite(7)}; see Methods).", "Risk fell (see Methods)."),
    ("Doses of 1, 2 and 3 mg [a; b] were given.", "Doses of 1, 2 and 3 mg [a; b] were given."),
])
def test_citation_separators_go_with_the_citations(xml, expected):
    article = parse_article(f"<article><body><p>{xml}</p></body></article>".encode())
    assert article.body == [expected]


@pytest.mark.parametrize("data, message", [
    (b"<article><body><p>unclosed</body></article>", "malformed XML"),
    (b"not xml at all", "malformed XML"),
    (b"<html><body/></html>", "no <article>"),
])
def test_bad_articles_raise(data, message):
    with pytest.raises(JatsError, match=message):
        parse_article(data)


@pytest.mark.parametrize("lengths, limit, expected", [
    ([3, 4], 10, [7]),  # two paragraphs fit in one chunk
    ([6, 6], 10, [6, 6]),  # the second does not fit: new chunk
    ([25], 10, [10, 10, 5]),  # a long paragraph is cut at word boundaries
    ([4, 12], 10, [4, 10, 2]),
    ([], 10, []),
])
def test_chunk_paragraphs(lengths, limit, expected):
    paragraphs = [" ".join(f"w{p}_{i}" for i in range(n)) for p, n in enumerate(lengths)]
    chunks = chunk_paragraphs(paragraphs, limit)
    assert [len(c.split()) for c in chunks] == expected
    assert " ".join(" ".join(chunks).split()) == " ".join(" ".join(paragraphs).split())  # nothing lost, order kept


@pytest.mark.parametrize("raw, expected", [
    ("CC BY", "CC BY"), ("cc-by 4.0", "CC BY"), ("CC0", "CC0"), ("CC BY-NC-ND", "CC BY-NC-ND"),
    ("NO-CC CODE", "NO-CC CODE"), ("  cc  by-sa ", "CC BY-SA"),
])
def test_normalize_license(raw, expected):
    assert normalize_license(raw) == expected


def _package(tmp_path):
    articles = {
        "PMC10": jats_article("PMC10", seed=1),
        "PMC11": jats_article("PMC11", seed=2),
        "PMC12": jats_article("PMC12", seed=3),  # non-commercial: dropped by default
        "PMC13": b"<article><front><article-meta>",  # malformed
        "PMC14": jats_article("PMC14", seed=4),  # retracted
        "PMC15": b"<article><front/><body/></article>",  # no text
        "PMC16": jats_article("PMC16", seed=5, paragraphs=40, words_per_paragraph=120),  # long: several chunks
    }
    licenses = {"PMC10": "CC BY", "PMC11": "CC0", "PMC12": "CC BY-NC", "PMC13": "CC BY", "PMC14": "CC BY-SA",
                "PMC15": "CC BY-ND", "PMC16": "CC BY"}
    package, file_list = write_package(tmp_path / "oa_comm_xml.PMC000xxxxxx.baseline.2024-01-01.tar.gz",
                                       articles, licenses, retracted=frozenset({"PMC14"}))
    with open(file_list, "a") as handle:  # a listed article that the package lacks
        handle.write("PMC000xxxxxx/PMC99.xml,x,PMC99,2024-01-01 00:00:00,1,CC BY,no\n")
    return package


def _read_parts(out):
    rows = []
    for part in json.loads((out / "manifest.json").read_text())["parts"]:
        rows += [json.loads(line) for line in open(out / part["file"])]
    return rows


def test_prepare_corpus_counts_and_outputs(tmp_path, caplog):
    package = _package(tmp_path)
    manifest = prepare_corpus([package], tmp_path / "out", Options(max_words=300), progress_bar=False)
    assert manifest["articles_read"] == 7
    assert manifest["articles_kept"] == 3
    assert manifest["dropped"] == {"license": 1, "malformed_xml": 1, "retracted": 1, "no_text": 1}
    assert manifest["licenses"] == {"CC BY": 3, "CC0": 1, "CC BY-NC": 1, "CC BY-SA": 1, "CC BY-ND": 1}
    rows = _read_parts(tmp_path / "out")
    assert {r["pmcid"] for r in rows} == {"PMC10", "PMC11", "PMC16"}
    assert sum(r["pmcid"] == "PMC16" for r in rows) > 5
    assert all(r["words"] == len(r["text"].split()) <= 300 for r in rows)
    assert manifest["chunks"] == len(rows) and manifest["words"] == sum(r["words"] for r in rows)
    assert manifest["tokens"] is None
    dropped = [json.loads(line) for line in open(tmp_path / "out" / "part-00000.dropped.jsonl")]
    malformed = [d for d in dropped if d["reason"] == "malformed_xml"]
    assert malformed[0]["pmcid"] == "PMC13" and "malformed XML" in malformed[0]["detail"]
    assert "PMC13" in caplog.text  # reported per article


def test_drop_reasons_are_one_closed_registry(tmp_path):
    from pathlib import Path

    from training.corpus import DROP_REASONS, Stats, _Writer

    package = _package(tmp_path)
    manifest = prepare_corpus([package], tmp_path / "out", progress_bar=False)
    dropped = [json.loads(line) for line in open(tmp_path / "out" / "part-00000.dropped.jsonl")]
    assert set(manifest["dropped"]) | {d["reason"] for d in dropped} <= set(DROP_REASONS)
    writer = _Writer(tmp_path, {}, Stats(), None)
    with pytest.raises(KeyError, match="unknown drop reason 'too_long'; valid: not_in_file_list"):
        writer.drop("too_long", pmcid="PMC1")
    readme = (Path(corpus_mod.__file__).parent / "README.md").read_text()
    for reason in DROP_REASONS:  # the user documentation lists every reason
        assert f"`{reason}`" in readme, reason


def test_licences_are_configurable(tmp_path):
    package = _package(tmp_path)
    manifest = prepare_corpus([package], tmp_path / "out", Options(licenses=("CC BY-NC",), keep_retracted=True),
                              progress_bar=False)
    assert manifest["articles_kept"] == 1 and manifest["dropped"]["license"] == 6


def test_token_counts_with_a_tokenizer(tmp_path, tiny_llama):
    package = _package(tmp_path)
    manifest = prepare_corpus([package], tmp_path / "out", Options(tokenizer=str(tiny_llama)), progress_bar=False)
    assert manifest["tokens"] > manifest["words"]  # the tiny BPE splits words


def test_resume_after_interruption_gives_the_same_corpus(tmp_path, monkeypatch):
    package, _ = write_random_package(tmp_path / "oa_comm_xml.PMC001xxxxxx.baseline.2024-01-01.tar.gz", 30, seed=3)
    options = Options(part_chunks=4, max_words=200)
    reference = prepare_corpus([package], tmp_path / "ref", options, progress_bar=False)

    real_judge, calls = corpus_mod.judge, []

    def crashing_judge(*args):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return real_judge(*args)

    monkeypatch.setattr(corpus_mod, "judge", crashing_judge)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus([package], tmp_path / "out", options, progress_bar=False)
    done = json.loads((tmp_path / "out" / "progress.json").read_text())["packages"][package.name]["articles_done"]
    assert 0 < done < 20
    monkeypatch.setattr(corpus_mod, "judge", real_judge)
    resumed = prepare_corpus([package], tmp_path / "out", options, progress_bar=False)
    for key in ("articles_read", "articles_kept", "dropped", "licenses", "chunks", "words"):
        assert resumed[key] == reference[key], key
    assert _read_parts(tmp_path / "out") == _read_parts(tmp_path / "ref")
    again = prepare_corpus([package], tmp_path / "out", options, progress_bar=False)  # finished: nothing redone
    assert again["articles_read"] == reference["articles_read"]


def test_resuming_with_other_options_says_which_differ(tmp_path, capsys):
    from medtasks.cli import main

    package, _ = write_random_package(tmp_path / "oa_comm_xml.PMC001xxxxxx.baseline.2024-01-01.tar.gz", 3, seed=3)
    out = tmp_path / "out"
    assert main(["corpus", str(package), "-o", str(out), "--max-words", "200", "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["corpus", str(package), "-o", str(out), "--max-words", "50", "--license", "CC0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "--max-words 200 -> 50" in err and "--license CC BY, CC BY-ND, CC BY-SA, CC0 -> CC0" in err
    assert "--part-chunks" not in err  # only what differs
    assert f"a new --output folder or delete {out}" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched


def test_file_list_errors_name_file_and_field(tmp_path):
    bad = tmp_path / "list.csv"
    bad.write_text("Article File,AccessionID\nPMC000xxxxxx/PMC1.xml,PMC1\n")
    with pytest.raises(DataError, match=r"list.csv, line 1, field 'License'"):
        read_file_list(bad)
    package = tmp_path / "lonely.tar.gz"
    with tarfile.open(package, "w:gz"):
        pass
    with pytest.raises(UsageError, match="lonely.filelist.csv"):
        prepare_corpus([package], tmp_path / "out", progress_bar=False)


def test_cli_corpus(tmp_path, capsys):
    from medtasks.cli import main

    package = _package(tmp_path)
    assert main(["corpus", str(package), "-o", str(tmp_path / "out"), "--license", "CC BY", "--quiet"]) == 0
    assert "7 articles read, 2 kept" in capsys.readouterr().out
