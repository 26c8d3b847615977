"""Contamination, end to end on the real English test sets: known test questions and PubMedQA contexts,
disguised (case, whitespace, punctuation), are planted among realistic PMC text; exactly those are
flagged, and decontaminating the corpus removes exactly the chunks that held them."""
import gzip
import json
import random
import unicodedata

import pytest

from medtasks.cli import main
from medtasks.store import read_records
from pmc_samples import jats_article, write_package

TASKS = ("medqa_en", "medqa5_en", "pubmedqa_en", "mmlu_anatomy_en", "medmcqa_en")
PUNCTUATION_SWAPS = {",": ";", ".": "!", ";": ",", ":": " -", "(": "[", ")": "]", "?": "?!", "'": "’", "-": "–"}


def reference_tokens(text: str) -> list[str]:
    """The documented normalisation, written independently of training.ngrams (per character)."""
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        out.append(" " if unicodedata.category(ch)[0] in "PS" else ch.casefold())
    return "".join(out).split()


def grams(toks: list[str], n: int = 13, low: int = 8) -> set:
    if len(toks) >= n:
        return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}
    return {tuple(toks)} if len(toks) >= low else set()


def disguise(text: str, seed: int, whitespace: bool = False) -> str:
    """The same words in other case, punctuation and (optionally) whitespace."""
    rng = random.Random(seed)
    text = "".join(PUNCTUATION_SWAPS.get(ch, ch) for ch in text)
    words = [w.upper() if rng.random() < 0.4 else w for w in text.split(" ")]
    gaps = [" ", "  ", "\t", "\n", "\u00a0 "] if whitespace else [" "]
    return "".join(w + rng.choice(gaps) for w in words).strip()


@pytest.fixture(scope="module")
def test_grams(real_store):
    """{n-gram: {(task, question id, field tokens)}} over every field of the test's tasks."""
    out = {}
    for task in TASKS:
        bench, lang = task.rsplit("_", 1)
        for r in read_records(real_store, bench, lang, "test"):
            for text in [r.question, *r.options.values()] + ([r.context] if r.context else []):
                toks = reference_tokens(text)
                for gram in grams(toks):
                    out.setdefault(gram, set()).add((task, r.id, tuple(toks)))
    return out


def _unique(text: str, test_grams: dict) -> bool:
    """Every field matching inside `text` is `text` itself (its own record, or medqa5's copy of a medqa
    question): then exactly its question(s) must be flagged."""
    toks = reference_tokens(text)
    found = {hit for k in range(8, 14) for gram in grams(toks, k, k) for hit in test_grams.get(gram, ())}
    return all(field_toks == tuple(toks) for _, _, field_toks in found)


@pytest.fixture(scope="module")
def planted(real_store, test_grams, tmp_path_factory):
    """A PMC package (articles with planted paragraphs among generated ones) and a gzipped JSONL of web-like
    text with more plants; returns the folder, the expected flagged ids per task and the planted pmcids."""
    tmp = tmp_path_factory.mktemp("planted")
    rng = random.Random(7)
    records = {t: read_records(real_store, *t.rsplit("_", 1), "test") for t in TASKS}
    choices = []  # (task, record, field, text)
    for task, field, count in (("medqa_en", "question", 4), ("pubmedqa_en", "context", 3),
                               ("medmcqa_en", "question", 1), ("mmlu_anatomy_en", "question", 1)):
        pool = [r for r in records[task] if len(reference_tokens(getattr(r, field) or "")) >= 8]
        if task == "pubmedqa_en":
            pool = [r for r in pool if len(r.context.split()) < 300]
        if task == "mmlu_anatomy_en":  # shorter than 13 words: matched as a whole field
            pool = [r for r in pool if 8 <= len(reference_tokens(r.question)) < 13]
        rng.shuffle(pool)
        picked = [r for r in pool if _unique(getattr(r, field), test_grams)][:count]
        choices += [(task, r, field, getattr(r, field)) for r in picked]
    assert len(choices) == 9
    near = next(r for r in records["medqa_en"][::-1] if len(r.question.split()) > 40)
    near_miss = " ".join("zzq" if i % 6 == 5 else w for i, w in enumerate(near.question.split()))

    articles, licenses, expected, holders = {}, {}, {t: set() for t in TASKS}, {}
    web = []
    for i, (task, record, field, text) in enumerate(choices):
        expected[task].add(record.id)
        if task == "medqa_en":  # medqa5 holds the same questions
            expected["medqa5_en"] |= {r.id for r in records["medqa5_en"] if r.question == record.question}
        if i % 3 == 2:  # a third go to the web-like JSONL, with odd whitespace
            web.append(f"Forum post {i}. {disguise(text, i, whitespace=True)} Thanks for reading.")
            continue
        pmcid = f"PMC{900 + i}"
        articles[pmcid] = jats_article(pmcid, seed=i, paragraphs=4, extra=(f"Marker{i} {disguise(text, i)}",))
        holders[pmcid] = f"Marker{i}"
    articles["PMC999"] = jats_article("PMC999", seed=99, extra=(near_miss,))
    for j in range(12):  # unplanted articles
        articles[f"PMC{700 + j}"] = jats_article(f"PMC{700 + j}", seed=50 + j, paragraphs=6)
    licenses = {pmcid: "CC BY" for pmcid in articles}
    package, _ = write_package(tmp / "oa_comm_xml.PMC009xxxxxx.baseline.2024-01-01.tar.gz", articles, licenses)
    with gzip.open(tmp / "web.jsonl.gz", "wt", encoding="utf-8") as handle:
        for j, text in enumerate(["Nothing to see here."] * 3 + web):
            handle.write(json.dumps({"id": f"web-{j}", "text": text}) + "\n")
    assert sum(map(len, expected.values())) == 13 and expected["medqa5_en"]
    return {"package": package, "web": tmp / "web.jsonl.gz", "expected": expected, "holders": holders,
            "near_miss": near.id}


