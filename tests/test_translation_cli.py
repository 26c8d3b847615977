"""Every bad argument of `medeval translate` / `translation-report`: one line naming it, exit 2, no
traceback, and the store exactly as it was (no cache file, no audit folder)."""
import pytest

from test_translation_web import english_store

pytest.importorskip("deep_translator")

TRANSLATE = [
    (["--languages", "en"], "--languages: en is the source language"),
    (["--languages", "fr", "xx"], "--languages: unknown language 'xx'"),
    (["--splits", "fewshot"], "--splits: 'fewshot' is not translated"),
    (["--splits", "nosuch"], "--splits: 'nosuch' is not translated"),
    (["--benchmarks", "nosuch"], "--benchmarks: unknown benchmark 'nosuch'"),
    (["--backend", "babelfish"], "unknown translation backend 'babelfish'; valid: google"),
    (["--backend", "libre"], "--backend libre needs --url"),
    (["--backend", "deepl"], "--backend deepl needs an API key: set the environment variable DEEPL_API_KEY"),
    (["--backend", "openai-chat"], "--backend openai-chat needs --url and --model"),
    (["--backend", "openai-chat", "--url", "http://127.0.0.1:1/v1"], "--backend openai-chat needs --model"),
    (["--backend", "openai-chat", "--model", "m"], "--backend openai-chat needs --url:"),
    (["--backend", "seq2seq"], "--backend seq2seq needs --model"),
    (["--backend", "google", "--model", "m"], "backend 'google' does not take --model"),
    (["--backend", "google", "--url", "http://127.0.0.1:1/"], "--url: google has a fixed address"),
    (["--backend", "libre", "--url", "ftp://127.0.0.1/"], "--url 'ftp://127.0.0.1/' is not an http:// or https://"),
    (["--timeout", "0"], "--timeout must be a number above 0, got 0.0"),
    (["--timeout", "nan"], "--timeout must be a number above 0, got nan"),
    (["--workers", "-3"], "--workers must be a whole number of at least 1, got -3"),
    (["--rate", "-1"], "--rate must be a number above 0, got -1.0"),
    (["--retries", "-1"], "--retries must be a whole number of at least 0, got -1"),
    (["--max-chars", "0"], "--max-chars must be a whole number of at least 1, got 0"),
    (["--backend", "seq2seq", "--model", "m", "--batch-size", "0"], "--batch-size must be a whole number of at least 1"),
    (["--benchmarks", "medmcqa"], "medmcqa/en/test is not in the store at"),
    (["--workers", "two"], "argument --workers: invalid int value: 'two'"),  # argparse's own, same policy
    (["--limit", "0"], "--limit must be a whole number of at least 1, got 0"),
    (["--ids", "q0", "nosuch", "p9"], "--ids: not in the English records of medqa/test: nosuch, p9"),
]
REPORT = [
    (["--languages", "en"], "--languages: en is the source language"),
    (["--benchmarks", "nosuch"], "--benchmarks: unknown benchmark 'nosuch'"),
    (["--roundtrip", "libre"], "--backend libre needs --url"),
    (["--roundtrip", "libre", "--url", "http://127.0.0.1:1/", "--timeout", "0"], "--timeout must be a number above 0"),
]


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(argv, capsys) -> tuple[int, str]:
    from medtasks.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors exit through the dispatcher's parser
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 0 or captured.out == ""
    return code, captured.err


