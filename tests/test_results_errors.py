"""Bad inputs are clear errors naming the file; compare gates a controlled drop (lm-eval-format files
written from known outcomes by tests/synthetic.py, since random tiny models give no controlled effect)."""
import json
import random

import pytest
from synthetic import Question, write_run

from medtasks.cli import main as medeval
from medtasks.records import DataError
from results.compare import Gate, compare_tables
from results.load import ResultsError, load_table


def _questions(prefix: str, n: int, accuracy: float, seed: int = 0) -> list[Question]:
    rng = random.Random(seed)
    right = set(rng.sample(range(n), round(n * accuracy)))
    return [Question(f"{prefix}-{i}", i in right, confidence=0.3 + 0.6 * rng.random(), brier=0.6) for i in range(n)]


def _drop(questions: list[Question], lose: int, seed: int = 1) -> list[Question]:
    """The same questions, `lose` of the correct ones now wrong."""
    rng = random.Random(seed)
    losers = set(rng.sample([q.id for q in questions if q.correct], lose))
    return [Question(q.id, q.correct and q.id not in losers, q.confidence, q.strict, q.brier) for q in questions]


@pytest.fixture
def pair(tmp_path):
    """BASE and CANDIDATE on two tasks; the candidate loses 60 of 500 MedQA questions (-12 points)."""
    medqa, mmlu = _questions("medqa", 500, 0.6), _questions("mmlu", 100, 0.5, seed=2)
    write_run(tmp_path / "base", "org/base", {"medqa_en": medqa, "mmlu_anatomy_en": mmlu})
    write_run(tmp_path / "cand", "org/cand", {"medqa_en": _drop(medqa, 60), "mmlu_anatomy_en": mmlu})
    return tmp_path / "base", tmp_path / "cand"


def test_compare_flags_a_significant_drop_and_exits_1(pair, tmp_path, capsys):
    code = medeval(["compare", str(pair[0]), str(pair[1]), "--markdown", str(tmp_path / "c.md")])
    out = capsys.readouterr().out
    assert code == 1
    assert "**REGRESSION**" in out and "| medqa_en | en | 500 | 0.6000 | 0.4800 | -0.1200 |" in out
    assert "| mmlu_anatomy_en | en | 100 | 0.5000 | 0.5000 | +0.0000 | [+0.0000, +0.0000] | 1.0000 |  |" in out
    assert "exceeds 0.02," in out and "_metric acc (fractions 0..1, as lm-eval reports them);" in out
    assert "†" not in out and "limited run" not in out
    assert (tmp_path / "c.md").read_text() == out


def test_compare_marks_runs_made_with_limit(tmp_path, capsys):
    """Both sides scored 40 of MedQA's 1273 questions: the rows say so, and a legend explains the mark."""
    medqa = _questions("medqa", 40, 0.5)
    write_run(tmp_path / "base", "org/base", {"medqa_en": medqa, "pubmedqa_en": _questions("p", 20, 0.5)},
              split_sizes={"medqa_en": 1273})
    write_run(tmp_path / "cand", "org/cand", {"medqa_en": medqa, "pubmedqa_en": _questions("p", 20, 0.5)},
              split_sizes={"medqa_en": 1273})
    assert medeval(["compare", str(tmp_path / "base"), str(tmp_path / "cand")]) == 0
    out = capsys.readouterr().out
    assert "| medqa_en | en | 40 of 1273† | 0.5000 | 0.5000 |" in out
    assert "| pubmedqa_en | en | 20 | 0.5000 |" in out  # its whole split: no mark
    assert "| **medeval_en** | en | 60 of 1293† |" in out
    assert "_† limited run (lm_eval --limit): compared on a subset of the test questions" in out


def test_compare_threshold_and_direction(pair):
    base, cand = load_table([pair[0]]), load_table([pair[1]])
    assert not compare_tables(base, cand, Gate(threshold=0.15)).regressions  # -12 points < 15-point threshold
    assert not compare_tables(cand, base).regressions  # the other way round it is an improvement
    rows = {r.name: r for r in compare_tables(base, cand).rows}
    assert rows["medqa_en"].p_value == pytest.approx(2 / 2 ** 60)  # b = 60, c = 0: exact McNemar
    assert rows["medeval_en"].delta == pytest.approx(-0.06)  # macro over the two tasks


