"""Small realistic PubMed Central JATS articles, bulk packages and file lists, written on the spot.

Used by the training tests and benchmarks/bench_training.py; nothing here is real PMC content.
"""
from __future__ import annotations

import csv
import io
import random
import tarfile
from pathlib import Path
from xml.sax.saxutils import escape

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.3 20210610//EN" "JATS-archivearticle1-3.dtd">
<article xmlns:mml="http://www.w3.org/1998/Math/MathML" xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article" dtd-version="1.3" xml:lang="en">"""

WORDS = ("patient treatment disease protein gene cell heart lung kidney liver brain drug dose cohort "
         "trial outcome risk infection therapy clinical mutation expression tumour blood pressure").split()


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def jats_article(pmcid: str, title: str = "Effects of a drug on blood pressure", paragraphs: int = 3,
                 seed: int = 0, words_per_paragraph: int = 60, extra: tuple[str, ...] = ()) -> bytes:
    """One article with everything the converter must keep AND everything it must drop; `extra` paragraphs
    (plain text, escaped here) follow the generated ones."""
    rng = random.Random(seed)
    body = []
    for i in range(paragraphs):
        text = " ".join(sentence(rng) for _ in range(max(1, words_per_paragraph // 12)))
        body.append(f'<p>{text} As reported before <xref ref-type="bibr" rid="B{i}">{i + 1}</xref>, '
                    f'the effect held <xref ref-type="fig" rid="F1">Figure 1</xref>.</p>')
    body += [f"<p>{escape(text)}</p>" for text in extra]
    return f"""{HEADER}
<front>
 <journal-meta><journal-id journal-id-type="nlm-ta">Test J</journal-id><issn>1234-5678</issn></journal-meta>
 <article-meta>
  <article-id pub-id-type="pmc">{pmcid[3:]}</article-id>
  <article-id pub-id-type="doi">10.1000/{pmcid.lower()}</article-id>
  <title-group><article-title>{title}<sup>&#x2020;</sup></article-title></title-group>
  <contrib-group><contrib contrib-type="author"><name><surname>Doe</surname><given-names>Jane</given-names></name></contrib></contrib-group>
  <abstract>
   <sec><title>Background</title><p>We studied the <italic>effect</italic> of treatment on outcome.</p></sec>
   <sec><title>Results</title><p>Risk fell by 12% (<italic>p</italic> &lt; 0.05) <xref ref-type="bibr" rid="B1">[1]</xref>.</p></sec>
  </abstract>
  <abstract abstract-type="graphical"><p>GRAPHICAL ABSTRACT TEXT</p></abstract>
  <permissions><license license-type="open-access"><license-p>LICENCE TEXT</license-p></license></permissions>
 </article-meta>
</front>
<body>
 <sec id="s1"><label>1.</label><title>Introduction</title>
  {''.join(body)}
  <p>The dose was <inline-formula><mml:math><mml:mi>x</mml:mi><mml:mo>=</mml:mo><mml:mn>2</mml:mn></mml:math></inline-formula> mg per kg.</p>
  <disp-formula id="E1"><tex-math>E = mc^2 FORMULA</tex-math></disp-formula>
  <p>Inclusion criteria were:<list list-type="bullet"><list-item><p>adults over 18</p></list-item><list-item><p>written consent</p></list-item></list></p>
 </sec>
 <sec id="s2"><title>Methods</title>
  <table-wrap id="T1"><label>Table 1</label><caption><p>TABLE CAPTION</p></caption><table><tr><td>TABLE CELL</td></tr></table></table-wrap>
  <fig id="F1"><label>Figure 1</label><caption><p>FIGURE CAPTION</p></caption><graphic xlink:href="f1.jpg"/></fig>
  <p>Patients were followed for one year.<fn-group><fn><p>FOOTNOTE</p></fn></fn-group></p>
 </sec>
</body>
<back>
 <ack><p>ACKNOWLEDGEMENT</p></ack>
 <ref-list><title>References</title><ref id="B1"><mixed-citation>REFERENCE ENTRY Smith J. 2020.</mixed-citation></ref></ref-list>
</back>
</article>
""".encode()


MARKERS_DROPPED = ("GRAPHICAL ABSTRACT", "LICENCE TEXT", "FORMULA", "TABLE CAPTION", "TABLE CELL", "FIGURE CAPTION",
                   "FOOTNOTE", "ACKNOWLEDGEMENT", "REFERENCE ENTRY", "References", "Doe", "[1]", "mml", "x=2")

LICENSES = ("CC BY", "CC0", "CC BY-NC", "CC BY-SA", "CC BY-ND", "CC BY-NC-ND", "NO-CC CODE")


def write_package(path: Path, articles: dict[str, bytes], licenses: dict[str, str],
                  retracted: frozenset = frozenset(), folder: str = "PMC000xxxxxx") -> tuple[Path, Path]:
    """Write a PMC-style bulk package (tar.gz) and its file list CSV beside it; return both paths."""
    path = Path(path)
    with tarfile.open(path, "w:gz") as archive:
        for pmcid, data in articles.items():
            info = tarfile.TarInfo(f"{folder}/{pmcid}.xml")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    name = path.name.removesuffix(".tar.gz")
    file_list = path.with_name(name + ".filelist.csv")
    with open(file_list, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Article File", "Article Citation", "AccessionID", "LastUpdated (YYYY-MM-DD HH:MM:SS)",
                         "PMID", "License", "Retracted"])
        for pmcid in articles:
            writer.writerow([f"{folder}/{pmcid}.xml", "Test J. 2020; 1:1", pmcid, "2023-12-18 10:00:00",
                             "1000" + pmcid[3:], licenses[pmcid], "yes" if pmcid in retracted else "no"])
    return path, file_list


def write_random_package(path: Path, n_articles: int, seed: int = 0, start: int = 1000,
                         words_per_paragraph: int = 60, paragraphs: int = 10) -> tuple[Path, Path]:
    """A package of n articles with mixed licences (benchmarks, bigger tests)."""
    rng = random.Random(seed)
    ids = [f"PMC{start + i}" for i in range(n_articles)]
    articles = {pmcid: jats_article(pmcid, seed=seed + i, paragraphs=paragraphs,
                                    words_per_paragraph=words_per_paragraph) for i, pmcid in enumerate(ids)}
    return write_package(path, articles, {pmcid: rng.choice(LICENSES) for pmcid in ids})