@pytest.mark.parametrize("args, message", TRANSLATE, ids=[" ".join(a) for a, _ in TRANSLATE])
def test_translate_refuses_bad_arguments_in_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DEEPL_API_KEY", raising=False)
    store = english_store(tmp_path / "store", n=1)
    before = _files(store)
    code, err = run_cli(["translate", "--store", str(store), "--benchmarks", "medqa", "--languages", "fr",
                         "--no-progress", *args], capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err  # and nothing on stdout: see run_cli
    assert err.startswith("medeval translate: ") and message in err, err
    assert _files(store) == before and not (store / "_translation").exists()


@pytest.mark.parametrize("args, message", REPORT, ids=[" ".join(a) for a, _ in REPORT])
def test_report_refuses_bad_arguments_in_one_line(args, message, tmp_path, capsys):
    store = english_store(tmp_path / "store", n=1)
    before = _files(store)
    code, err = run_cli(["translation-report", "--store", str(store), "--benchmarks", "medqa", "--languages", "fr",
                         "--out", str(tmp_path / "out" / "report"), *args], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("medeval translation-report: ") and message in err, err
    assert _files(store) == before and not (tmp_path / "out").exists()


def test_limit_and_ids_translate_a_slice_and_leave_the_rest_of_the_group_alone(tmp_path, capsys):
    from libre_server import FakeLibre
    from medtasks.store import read_records

    store = english_store(tmp_path / "store", n=5)
    base = ["translate", "--store", str(store), "--benchmarks", "medqa", "pubmedqa", "--languages", "fr",
            "--backend", "libre", "--no-progress"]
    ids = lambda benchmark: [r.id for r in read_records(store, benchmark, "fr", "test")]  # noqa: E731
    with FakeLibre() as server:
        code, err = run_cli(base + ["--url", server.url, "--limit", "2"], capsys)
        assert code == 0, err
        assert ids("medqa") == ["q0", "q1"] and ids("pubmedqa") == ["p0", "p1"]
        assert not any(mark in t for t in server.texts() for mark in ("42-year-old", "drug 2 ", "number 3 "))
        code, err = run_cli(base + ["--url", server.url, "--ids", "q3", "p4"], capsys)
        assert code == 0, err
        assert ids("medqa") == ["q0", "q1", "q3"] and ids("pubmedqa") == ["p0", "p1", "p4"]  # English order
        before = len(server.requests)
        code, err = run_cli(base + ["--url", server.url], capsys)
        assert code == 0, err
        assert ids("medqa") == [f"q{i}" for i in range(5)] and ids("pubmedqa") == [f"p{i}" for i in range(5)]
        paid = ("40-year-old", "41-year-old", "43-year-old", "drug 0 ", "drug 1 ", "drug 4 ", "number 4 ")
        new = server.texts()[before:]
        assert new and not any(mark in t for t in new for mark in paid)  # only the rest is paid for


@pytest.mark.parametrize("module, argv", [
    ("deep_translator", ["translate", "--backend", "libre", "--url", "http://127.0.0.1:1/"]),
    ("sentencepiece", ["translate", "--backend", "seq2seq", "--model", "nowhere/model"]),
    ("sacrebleu", ["translation-report", "--reference-store", "STORE"]),
])
def test_a_missing_extra_names_it_in_one_line(module, argv, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    store = english_store(tmp_path / "store", n=1)
    (store / "medqa" / "fr").mkdir()
    (store / "medqa" / "fr" / "test.jsonl").write_bytes((store / "medqa" / "en" / "test.jsonl").read_bytes()
                                                        .replace(b'"language": "en"', b'"language": "fr"'))
    before = _files(store)
    argv = [a.replace("STORE", str(store)) for a in argv]
    code, err = run_cli([*argv, "--store", str(store), "--benchmarks", "medqa", "--languages", "fr",
                         "--no-progress"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"needs {module}: pip install 'medeval[translation]'" in err
    assert _files(store) == before


def test_the_default_backend_is_the_registry_constant(monkeypatch):
    import translation.backends
    from medtasks.cli import build_parser

    assert build_parser().parse_args(["translate"]).backend == translation.backends.DEFAULT_BACKEND == "google"
    monkeypatch.setattr(translation.backends, "DEFAULT_BACKEND", "libre")  # one constant, read by the CLI
    assert build_parser().parse_args(["translate"]).backend == "libre"


def test_a_group_holding_other_questions_stops_the_run_before_paying_unless_replace(tmp_path, capsys):
    from libre_server import FakeLibre
    from medtasks.records import Record
    from medtasks.store import read_records, write_records

    store = english_store(tmp_path / "store", n=2)
    other = [Record(f"bioinstruct-{i}", "medqa", "fr", "test", f"Question {i} ?", dict(zip("ABCD", "wxyz")), "A")
             for i in range(3)]  # a third-party French set with its own ids
    write_records(store, other)
    before = _files(store)
    base = ["translate", "--store", str(store), "--benchmarks", "medqa", "--languages", "fr", "--backend", "libre",
            "--no-progress"]
    with FakeLibre() as server:
        code, err = run_cli(base + ["--url", server.url], capsys)
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "medqa/fr/test holds 3 other questions" in err and "medeval translate ... --replace" in err, err
        assert server.requests == [] and _files(store) == before  # refused before any translation was paid for
        code, err = run_cli(base + ["--url", server.url, "--replace"], capsys)
        assert code == 0, err
    assert [r.id for r in read_records(store, "medqa", "fr", "test")] == ["q0", "q1"]
