"""Contamination parts: normalisation, the short-field rule, exactness, Chinese character n-grams,
compressed files and byte ranges, shards and their merge, bad inputs."""
import bz2
import gzip
import json
import lzma

import numpy as np
import pytest

from medtasks.cli import main
from medtasks.records import Record
from medtasks.store import write_records
from training.ngram_index import Index
from training.ngrams import CHAR, WORD, Settings, mode_of, normalize, tokens

QUESTION = ("A 45-year-old man presents with crushing chest pain radiating to the left arm, sweating and nausea "
            "that began two hours ago while he was shovelling snow.")
CONTEXT = ("Statins lower cholesterol. We followed 1200 adults with type 2 diabetes for five years and recorded "
           "every cardiovascular event, stroke and death in both arms of the trial.")
ZH = "患者男性，45岁，两小时前铲雪时出现胸骨后压榨性疼痛，向左臂放射，伴大汗和恶心，最可能的诊断是什么？"


@pytest.mark.parametrize("raw, expected", [
    ("ＡＢＣ１２３ Straße", ["abc123", "strasse"]),  # NFKC (full width) and casefold (ß -> ss)
    ("“Quoted”—text… it’s", ["quoted", "text", "it", "s"]),  # Unicode punctuation is a separator
    ("ﬁbrosis ½ dose", ["fibrosis", "1", "2", "dose"]),  # ligature; the fraction slash is a symbol
    ("ΣΊΣΥΦΟΣ، мышца; x²", ["σίσυφοσ", "мышца", "x2"]),  # Greek final sigma folds; Arabic comma
    ("a\tb\u00a0 c\n\nd", ["a", "b", "c", "d"]),
])
def test_word_normalisation(raw, expected):
    assert tokens(raw, WORD) == expected


def test_normalisation_matches_whole_string_nfkc():
    """NFKC is applied only to the words that need it: the same as NFKC of the whole text, on random mixes
    of decomposing, combining and composing characters (Hangul jamo, marks, ligatures, full width)."""
    import random
    import unicodedata

    def reference(text):
        return "".join(" " if unicodedata.category(c)[0] in "PS" or c.isspace() else c
                       for c in unicodedata.normalize("NFKC", text)).casefold().split()

    rng = random.Random(0)
    alphabet = [chr(c) for c in [*range(9, 14), *range(32, 127), 0xA0, 0xB5, 0x301, 0x308, 0x327, 0x345, 0xE9,
                                 0xDF, 0x3A3, 0x1100, 0x1161, 0x11A8, 0xAC00, 0x3000, 0xFF0C, 0x4E00, 0xFB01,
                                 0x2126, 0x212B, 0x344, 0xF73, 0x1E9B, 0x323, 0x2460, 0xB47, 0xB3E, 0x2028, 0x85]]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert normalize(text).split() == reference(text), repr(text)


def test_character_tokens_and_modes():
    assert tokens("患者 男性，45岁！", CHAR) == ["患", "者", "男", "性", "4", "5", "岁"]
    assert normalize("，。！") == "   "
    assert [mode_of(t) for t in (ZH, "アスピリンを投与した患者", QUESTION, "Пациент 45 лет", "مريض يبلغ")] == \
        [CHAR, CHAR, WORD, WORD, WORD]
    assert mode_of("患者服用 aspirin 100 mg 后") == CHAR  # mostly Han


def _words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


def test_short_fields_are_matched_whole_or_skipped():
    index = Index([_words(7), _words(8, 100), _words(12, 200), _words(20, 300)])
    assert index.grams == [0, 1, 1, 8]
    found = lambda text: {int(f) for _, _, _, _, refs in index.search([text]) for f, _ in refs}  # noqa: E731
    assert found(f"x {_words(8, 100)} y") == {1} and found(_words(7, 100)) == set()
    assert found(_words(7)) == set()  # too short: never checked
    assert found(_words(13, 300)) == {3} and found(_words(12, 300)) == set() and found(_words(12, 200)) == {2}
    assert found(_words(6, 300) + " other " + _words(7, 306)) == set()  # an unknown word breaks the window


