"""medeval site on real lm-eval outputs (a verified --partial bundle of the default model, and the lm-eval
folder of a tiny model with a Spanish task and HEAD-QA): the pages, read as static HTML (no JavaScript), hold
accessible tables whose numbers are the results files' numbers, with every model's status and provenance."""
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

import leaderboard_runs as lr
from medtasks.cli import main as medeval
from results.render import number

ANATOMY, GENETICS = lr.TASKS
METRICS = ("acc", "strict_acc", "ece", "brier")


class Page(HTMLParser):
    """What a reader (or a screen reader) gets from a page: tables with caption, header cells and rows of text."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.scripts, self.images, self.links, self.lang = {}, [], [], [], None
        self._table = self._row = self._cell = None
        self._caption = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "script":
            self.scripts.append(attrs)
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "table":
            self._table = {"caption": "", "head": [], "body": [], "foot": [], "part": None}
            self.tables[attrs.get("id") or f"table{len(self.tables)}"] = self._table
        elif tag == "caption":
            self._caption = True
        elif tag in ("thead", "tbody", "tfoot") and self._table is not None:
            self._table["part"] = {"thead": "head", "tbody": "body", "tfoot": "foot"}[tag]
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table[self._table["part"]].append(self._row)
        elif tag in ("th", "td") and self._row is not None:
            self._cell = {"tag": tag, "text": "", **attrs}
            self._row.append(self._cell)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "caption":
            self._caption = False
        elif tag in ("th", "td"):
            self._cell = None

    def handle_data(self, data):
        if self._caption:
            self._table["caption"] += data
        elif self._cell is not None:
            self._cell["text"] += data


def _page(site: Path, name: str) -> Page:
    return Page((site / name).read_text(encoding="utf-8"))


def _rows(table) -> dict[str, list[dict]]:
    """Body rows by their row header's text."""
    return {row[[c["tag"] for c in row].index("th")]["text"].strip(): row for row in table["body"]}


def _column(table, header: str) -> int:
    return [c["text"].strip() for c in table["head"][0]].index(header)