def _run(argv, capsys, code=None):
    rc = main(argv)
    out = capsys.readouterr()
    if code is not None:
        assert rc == code, out.err
    return out


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def _chunks(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    return [json.loads(line) for part in manifest["parts"] for line in open(folder / part["file"])]


def test_exactly_the_planted_questions_are_flagged(planted, real_store, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    _run(["corpus", str(planted["package"]), "-o", str(corpus), "--max-words", "400", "--quiet"], capsys, 0)
    out = _run(["contamination", str(corpus), str(planted["web"]), "--tasks", ",".join(TASKS),
                "--store", str(real_store), "-o", str(tmp_path / "report"), "--quiet", "--workers", "2"], capsys, 1)
    report = _report(tmp_path / "report")
    flagged = {task: set(info["contaminated_ids"]) for task, info in report["tasks"].items()}
    assert flagged == planted["expected"]
    assert planted["near_miss"] not in flagged["medqa_en"]
    for task, field in (("medqa_en", "question"), ("pubmedqa_en", "context"), ("mmlu_anatomy_en", "question")):
        for qid in flagged[task]:
            assert field in report["tasks"][task]["matches"][qid]
    context = next(iter(report["tasks"]["pubmedqa_en"]["matches"].values()))["context"]
    assert context["matched"] == context["ngrams"] > 100  # the whole abstract, every 13-gram of it
    for task, info in report["tasks"].items():  # every contaminated question has a located sample
        for qid in info["contaminated_ids"]:
            sample = info["samples"][qid][0]
            assert sample["file"].endswith((".jsonl", ".jsonl.gz")) and sample["line"] >= 1
            source = gzip.open(sample["file"], "rt") if sample["file"].endswith(".gz") else open(sample["file"])
            row = json.loads(source.readlines()[sample["line"] - 1])
            assert row["id"] == sample["chunk"] and row["text"][sample["start"]:sample["end"]] == sample["text"]
            assert reference_tokens(sample["text"])  # the excerpt is real text of the corpus
    assert "medqa_en: 4 of 1273 test questions contaminated" in out.out
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| pubmedqa_en | 500 | 3 | 0.6 |" in markdown


@pytest.mark.parametrize("mode", ["drop", "mask"])
def test_decontamination_removes_exactly_the_chunks_that_held_them(planted, real_store, tmp_path, capsys, mode):
    plain, clean = tmp_path / "plain", tmp_path / "clean"
    _run(["corpus", str(planted["package"]), "-o", str(plain), "--max-words", "400", "--quiet"], capsys, 0)
    _run(["corpus", str(planted["package"]), "-o", str(clean), "--max-words", "400", "--quiet",
          "--decontaminate-against", ",".join(TASKS), "--decontaminate-mode", mode, "--store", str(real_store)],
         capsys, 0)
    before = {c["id"]: c for c in _chunks(plain)}
    after = {c["id"]: c for c in _chunks(clean)}
    holders = {cid for cid, c in before.items() if any(m in c["text"].split() for m in planted["holders"].values())}
    assert len(holders) == len(planted["holders"])
    dropped = [json.loads(line) for f in sorted(clean.glob("*.dropped.jsonl")) for line in open(f)]
    reason = "contaminated" if mode == "drop" else "contaminated_masked"
    assert {d["id"] for d in dropped if d["reason"] == reason} == holders
    assert all(d["matches"] for d in dropped if d["reason"] == reason)
    if mode == "drop":
        assert set(after) == set(before) - holders
    else:  # the planted text is cut out; the marker beside it and every other chunk stay
        assert set(after) == set(before)
        markers = set(planted["holders"].values())
        for cid in holders:
            paragraphs = before[cid]["text"].split("\n\n")
            assert all(p in after[cid]["text"] for p in paragraphs if not markers & set(p.split()))
            assert markers & set(after[cid]["text"].split()) and after[cid]["words"] < before[cid]["words"] - 8
    assert all(after[cid] == before[cid] for cid in set(after) - holders)
    manifest = json.loads((clean / "manifest.json").read_text())
    assert manifest["dropped"][reason] == len(holders)
    _run(["contamination", str(clean), "--tasks", ",".join(TASKS), "--store", str(real_store),
          "-o", str(tmp_path / "report"), "--quiet"], capsys, 0)
    assert all(t["contaminated"] == 0 for t in _report(tmp_path / "report")["tasks"].values())
