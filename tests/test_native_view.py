"""Translated vs native (issue 12 §4) from a REAL `lm_eval run` of the default model (tests/native_runs.py:
a few questions per task, so every score is marked as a limited run). Every figure is recomputed here from
the results and samples files and the store, with json and hashlib alone."""
import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from lm_eval_run import load_run
from medtasks import spec
from medtasks.cli import main as medeval
from results.stats import stratified_bootstrap

pytest_plugins = ["native_runs"]  # the session fixture native_run: one lm_eval run for both modules
NAME = "smol"


@pytest.fixture(scope="module")
def raw(native_run):
    """(configs, results, {task: [sample lines]}) of the run, parsed with json alone."""
    assert len(list(native_run["out"].rglob("results_*.json"))) == 1  # one run, so its samples are these
    data, samples = load_run(native_run["out"])
    assert set(samples) == set(native_run["plan"])
    return data["configs"], data["results"], samples


@pytest.fixture(scope="module")
def table(native_run):
    from results.load import load_table

    return load_table([native_run["out"]], names={str(native_run["model"]): NAME})


def test_table_reads_what_each_run_recorded(native_run, raw, table):
    """benchmark, language, regime and its version from the task's config; the data checksum from the samples,
    equal to the sha256 of the store file the questions came from; multi-answer tasks with hamming and emr."""
    configs, results, samples = raw
    plan = native_run["plan"]
    assert set(table["task"]) == set(plan)
    for task in plan:
        rows = table[table["task"] == task]
        kwargs, metadata = configs[task]["dataset_kwargs"], configs[task]["metadata"]
        bench = spec.get_benchmark(kwargs["benchmark"])
        assert set(rows["benchmark"]) == {kwargs["benchmark"]} and set(rows["language"]) == {kwargs["language"]}
        assert set(rows["kind"]) == {bench.kind} and set(rows["answers"]) == {bench.answers}
        assert set(rows["regime"]) == {metadata["regime"]} and set(rows["regime_version"]) == {metadata["regime_version"]}
        store_file = native_run["store"] / kwargs["benchmark"] / kwargs["language"] / "test.jsonl"
        sha = hashlib.sha256(store_file.read_bytes()).hexdigest()
        assert {s["doc"]["data_sha256"] for s in samples[task]} == {sha} and set(rows["data_sha256"]) == {sha}
        scored = {key.split(",")[0] for key in results[task] if key.endswith(",none") and "_stderr" not in key}
        assert dict(zip(rows["metric"], rows["value"])) == {m: results[task][f"{m},none"] for m in scored}
        assert scored == set(spec.metrics_for(bench.answers))
        assert set(rows["n_questions"]) == {len(plan[task])} and set(rows["n_questions_full"]) == {bench.test_size}
    assert set(table[table["task"] == "cmexam_multi_zh"]["metric"]) == {"hamming", "emr"}
    assert set(table[table["task"] == "head_qa_es"]["regime"]) == {"native_3shot"}  # not the suite's regime


def _acc(results, task):
    return results[task]["acc,none"]


def test_native_view_per_language(raw, table):
    """Per language: the suite's macro average, each native exam, their average and the difference; the
    multi-answer exam in hamming and emr columns; English has its suite only (HEAD-QA en is a translation)."""
    from results.leaderboard import build_view

    _, results, _ = raw
    grid = build_view("native", table, metric="acc")[0]
    rows = {label: dict(zip(grid.columns, cells)) for label, cells in grid.rows}
    assert set(rows) == {f"{NAME} [{code}]" for code in ("en", "es", "fr", "zh")}
    head_qa, fmc, cmexam = (spec.get_benchmark(k).short for k in ("head_qa", "frenchmedmcqa_single", "cmexam_multi"))
    es = rows[f"{NAME} [es]"]
    assert es["suite"].mean == pytest.approx(_acc(results, "mmlu_anatomy_es"))
    assert es[head_qa].mean == es["native"].mean == pytest.approx(_acc(results, "head_qa_es"))
    assert es["native − suite"].mean == pytest.approx(_acc(results, "head_qa_es") - _acc(results, "mmlu_anatomy_es"))
    fr = rows[f"{NAME} [fr]"]
    assert fr["suite"].mean == pytest.approx(_acc(results, "mmlu_anatomy_fr"))
    assert fr[fmc].mean == pytest.approx(_acc(results, "frenchmedmcqa_single_fr")) and fr[head_qa] is None
    en = rows[f"{NAME} [en]"]
    assert en["suite"].mean == pytest.approx(_acc(results, "mmlu_anatomy_en"))
    assert en["native"] is None and en[head_qa] is None  # head_qa_en is the translation, not a native exam
    zh = rows[f"{NAME} [zh]"]
    assert zh[f"{cmexam} hamming"].mean == pytest.approx(results["cmexam_multi_zh"]["hamming,none"])
    assert zh[f"{cmexam} emr"].mean == pytest.approx(results["cmexam_multi_zh"]["emr,none"])
    assert zh["suite"] is None and all(c.limited for c in es.values() if c is not None and c.questions)
    assert any("head_qa_es: native_3shot v1" in note for note in grid.notes)