def test_compare_errors_on_other_questions_and_versions(tmp_path):
    write_run(tmp_path / "a", "m", {"medqa_en": _questions("x", 20, 0.5)})
    write_run(tmp_path / "b", "m2", {"medqa_en": _questions("y", 20, 0.5)})
    write_run(tmp_path / "c", "m3", {"medqa_en": _questions("x", 20, 0.5)}, version="2.0")
    write_run(tmp_path / "d", "m4", {"pubmedqa_en": _questions("x", 20, 0.5)})
    a = load_table([tmp_path / "a"])
    with pytest.raises(ResultsError, match="share no question ids"):
        compare_tables(a, load_table([tmp_path / "b"]))
    with pytest.raises(ResultsError, match=r"task versions differ.*medqa_en \(v1.0 vs v2.0\)"):
        compare_tables(a, load_table([tmp_path / "c"]))
    with pytest.raises(ResultsError, match="share no task"):
        compare_tables(a, load_table([tmp_path / "d"]))
    assert medeval(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2


def test_compare_refuses_a_folder_of_several_models(tmp_path):
    write_run(tmp_path / "both", "m1", {"medqa_en": _questions("x", 10, 0.5)})
    write_run(tmp_path / "both", "m2", {"medqa_en": _questions("x", 10, 0.5)})
    with pytest.raises(ResultsError, match="BASE holds runs of several models"):
        compare_tables(load_table([tmp_path / "both"]), load_table([tmp_path / "both"]))


@pytest.fixture
def run(tmp_path):
    path = write_run(tmp_path / "out", "m", {"medqa_en": _questions("q", 10, 0.5)})
    return path, path.with_name(path.name.replace("results_", "samples_medqa_en_").replace(".json", ".jsonl"))


def test_truncated_results_file_names_the_file(run):
    results, _ = run
    results.write_text(results.read_text()[:200])
    with pytest.raises(DataError, match=f"{results}.*not valid JSON"):
        load_table([results.parent])


def test_foreign_json_is_rejected(tmp_path):
    path = tmp_path / "results_x.json"
    path.write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(DataError, match=f"{path}, field 'results': missing: not an lm-eval results file"):
        load_table([path])


def test_non_numeric_metric_is_rejected(run):
    results, _ = run
    data = json.loads(results.read_text())
    data["results"]["medqa_en"]["acc,none"] = "0.5"
    results.write_text(json.dumps(data))
    with pytest.raises(DataError, match="field 'acc,none': expected a number"):
        load_table([results])


def test_foreign_tasks_are_skipped_not_counted(run, caplog):
    results, _ = run
    data = json.loads(results.read_text())
    data["results"]["hellaswag"] = {"acc,none": 0.9}
    results.write_text(json.dumps(data))
    table = load_table([results])
    assert set(table["task"]) == {"medqa_en"} and "hellaswag" in caplog.text


def test_truncated_samples_file_is_an_error(run):
    results, samples = run
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:7]))
    with pytest.raises(DataError, match=f"{samples}: 7 questions but the results file says 10"):
        compare_tables(load_table([results]), load_table([results]))
    samples.write_text("".join(lines[:9]) + lines[9][:50])
    with pytest.raises(DataError, match=f"{samples}, line 10: not valid JSON"):
        compare_tables(load_table([results]), load_table([results]))


def test_samples_of_another_run_are_detected(run):
    results, samples = run
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    for line in lines:
        line["acc"] = 1.0
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(DataError, match="differs from the results file's 0.500000"):
        compare_tables(load_table([results]), load_table([results]))


def test_bad_sample_field_names_line_and_field(run):
    results, samples = run
    lines = samples.read_text().splitlines(keepends=True)
    bad = json.loads(lines[3])
    bad["ece"] = [1.7, True]
    lines[3] = json.dumps(bad) + "\n"
    samples.write_text("".join(lines))
    with pytest.raises(DataError, match=f"{samples}, line 4, field 'ece'"):
        compare_tables(load_table([results]), load_table([results]))


def test_repeated_runs_keep_the_latest_or_fail(tmp_path):
    write_run(tmp_path, "m", {"medqa_en": _questions("q", 10, 0.5)}, stamp="old", date=1.0e9)
    write_run(tmp_path, "m", {"medqa_en": _questions("q", 10, 0.8)}, stamp="new", date=2.0e9)
    table = load_table([tmp_path])
    assert table[table["metric"] == "acc"]["value"].tolist() == [0.8]
    with pytest.raises(ResultsError, match="the same evaluation appears in several files"):
        load_table([tmp_path], on_duplicate="error")