def test_texts_are_not_joined_and_hash_hits_are_exact():
    index = Index([QUESTION])
    half = QUESTION.split()
    assert list(index.search([" ".join(half[:10]), " ".join(half[10:20])])) == []  # 12 + 10 tokens, two texts
    assert len(list(index.search([" ".join(half[:20])]))) == 22 - 12
    hits = list(index.search(["noise", QUESTION.upper()]))
    assert {h[0] for h in hits} == {1} and len(hits) == len(tokens(QUESTION, WORD)) - 12
    with pytest.raises(Exception, match="--ngram 13 with minimum 14"):
        Settings(min_tokens=14)


def test_a_word_hash_collision_is_not_a_match(monkeypatch):
    """Corpus words are looked up by a 64-bit hash; hits are re-checked as strings, so even a collision
    (forced here: 'zzz' hashes like 'chest') reports nothing that is not really there."""
    import training.ngram_index as module
    from training.ngrams import normalized_codes, word_hashes

    index, text = Index([QUESTION]), QUESTION.replace("chest", "zzz")
    honest = [hit[:4] for hit in index.search([text])]  # the windows that do not hold the changed word
    fake, real = word_hashes(normalized_codes("zzz"))[0], word_hashes(normalized_codes("chest"))[0]
    monkeypatch.setattr(module, "word_hashes", lambda codes: np.where(word_hashes(codes) == fake, real,
                                                                      word_hashes(codes)))
    fooled = list(index.find(index.encode([text], WORD), WORD))
    assert len(fooled) == len(tokens(QUESTION, WORD)) - 12 > len(honest) > 0  # the ids alone are fooled
    assert [hit[:4] for hit in index.search([text])] == honest  # the reported matches are not


def _store(tmp_path, language="en"):
    store = tmp_path / "store"
    options = {"A": "Myocardial infarction", "B": "Aortic dissection", "C": "Pericarditis",
               "D": "An oesophageal rupture after forceful vomiting against a closed glottis"}
    records = [Record("q1", "medqa", language, "test", ZH if language == "zh" else QUESTION, options, "A"),
               Record("q2", "medqa", language, "test", "Which drug lowers cholesterol by inhibiting HMG-CoA "
                      "reductase in the liver of adults?", options, "B"),
               Record("p1", "pubmedqa", "en", "test", "Do statins prevent events?",
                      {"A": "yes", "B": "no", "C": "maybe"}, "A", context=CONTEXT)]
    write_records(store, records)
    return store