def test_head_qa_native_vs_translation_paired_per_question(native_run, raw, table):
    """es vs en on the same questions (ids), overall and per category: each language's acc, the difference,
    and the bootstrap interval of the pairs made here from the raw sample lines."""
    from results.leaderboard import build_view

    _, _, samples = raw
    grid = next(g for g in build_view("native", table, metric="acc") if g.name == "head_qa_es_en")
    assert grid.columns[:3] == ["es (native)", "en (translated)", "es − en"]
    right = {lang: {s["doc"]["id"]: s["acc"] for s in samples[f"head_qa_{lang}"]} for lang in ("es", "en")}
    category = {s["doc"]["id"]: s["doc"]["category"] for s in samples["head_qa_es"]}
    assert set(right["es"]) == set(right["en"]) and len(right["es"]) == len(native_run["plan"]["head_qa_es"])
    categories = sorted(set(category.values()))
    assert len(categories) >= 2 and "" not in categories
    rows = dict(grid.rows)
    assert list(rows) == [f"{NAME} · all"] + [f"{NAME} · {c}" for c in categories]
    for name in ["all", *categories]:
        ids = sorted(q for q in right["es"] if name == "all" or category[q] == name)
        es, en = [right["es"][q] for q in ids], [right["en"][q] for q in ids]
        cells = rows[f"{NAME} · {name}"]
        assert cells[0].mean == pytest.approx(sum(es) / len(ids)) and cells[1].mean == pytest.approx(sum(en) / len(ids))
        assert cells[0].questions == len(ids)
        expected = stratified_bootstrap([(en, es)], 10_000, 0, 0.95, f"{NAME}:head_qa:{name}")
        assert (cells[2].mean, cells[3].mean, cells[4].mean) == pytest.approx(expected)


def _markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """{table title: {row label: {column: cell}}} of every Markdown table in `text`."""
    out, title, header = {}, None, None
    for line in text.splitlines():
        if line.startswith("**"):
            title, header = line.strip("*"), None
        elif line.startswith("| ") and header is None:
            header = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("| ") and header:
            cells = [c.strip() for c in line.strip("|").split("|")]
            out.setdefault(title, {})[cells[0]] = dict(zip(header, cells))
    return out


def test_cli_renders_the_native_view_in_three_formats(native_run, raw, tmp_path, capsys):
    _, results, _ = raw
    names = ["--name", f"{native_run['model']}={NAME}"]
    assert medeval(["leaderboard", str(native_run["out"]), "--view", "native", "-o", str(tmp_path), *names]) == 0
    capsys.readouterr()  # the paths it printed
    stems = ["native_acc", "native_acc_head_qa_es_en"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}{e}" for s in stems for e in (".csv", ".md", ".tex"))
    md = _markdown_rows((tmp_path / "native_acc.md").read_text())
    (per_language,) = md.values()
    es = per_language[f"{NAME} [es]"]
    assert es["suite"] == f"{_acc(results, 'mmlu_anatomy_es'):.4f}†"  # lm-eval's number; --samples cut the split
    assert es[spec.get_benchmark("head_qa").short] == f"{_acc(results, 'head_qa_es'):.4f}†"
    csv = [line.split(",") for line in (tmp_path / "native_acc.csv").read_text().splitlines()]
    row = dict(zip(csv[0], next(r for r in csv if r[0] == f"{NAME} [fr]")))
    assert float(row["suite"]) == pytest.approx(_acc(results, "mmlu_anatomy_fr")) and row["suite_limited"] == "1"
    tex = (tmp_path / "native_acc_head_qa_es_en.tex").read_text()
    assert r"\toprule" in tex and r"es $-$ en" in tex and "−" not in tex  # the minus sign, in LaTeX's own terms
    assert "HEAD-QA: native Spanish vs its English translation" in tex
    assert medeval(["leaderboard", str(native_run["out"]), "--view", "native", *names]) == 0
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "native_acc.md").read_text() + "\n" + (tmp_path / "native_acc_head_qa_es_en.md").read_text()