def test_cli_reports_unusable_input_with_exit_2(tmp_path, capsys):
    (tmp_path / "results_1.json").write_text("{")
    assert medeval(["leaderboard", str(tmp_path)]) == 2
    assert "results_1.json" in capsys.readouterr().err
    assert medeval(["leaderboard", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("argv, message", [
    (["leaderboard", "{run}", "--view", "pie"], "unknown leaderboard view 'pie'; valid: summary, tasks, headline, grid, native, categories"),
    (["leaderboard", "{run}", "--format", "html"], "unknown format 'html'; valid: markdown, csv, latex"),
    (["leaderboard", "{run}", "--metric", "f1"], "unknown metric 'f1'; valid: acc, strict_acc, ece, brier, hamming, emr"),
    (["leaderboard", "{run}", "--view", "native", "--metric", "ece"],
     "the native view scores single-answer tasks with acc or strict_acc (multi-answer exams with hamming and emr, "
     "in their own columns), not 'ece'"),
    (["leaderboard", "{run}", "--view", "native", "--regime", "zero_shot"],
     "the native view shows every task in its own regime (recorded by its YAML): drop --regime"),
    (["leaderboard", "{run}", "--view", "categories"],
     "no acc results of a task whose questions have a category (HEAD-QA's have); categories come from the samples "
     "(lm_eval --log_samples)"),
    (["leaderboard", "{run}", "--metric", "hamming"], "no hamming results to show (multi-answer exams: --view native)"),
    (["leaderboard", "{run}", "--contamination", "{missing}"],
     "--contamination {missing}: cannot read it (No such file or directory)"),
    (["results-table", "{run}", "--contamination", "{run}/m/results_2026-01-01T00-00-00.000000.json"],
     "{run}/m/results_2026-01-01T00-00-00.000000.json, field 'format': expected 'medeval-contamination/1' "
     "(medeval contamination's report.json), got None"),
    (["leaderboard", "{run}", "--name", "no-equals-sign"], "--name expects PATH=NAME, got 'no-equals-sign'"),
    (["leaderboard", "{run}", "--models", "ghost"], "unknown model(s) ghost; valid: m"),
    (["leaderboard", "{empty}"], "no lm-eval results_*.json under {empty}: point at the --output_path of an lm_eval run"),
    (["calibration", "{run}", "--metric", "acc"], "calibration metric must be ece or brier, not 'acc'"),
    (["plots", "{run}", "-o", "{out}", "--plots", "pie"], "unknown plot(s) pie; valid: bars, heatmap, reliability, variants, native"),
    (["compare", "{run}", "{run}", "--bootstrap", "0"], "--bootstrap must be at least 1, got 0"),
    (["compare", "{run}", "{run}", "--alpha", "1.5"], "--alpha must be in (0, 1), got 1.5"),
    (["compare", "{run}", "{run}", "--metric", "ece"], "--metric must be acc or strict_acc, got 'ece'"),
    (["publish", "{run}", "--model", "ghost", "-o", "{out}"], "unknown model 'ghost'; valid: m"),
    (["results-table", "{missing}"], "{missing}: no such file or folder"),
])
def test_every_command_refuses_bad_arguments_in_one_line(run, tmp_path, capsys, argv, message):
    """The error policy: one line `medeval <command>: <message>`, no traceback, exit 2, no output left."""
    paths = {"run": str(run[0].parent.parent), "empty": str(tmp_path / "empty"), "out": str(tmp_path / "figs"),
             "missing": str(tmp_path / "missing")}
    (tmp_path / "empty").mkdir()
    argv = [a.format(**paths) for a in argv]
    assert medeval(argv) == 2
    captured = capsys.readouterr()
    progress = ("results files:", "samples files:")
    errors = [line for line in captured.err.splitlines() if line.strip() and not line.startswith(progress)]
    assert errors == [f"medeval {argv[0]}: {message.format(**paths)}"]  # besides progress bars: one line
    assert captured.out == "" and not (tmp_path / "figs").exists()


def test_prompt_skipping_parse_equals_full_parse():
    from results.samples import parse_line

    line = {"doc_id": 0, "doc": {"id": "q1", "question": 'tricky ", "resps": [] text', "options": ["x", "y", "z"],
                                 "answer": "A"},
            "target": "A", "arguments": {"gen_args_0": {"arg_0": 'prompt with ", "arguments": inside', "arg_1": "A"}},
            "resps": [[["-1.0", "True"]]], "filtered_resps": [["-1.0", "True"]], "filter": "none",
            "acc": 1.0, "strict_acc": 1.0, "ece": [0.37, True], "brier": 0.4}
    expected = ("q1", 3, "", "unknown", {"acc": 1.0, "strict_acc": 1.0, "ece": (0.37, 1.0), "brier": 0.4})
    assert parse_line(json.dumps(line), "f", 1) == expected
    assert parse_line(json.dumps(dict(reversed(list(line.items())))), "f", 1) == expected
    line["doc"].update(category="nursing", data_sha256="ab" * 32)
    assert parse_line(json.dumps(line), "f", 1)[2:4] == ("nursing", "ab" * 32)
    multi = {**line, "hamming": 0.5, "emr": 0.0}
    for name in ("acc", "strict_acc", "ece", "brier"):
        del multi[name]
    assert parse_line(json.dumps(multi), "f", 1)[4] == {"hamming": 0.5, "emr": 0.0}
    del multi["emr"]
    with pytest.raises(DataError, match="line 1, field 'emr': missing per-question metric"):
        parse_line(json.dumps(multi), "f", 1)