def _scan(argv, capsys, code):
    rc = main(["contamination", "--quiet", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    return err


def test_chinese_questions_use_character_ngrams(tmp_path, capsys):
    store = _store(tmp_path, "zh")
    planted = " ".join(ZH.replace("，", ", ").replace("？", "?"))[:80]  # spaced out, ASCII punctuation, 2/3 of it
    corpus = tmp_path / "web.txt.bz2"
    with bz2.open(corpus, "wt", encoding="utf-8") as handle:
        handle.write("English text only here.\n患者女性，30岁，咳嗽三天。\n" + planted + "\n")
    _scan([corpus, "--tasks", "medqa_zh", "--store", store, "-o", tmp_path / "r"], capsys, 1)
    task = json.loads((tmp_path / "r" / "report.json").read_text())["tasks"]["medqa_zh"]
    assert task["contaminated_ids"] == ["q1"] and list(task["matches"]["q1"]) == ["question"]
    assert task["samples"]["q1"][0]["line"] == 3
    assert task["fields"] == {"checked": 4, "too_short": 6}  # questions and the long option D; 6 short options


def _corpus_files(tmp_path) -> list:
    """The same lines as plain JSONL, in each compression, and a plain text file."""
    lines = [json.dumps({"id": f"c{i}", "text": f"Line {i} of filler text about blood pressure."}) for i in range(400)]
    lines[123] = json.dumps({"id": "c123", "text": f"Case report. {QUESTION.lower()} End."})
    lines[377] = json.dumps({"id": "c377", "text": CONTEXT.replace(" ", "  ")})
    data = ("\n".join(lines) + "\n").encode()
    files = {"plain.jsonl": data, "a.jsonl.gz": gzip.compress(data), "b.jsonl.bz2": bz2.compress(data),
             "c.jsonl.xz": lzma.compress(data)}
    zstandard = pytest.importorskip("zstandard", reason="the zstandard package is in medeval[training]")
    files["d.jsonl.zst"] = zstandard.ZstdCompressor().compress(data)
    out = []
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
        out.append(tmp_path / name)
    return out


def test_compressed_files_and_byte_ranges_give_the_same_report(tmp_path, capsys):
    store = _store(tmp_path)
    reports = {}
    for path in _corpus_files(tmp_path):
        for workers, range_mb in ((1, 256), (3, 0.005)):  # 0.005 MB: the plain file is cut into ~40 ranges
            out = tmp_path / f"r-{path.name}-{workers}"
            _scan([path, "--tasks", "medqa_en,pubmedqa_en", "--store", store, "-o", out, "--workers", workers,
                   "--range-mb", range_mb], capsys, 1)
            reports[(path.name, workers)] = json.loads((out / "report.json").read_text())
    tasks = [{k: {**t, "samples": {q: [{**s, "file": None} for s in v] for q, v in t["samples"].items()}}
              for k, t in r["tasks"].items()} for r in reports.values()]
    assert all(t == tasks[0] for t in tasks)
    first = tasks[0]
    assert first["medqa_en"]["contaminated_ids"] == ["q1"] and first["pubmedqa_en"]["contaminated_ids"] == ["p1"]
    assert first["medqa_en"]["samples"]["q1"][0]["line"] == 124 and first["medqa_en"]["samples"]["q1"][0]["chunk"] \
        == "c123"
    assert first["pubmedqa_en"]["samples"]["p1"][0]["line"] == 378
    assert all(r["corpus"]["lines"] == 400 and r["corpus"]["bytes"] == reports[("plain.jsonl", 1)]["corpus"]["bytes"]
               for r in reports.values())


def test_shards_merge_into_the_unsharded_report(tmp_path, capsys):
    store = _store(tmp_path)
    files = _corpus_files(tmp_path)[:4]
    base = ["--tasks", "medqa_en,pubmedqa_en", "--store", store]
    _scan([*files, *base, "-o", tmp_path / "whole"], capsys, 1)
    for i in (1, 2, 3):
        _scan([*files, *base, "-o", tmp_path / "shards", "--shard", f"{i}/3"], capsys, 0)
    shards = sorted((tmp_path / "shards").glob("shard-*.json"))
    assert [p.name for p in shards] == ["shard-1-of-3.json", "shard-2-of-3.json", "shard-3-of-3.json"]
    _scan(["--merge", *shards, "-o", tmp_path / "merged"], capsys, 1)
    whole, merged = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("whole", "merged"))
    assert merged["tasks"] == whole["tasks"] and merged["corpus"]["shards"] == ["1/3", "2/3", "3/3"]
    assert sorted(merged["corpus"]["files"]) == sorted(whole["corpus"]["files"])
    assert merged["corpus"]["bytes"] == whole["corpus"]["bytes"]
    err = _scan(["--merge", shards[0], shards[2], "-o", tmp_path / "bad"], capsys, 2)
    assert "shards 2/3 missing" in err
    err = _scan(["--merge", shards[0], shards[0], shards[1], "-o", tmp_path / "bad"], capsys, 2)
    assert "shard 1/3 is also in" in err
    _scan([*files, "--tasks", "medqa_en", "--store", store, "-o", tmp_path / "other", "--shard", "2/3"], capsys, 0)
    err = _scan(["--merge", shards[0], tmp_path / "other" / "shard-2-of-3.json", shards[2], "-o", tmp_path / "bad"],
                capsys, 2)
    assert "made with other tasks, test data or settings" in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("argv, message", [
    (["{corpus}", "--tasks", "medqa_xx"], "unknown task or group medqa_xx"),
    (["{corpus}", "--tasks", "medeval_en"], "mmlu_college_medicine/en/test, medqa5/en/test, medmcqa/en/test;"),
    (["{corpus}", "--tasks", "medqa_fr,mmlu_anatomy_en"], "medqa/fr/test, mmlu_anatomy/en/test"),
    (["{corpus}", "--tasks", "medqa_en", "--shard", "3/2"], "--shard 3/2: expected i/N"),
    (["{tmp}/nothing.jsonl", "--tasks", "medqa_en"], "corpus input"),
    (["{tmp}/bad.jsonl", "--tasks", "medqa_en"], "bad.jsonl, byte 0"),
    (["{corpus}", "--tasks", "medqa_en", "--text-field", "body"], "field 'body'"),
    (["--tasks", "medqa_en"], "give the corpus and --tasks"),
    (["{corpus}", "--tasks", "medqa_en", "--workers", "0"], "--workers 0"),
    (["{corpus}", "--tasks", "medqa_en", "--ngram", "5"], "--ngram 5 with minimum 8"),
])
def test_bad_inputs_are_one_line(tmp_path, capsys, argv, message):
    store = _store(tmp_path)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": QUESTION}) + "\n")
    argv = [a.replace("{corpus}", str(tmp_path / "c.jsonl")).replace("{tmp}", str(tmp_path)) for a in argv]
    err = _scan([*argv, "--store", store, "-o", tmp_path / "out"], capsys, 2)
    assert err.startswith("medeval contamination: ") and "\n" not in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_masking_cuts_only_the_overlap(tmp_path):
    from training.contamination import TestSet, decontaminate

    test = TestSet.load(_store(tmp_path), [("medqa", "en"), ("pubmedqa", "en")], Settings())
    before, after = "First paragraph stays.\n\nBefore it:", "After it, the text goes on."
    text = f"{before} {QUESTION.upper()} {after}"
    (masked, matches), (clean, none) = decontaminate(test, [text, before], mask=True)
    assert masked == f"{before} {after}" and matches == {"medqa_en": {"q1": ["question"]}}
    assert (clean, none) == (before, {})
    assert decontaminate(test, [text], mask=False) == [(None, {"medqa_en": {"q1": ["question"]}})]


def test_decontamination_options_are_part_of_the_resume_key(tmp_path, capsys):
    """A decontaminated corpus resumes only against the same tasks, mode and test data."""
    from pmc_samples import jats_article, write_package

    store = _store(tmp_path)
    package, _ = write_package(tmp_path / "oa_comm_xml.PMC001xxxxxx.baseline.2024-01-01.tar.gz",
                               {"PMC1": jats_article("PMC1", extra=(QUESTION,)), "PMC2": jats_article("PMC2", seed=2)},
                               {"PMC1": "CC BY", "PMC2": "CC BY"})
    argv = ["corpus", str(package), "-o", str(tmp_path / "c"), "--quiet", "--store", str(store),
            "--decontaminate-against", "medqa_en"]
    assert main(argv) == 0
    dropped = [json.loads(line) for line in open(tmp_path / "c" / "part-00000.dropped.jsonl")]
    assert [(d["id"], d["reason"], d["detail"]) for d in dropped] == [("PMC1-0", "contaminated", "medqa_en q1 question")]
    assert main(argv) == 0  # the same options: resumed (nothing left to do)
    assert main(argv + ["--decontaminate-mode", "mask"]) == 2
    assert "--decontaminate-mode drop -> mask" in capsys.readouterr().err
    write_records(store, [Record("q9", "medqa", "en", "test", "Another question entirely, long enough to count "
                                 "as a field of its own here.", {"A": "a", "B": "b", "C": "c", "D": "d"}, "A")])
    assert main(argv) == 2
    assert "the test questions in the store" in capsys.readouterr().err
    assert main(["corpus", str(package), "-o", str(tmp_path / "d"), "--decontaminate-mode", "mask"]) == 2
    assert "--decontaminate-mode needs --decontaminate-against" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