def test_category_view_recomputes_each_category_from_the_samples(native_run, raw, capsys):
    _, _, samples = raw
    assert medeval(["leaderboard", str(native_run["out"]), "--view", "categories", "--format", "csv",
                    "--name", f"{native_run['model']}={NAME}"]) == 0
    csv = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    rows = {r[0]: dict(zip(csv[0], r)) for r in csv[1:]}
    assert {label.split(" · ")[0] for label in rows} == {"head_qa_es", "head_qa_en"}  # the tasks with categories
    for task in ("head_qa_es", "head_qa_en"):
        by_category = {}
        for s in samples[task]:
            by_category.setdefault(s["doc"]["category"], []).append(s["acc"])
        for category, values in by_category.items():
            assert float(rows[f"{task} · {category}"][NAME]) == pytest.approx(sum(values) / len(values))
            assert rows[f"{task} · {category}"][f"{NAME}_questions"] == str(len(values))
        every = [v for values in by_category.values() for v in values]
        assert float(rows[f"{task} · all"][NAME]) == pytest.approx(sum(every) / len(every))


def _svg_lines(path):
    return [line.replace("- -", "--") for line in re.findall(r"<!-- (.*?) -->", path.read_text(encoding="utf-8"))]


def test_native_figure(native_run, tmp_path):
    from PIL import Image

    assert medeval(["plots", str(native_run["out"]), "-o", str(tmp_path), "--plots", "native",
                    "--name", f"{native_run['model']}={NAME}"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["native_acc.png", "native_acc.svg"]
    with Image.open(tmp_path / "native_acc.png") as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 600
    assert ET.parse(tmp_path / "native_acc.svg").getroot().tag.endswith("svg")
    lines = _svg_lines(tmp_path / "native_acc.svg")
    assert any("each task in its own regime" in line and "native_3shot v1" in line for line in lines)
    assert any(line.startswith("† limited run (lm_eval --limit): ") for line in lines)
    assert f"{NAME} · all†" in lines  # the paired panel's rows, marked as scored on a subset


def test_runs_on_other_data_are_never_compared(native_run, tmp_path, capsys):
    """A copy of the run whose anatomy questions came from another store file (a changed checksum in its
    samples, as a re-imported or different dataset gives): compare and the leaderboards refuse it."""
    from results.compare import compare_tables
    from results.load import ResultsError, load_table

    other = tmp_path / "other"
    shutil.copytree(native_run["out"], other)
    (samples,) = other.rglob("samples_mmlu_anatomy_en_*.jsonl")
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    for line in lines:
        line["doc"]["data_sha256"] = "f" * 64
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    base, cand = load_table([native_run["out"]]), load_table([other], names={str(native_run["model"]): "copy"})
    with pytest.raises(ResultsError, match=r"mmlu_anatomy_en was run on different data \(BASE [0-9a-f]{12}, "
                                           r"CANDIDATE ffffffffffff\); a task name means one dataset"):
        compare_tables(base, cand)
    assert medeval(["leaderboard", str(native_run["out"]), str(other), "--view", "grid"]) == 2
    assert re.search(r"medeval leaderboard: mmlu_anatomy_en was run on different data \(data [0-9a-f]{12}: "
                     r"SmolLM2-135M-Instruct; data ffffffffffff: (copy|SmolLM2-135M-Instruct)\)", capsys.readouterr().err)


# --- the same views on runs with known outcomes (tests/synthetic.py): several models and seeds ---

def _questions(prefix, n, right, category=""):
    from synthetic import Question

    return [Question(f"{prefix}-{i}", i < right, category=category) for i in range(n)]


def test_native_view_averages_per_seed_and_pairs_two_models(tmp_path):
    """Two models, two seeds: the suite cell is the mean ± population std over seeds of the per-seed macro
    average of the language's suite tasks; the paired rows pair by id within each model."""
    from synthetic import write_run

    from results.leaderboard import build_view
    from results.load import load_table

    for seed, (a_suite, a_native) in ((1, (4, 6)), (2, (6, 6))):
        tasks = {"mmlu_anatomy_es": _questions("anat", 10, a_suite), "medqa_es": _questions("medqa", 10, 5),
                 "head_qa_es": _questions("hq", 8, a_native, "biology") + _questions("hq-n", 2, 0, "nursing"),
                 "head_qa_en": _questions("hq", 8, 3, "biology") + _questions("hq-n", 2, 2, "nursing")}
        write_run(tmp_path / f"a{seed}", "org/A", tasks, fewshot_seed=seed, stamp=f"s{seed}")
    write_run(tmp_path / "b", "org/B", {"mmlu_anatomy_es": _questions("anat", 10, 9), "medqa_es": _questions("medqa", 10, 9)})
    grids = build_view("native", load_table([tmp_path], hash_models=False), metric="acc")
    rows = {label: dict(zip(grids[0].columns, cells)) for label, cells in grids[0].rows}
    a = rows["A [es]"]
    # per seed: (0.4 + 0.5) / 2 = 0.45 and (0.6 + 0.5) / 2 = 0.55
    assert (a["suite"].mean, a["suite"].std, a["suite"].seeds) == pytest.approx((0.5, 0.05, 2))
    assert a["native"].mean == pytest.approx(0.6) and a["native − suite"].mean == pytest.approx(0.1)
    assert rows["B [es]"]["suite"].mean == pytest.approx(0.9) and rows["B [es]"]["native"] is None
    assert any("covered: es 2 of 10" in note for note in grids[0].notes)
    (paired,) = grids[1:]
    pairs = dict(paired.rows)
    assert list(pairs) == ["A · all", "A · biology", "A · nursing"]  # B has no HEAD-QA: no rows
    assert [c.mean for c in pairs["A · biology"][:3]] == pytest.approx([0.75, 0.375, 0.375])
    assert [c.mean for c in pairs["A · nursing"][:3]] == pytest.approx([0.0, 1.0, -1.0])
    assert pairs["A · all"][0].seeds == 2 and pairs["A · all"][0].questions == 10


def test_compare_groups_native_exams_apart_and_leaves_multi_answer_out(tmp_path):
    from synthetic import write_run

    from results.compare import compare_tables
    from results.load import load_table

    tasks = {t: _questions(t, 10, 5) for t in ("medqa_zh", "mmlu_anatomy_zh", "medqa_mainland_zh", "cmexam_zh",
                                               "cmexam_multi_zh")}
    write_run(tmp_path / "base", "base", tasks)
    write_run(tmp_path / "cand", "cand", {**tasks, "cmexam_zh": _questions("cmexam_zh", 10, 2)})
    result = compare_tables(load_table([tmp_path / "base"]), load_table([tmp_path / "cand"]))
    names = [r.name for r in result.rows]
    assert names == ["medqa_zh", "mmlu_anatomy_zh", spec.language_group("zh"), "cmexam_zh", "medqa_mainland_zh",
                     spec.native_group("zh")]
    rows = {r.name: r for r in result.rows}
    assert rows[spec.native_group("zh")].delta == pytest.approx(-0.15) and rows[spec.language_group("zh")].delta == 0
    assert "not compared (no per-question acc: multi-answer exams): cmexam_multi_zh" in result.notes
    assert result.regime == "biomistral_3shot v1"  # the tasks compared; cmexam_multi (zero_shot) is not


def test_outputs_without_a_recorded_regime_are_assumed_and_kept_apart(tmp_path):
    from synthetic import write_run

    from results.compare import compare_tables
    from results.leaderboard import build_view
    from results.load import ResultsError, load_table

    write_run(tmp_path / "old", "old", {"medqa_en": _questions("q", 10, 5)}, regime_version=None)
    write_run(tmp_path / "new", "new", {"medqa_en": _questions("q", 10, 6)})
    table = load_table([tmp_path], hash_models=False)
    old = table[table["model"] == "old"]
    assert set(old["regime"]) == {"biomistral_3shot"} and set(old["regime_version"]) == {0}
    with pytest.raises(ResultsError, match=r"regime biomistral_3shot v0, .*: old; regime biomistral_3shot v1, .*: new"):
        build_view("summary", table, metric="acc")
    with pytest.raises(ResultsError, match="medqa_en: BASE ran regime biomistral_3shot v0, CANDIDATE biomistral_3shot v1"):
        compare_tables(load_table([tmp_path / "old"]), load_table([tmp_path / "new"]))


@pytest.mark.parametrize("benchmark, language, group", [
    ("medqa", "zh", spec.language_group("zh")), ("head_qa", "es", spec.native_group("es")),
    ("head_qa", "en", None),  # the authors' translation: in no native group
    ("cmexam", "zh", spec.native_group("zh")), ("truthfulqa_med", "en", None),
    ("cmexam_multi", "zh", None)])  # multi-answer: not averaged with the single-answer exams
def test_compare_language_rows_follow_the_spec_groups(benchmark, language, group):
    from results.compare import group_of

    assert group_of(benchmark, language) == group