@pytest.fixture(scope="module")
def built(default_model, tiny_llama, shared_data, tmp_path_factory):
    return lr.site(default_model, tiny_llama, shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def names(built):
    bundle = json.loads((built["bundle"] / "submission.json").read_text())
    return {"default": bundle["model"]["name"], "tiny": lr.results_of(built["tiny"]["folders"][0])["config"]
            ["model_args"]["pretrained"].rstrip("/").rsplit("/", 1)[1]}


def test_every_page_is_accessible_static_html(built):
    site = built["site"]
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert {"index.html", "tasks.html", "about.html", "native.html", "language-en.html",
            "language-es.html"} <= set(pages)
    assert len([p for p in pages if p.startswith("models/")]) == 2
    for name in pages:
        page = _page(site, name)
        assert page.lang == "en"
        # one script, from a file: no inline JavaScript
        assert page.scripts == [{"src": "../" * name.count("/") + "static/site.js", "defer": None}], name
        assert page.tables or name == "about.html"
        for table_id, table in page.tables.items():
            assert table["caption"].strip(), (name, table_id)
            assert all(c["tag"] == "th" and c.get("scope") == "col" for c in table["head"][0]), (name, table_id)
            for row in table["body"] + table["foot"]:
                headers = [c for c in row if c["tag"] == "th"]
                assert len(headers) == 1 and headers[0]["scope"] == "row", (name, table_id)
        for image in page.images:
            assert image["alt"] and (site / Path(name).parent / image["src"]).is_file()
    for svg in site.glob("figures/*.svg"):
        assert ET.parse(svg).getroot().tag.endswith("svg")


def test_summary_numbers_are_the_results_files_numbers(built, names):
    index = _page(built["site"], "index.html")
    default, tiny = built["default"]["folders"], built["tiny"]["folders"]
    for metric in METRICS:
        table = index.tables[f"summary-{metric}"]
        rows = _rows(table)
        assert set(rows) == {names["default"], names["tiny"]}
        english, spanish = _column(table, "English"), _column(table, "Spanish")
        expected = {(names["default"], english): lr.expected_cell(default, lr.TASKS, metric),
                    (names["tiny"], english): lr.expected_cell(tiny, lr.TASKS, metric),
                    (names["tiny"], spanish): lr.expected_cell(tiny, ["mmlu_anatomy_es"], metric)}
        for (model, column), value in expected.items():
            assert rows[model][column]["text"].startswith(number(value))
            assert float(rows[model][column]["data-sort"]) == pytest.approx(value)
        assert rows[names["default"]][spanish]["text"] == "–"  # not run: never an average over fewer tasks


def test_language_pages_show_each_task_with_chance(built, names):
    page = _page(built["site"], "language-en.html")
    table = page.tables["tasks-acc"]
    rows = _rows(table)
    for folders, model in ((built["default"]["folders"], names["default"]), (built["tiny"]["folders"], names["tiny"])):
        for task, header in ((ANATOMY, "Anat"), (GENETICS, "MedGen")):
            value = lr.expected_cell(folders, [task], "acc")
            assert rows[model][_column(table, header)]["text"].startswith(number(value))
    chance = table["foot"][0]
    assert chance[0]["text"] == "chance" and chance[_column(table, "Anat")]["text"] == "0.2500"


def test_status_limited_and_partial_are_shown_with_every_model(built, names):
    rows = _rows(_page(built["site"], "index.html").tables["summary-acc"])
    status = _column(_page(built["site"], "index.html").tables["summary-acc"], "Status")
    assert rows[names["default"]][status]["text"].split() == ["verified", "partial", "limited†"]
    assert rows[names["tiny"]][status]["text"].split() == ["unverified", "limited†"]
    english = _column(_page(built["site"], "index.html").tables["summary-acc"], "English")
    assert rows[names["tiny"]][english]["text"].endswith("†")


def test_model_page_gives_the_provenance_of_every_number(built, names):
    page = _page(built["site"], f"models/{names['default']}.html")
    table = page.tables["provenance"]
    header = [c["text"].strip() for c in table["head"][0]]
    got = {(row[0]["text"], row[1]["text"]): row for row in table["body"]}
    assert len(got) == len(lr.TASKS) * len(lr.SEEDS)
    sub = json.loads((built["bundle"] / "submission.json").read_text())
    for seed, folder in zip(lr.SEEDS, built["default"]["folders"]):
        results = lr.results_of(folder)
        for task in lr.TASKS:
            row = got[(task, str(seed))]
            for metric in METRICS:
                assert row[header.index(metric)]["text"] == number(results["results"][task][f"{metric},none"])
            assert row[header.index("Data sha256")]["title"] == lr.samples_of(folder, task)[0]["doc"]["data_sha256"]
            assert row[header.index("Commit")]["text"] == results["git_hash"][:12]
            assert row[header.index("Verified")]["text"] == "verified"
            assert row[header.index("Questions")]["text"] == f"3 of {results['n-samples'][task]['original']}"
    html = (built["site"] / f"models/{names['default']}.html").read_text()
    assert sub["model"]["revision"] in html and "verified on" in html and "partial: runs made with --limit" in html
    assert "calibration-ece" in page.tables and any("reliability" in i["src"] for i in page.images)


def test_native_exams_are_set_against_the_translated_suite(built, names):
    native = _page(built["site"], "native.html")
    table = native.tables["native-0"]
    row = _rows(table)[f"{names['tiny']} [es]"]
    tiny = built["tiny"]["folders"]
    assert row[_column(table, "HEAD-QA")]["text"].startswith(number(lr.expected_cell(tiny, ["head_qa_es"], "acc")))
    assert row[_column(table, "suite")]["text"].startswith(number(lr.expected_cell(tiny, ["mmlu_anatomy_es"], "acc")))
    assert "native.html" in _page(built["site"], "index.html").links


def test_site_command_rebuilds_its_own_folder_refuses_others_and_escapes_names(built, tmp_path, capsys):
    tiny = str(built["tiny"]["folders"][0])
    model_path = lr.results_of(built["tiny"]["folders"][0])["config"]["model_args"]["pretrained"]
    out = tmp_path / "site"
    assert medeval(["site", tiny, "-o", str(out), "--name", f"{model_path}=<b>Tiny</b>"]) == 0
    html = (out / "index.html").read_text()
    assert "&lt;b&gt;Tiny&lt;/b&gt;" in html and "<b>Tiny</b>" not in html
    assert medeval(["site", tiny, "-o", str(out)]) == 0  # its own folder: replaced whole
    assert "&lt;b&gt;Tiny" not in (out / "index.html").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name != "site"]  # no temp or old folder left
    capsys.readouterr()

    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert medeval(["site", tiny, "-o", str(other)]) == 2
    assert "was not written by medeval site" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    assert medeval(["site", tiny, "-o", str(tmp_path / "x"), "--verified", str(built["report"])]) == 2
    assert "match none of the bundles" in capsys.readouterr().err
