"""Pure functions of the results package against hand-computed values (tables of cases)."""
import math

import numpy as np
import pandas as pd
import pytest

from medtasks.metrics import expected_calibration_error
from results.compare import Row
from results.gate import Gate, is_regression
from results.leaderboard import build_view, summary_view, tasks_view
from results.load import (
    ASSUMED_REGIME_VERSION,
    COLUMNS,
    ResultsError,
    display_names,
    parse_task,
    regime_name,
    run_regime,
)
from results.render import latex_escape, render
from results.stats import (
    chance_centred,
    discordant,
    macro_average,
    mcnemar_exact,
    mean_std,
    reliability_bins,
    stratified_bootstrap,
)


def paired_bootstrap(base, candidate, *args, **kwargs):
    """One stratum: the paired bootstrap compare uses for a task row."""
    return stratified_bootstrap([(base, candidate)], *args, **kwargs)


@pytest.mark.parametrize("values, mean, std", [
    ([0.5, 0.6, 0.7], 0.6, math.sqrt(0.02 / 3)),  # population std: divide by n, not n - 1
    ([1.0], 1.0, 0.0),
    ([0.2, 0.4], 0.3, 0.1),
])
def test_mean_std(values, mean, std):
    assert mean_std(values) == pytest.approx((mean, std))


@pytest.mark.parametrize("values, expected", [([0.2, 0.4], 0.3), ([0.1, 0.2, 0.6], 0.3), ([0.5, math.nan], math.nan)])
def test_macro_average(values, expected):
    got = macro_average(values)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize("score, chance, expected", [(0.25, 0.25, 0.0), (1.0, 0.25, 1.0), (0.5, 1 / 3, 0.25),
                                                     (0.2, 0.2, 0.0), (0.0, 0.25, -1 / 3)])
def test_chance_centred(score, chance, expected):
    assert chance_centred(score, chance) == pytest.approx(expected)


@pytest.mark.parametrize("b, c, p", [
    (0, 0, 1.0),
    (0, 5, 2 / 32),  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    (1, 5, 2 * 7 / 64),  # 2 * (1 + 6) / 2^6
    (3, 3, 1.0),  # capped
    (0, 10, 2 / 1024),
    (8, 2, 2 * 56 / 1024),  # symmetric in b, c
])
def test_mcnemar_exact_hand_computed(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p)


@pytest.mark.parametrize("b, c", [(40, 70), (500, 560), (3, 30)])
def test_mcnemar_exact_matches_scipy(b, c):
    from scipy.stats import binomtest

    assert mcnemar_exact(b, c) == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)


def test_discordant_counts():
    assert discordant([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]) == (2, 1)


def test_bootstrap_degenerate_cases():
    same = [1, 0, 1, 1]
    assert paired_bootstrap(same, same) == (0.0, 0.0, 0.0)
    assert paired_bootstrap([0] * 10, [1] * 10) == (1.0, 1.0, 1.0)


def test_bootstrap_interval_matches_normal_approximation():
    # 30 questions gained, 10 lost, 160 unchanged: delta 0.1, se = sqrt((0.2 - 0.01) / 200) = 0.0308
    base = np.array([0] * 30 + [1] * 10 + [1] * 80 + [0] * 80)
    cand = np.array([1] * 30 + [0] * 10 + [1] * 80 + [0] * 80)
    delta, low, high = paired_bootstrap(base, cand, n_boot=20_000, seed=3)
    se = math.sqrt(0.19 / 200)
    assert delta == pytest.approx(0.1)
    assert low == pytest.approx(0.1 - 1.96 * se, abs=0.01)
    assert high == pytest.approx(0.1 + 1.96 * se, abs=0.01)


def test_bootstrap_matches_index_resampling():
    """The multinomial shortcut has the distribution of plain index resampling."""
    rng = np.random.default_rng(0)
    base, cand = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    d = cand - base
    naive = np.array([d[rng.integers(0, 300, 300)].mean() for _ in range(20_000)])
    _, low, high = paired_bootstrap(base, cand, n_boot=20_000, seed=1)
    assert low == pytest.approx(np.quantile(naive, 0.025), abs=0.01)
    assert high == pytest.approx(np.quantile(naive, 0.975), abs=0.01)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    base, cand = rng.integers(0, 2, 5000), rng.integers(0, 2, 5000)  # fine grid: seeds show in the quantiles
    assert paired_bootstrap(base, cand, 300, seed=7, key="medqa_en") == paired_bootstrap(base, cand, 300, seed=7, key="medqa_en")
    assert paired_bootstrap(base, cand, 300, seed=7) != paired_bootstrap(base, cand, 300, seed=8)


def test_stratified_bootstrap_is_a_macro_average():
    up = ([0] * 10, [1] * 10)  # +1 on one task
    flat = ([1] * 50, [1] * 50)  # 0 on a task five times larger
    delta, low, high = stratified_bootstrap([up, flat])
    assert (delta, low, high) == (0.5, 0.5, 0.5)  # macro: (1 + 0) / 2, not pooled 10/60


def test_reliability_bins_and_ece():
    conf = [0.1, 0.15, 0.5, 0.95, 1.0]
    ok = [0, 1, 1, 1, 0]
    bins = reliability_bins(conf, ok)
    assert [b["count"] for b in bins] == [2, 0, 1, 0, 2]  # 1.0 lands in the last bin
    assert bins[0]["confidence"] == pytest.approx(0.125) and bins[0]["accuracy"] == 0.5
    assert bins[4]["confidence"] == pytest.approx(0.975) and bins[4]["accuracy"] == 0.5
    assert math.isnan(bins[1]["accuracy"])
    # 2/5 * .375 + 1/5 * .5 + 2/5 * .475, by hand; the same as medtasks' ECE
    from_bins = sum(b["count"] / 5 * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])
    assert from_bins == pytest.approx(0.44)
    assert expected_calibration_error(conf, [bool(x) for x in ok]) == pytest.approx(0.44)


@pytest.mark.parametrize("metadata, benchmark, n_shot, expected", [
    ({"regime": "biomistral_3shot", "regime_version": 1}, "medqa", 3, ("biomistral_3shot", 1)),
    ({"regime": "native_3shot", "regime_version": 2}, "head_qa", 3, ("native_3shot", 2)),
    # lm_eval --num_fewshot 0 on a 3-shot task: not its regime any more, and the label says so
    ({"regime": "biomistral_3shot", "regime_version": 1}, "medqa", 0, ("biomistral_3shot(n_shot=0)", 1)),
    # outputs made before the YAMLs recorded a regime: the spec's, ASSUMED (version 0) when the shots agree
    ({"version": 1.0}, "medqa", 3, ("biomistral_3shot", ASSUMED_REGIME_VERSION)),
    ({"version": 1.0}, "truthfulqa_med", 0, ("zero_shot", ASSUMED_REGIME_VERSION)),
    ({}, "medqa", 5, ("5shot", ASSUMED_REGIME_VERSION)),
])
def test_run_regime_is_read_from_the_task_metadata(metadata, benchmark, n_shot, expected):
    assert run_regime(metadata, benchmark, n_shot) == expected


def test_regime_name_marks_chat_and_system_prompts():
    assert regime_name("native_3shot") == "native_3shot"
    assert regime_name("biomistral_3shot", chat=True, system=True) == "biomistral_3shot+chat+system"


@pytest.mark.parametrize("task, expected", [
    ("medqa_en", ("medqa", "en")), ("medqa5_zh", ("medqa5", "zh")), ("mmlu_anatomy_fr", ("mmlu_anatomy", "fr")),
    ("head_qa_es", ("head_qa", "es")), ("frenchmedmcqa_single_fr", ("frenchmedmcqa_single", "fr")),
    ("medqa_mainland_zh", ("medqa_mainland", "zh")),
    ("hellaswag", None), ("medqa_xx", None), ("mmlu_astronomy_en", None), ("headqa_es", None),
    ("head_qa_fr", None)])  # HEAD-QA exists in es and en only
def test_parse_task(task, expected):
    got = parse_task(task)
    assert (got and (got.benchmark, got.language)) == expected or (got is None and expected is None)


def test_display_names_are_shortest_unique_suffixes():
    names = display_names(["/ck/a/final", "/ck/b/final", "/m/base", "org/hub-model"], {"/m/base": "Base"})
    assert names == {"/ck/a/final": "a/final", "/ck/b/final": "b/final", "/m/base": "Base",
                     "org/hub-model": "hub-model"}


@pytest.mark.parametrize("delta, high, p, regression", [
    (-0.05, -0.01, 0.001, True),
    (-0.05, 0.01, 0.001, False),  # interval reaches 0
    (-0.05, -0.01, 0.2, False),  # McNemar not significant
    (-0.01, -0.001, 0.001, False),  # smaller than the threshold
    (0.05, 0.08, 0.001, False),  # an improvement
])
def test_gate(delta, high, p, regression):
    row = Row("task", "t", "en", 100, 100, 0.5, 0.5 + delta, delta, delta - 0.02, high, p)
    assert is_regression(row, Gate(threshold=0.02, alpha=0.05)) is regression


CHANCE = {"medqa": 0.25, "pubmedqa": 1 / 3}


def _table(rows):
    base = {c: "" for c in COLUMNS}
    base.update(regime="biomistral_3shot", regime_version=1, task_version="1.0", n_questions=10, n_questions_full=10,
                n_shot=3, lm_eval_version="0.4.13", eval_date="2026-01-01T00:00:00+00:00", metric="acc", stderr=0.0,
                kind="suite", answers="single")
    out = []
    for model, task, seed, value, *extra in rows:
        bench, _, lang = task.rpartition("_")
        out.append({**base, "model": model, "model_path": model, "task": task, "benchmark": bench, "language": lang,
                    "fewshot_seed": seed, "value": value, "chance": CHANCE[bench], "data_sha256": f"sha-{task}",
                    **(extra[0] if extra else {})})
    return pd.DataFrame(out)


AVERAGING = _table([
    ("A", "medqa_en", 1, 0.5), ("A", "medqa_en", 2, 0.7), ("A", "pubmedqa_en", 1, 0.3), ("A", "pubmedqa_en", 2, 0.5),
    ("B", "medqa_en", 1, 0.6), ("B", "pubmedqa_en", 1, 0.6),
    ("A", "medqa_fr", 1, 0.4), ("A", "medqa_fr", 2, 0.4),
])


def test_summary_averages_per_seed_then_over_seeds():
    grid = summary_view(AVERAGING)
    assert grid.columns == ["en", "fr", "Avg", "Avg (chance-centred)"]
    rows = dict(grid.rows)
    en, fr, avg, centred = rows["A"]
    assert (en.mean, en.std, en.seeds) == pytest.approx((0.5, 0.1, 2))  # seeds: 0.4 and 0.6
    assert fr.mean == pytest.approx(0.4) and avg.mean == pytest.approx(0.45)  # (0.5 + 0.4) / 2
    # seed 1: ((.5-.25)/.75 + (.3-1/3)/(2/3))/2 = .141667, French (.4-.25)/.75 = .2 -> .170833
    # seed 2: ((.7-.25)/.75 + (.5-1/3)/(2/3))/2 = .425,    French .2                -> .3125
    assert centred.mean == pytest.approx((0.170833 + 0.3125) / 2, abs=1e-5)
    assert centred.std == pytest.approx((0.3125 - 0.170833) / 2, abs=1e-5)
    b_en, b_fr, b_avg, _ = rows["B"]
    assert b_en.mean == pytest.approx(0.6) and b_en.best and not en.best
    assert b_fr is None and b_avg is None  # B has no French task: no average over fewer tasks
    assert [label for label, _ in grid.rows] == ["A", "B"]  # sorted by Avg, missing last


def test_tasks_view_has_chance_row_and_marks_best():
    grid = tasks_view(AVERAGING, language="en")
    assert grid.columns == ["medqa", "pubmedqa", "Avg", "Avg (chance-centred)"]
    rows = dict(grid.rows)
    assert rows["chance"][0].mean == 0.25 and rows["chance"][1].mean == pytest.approx(1 / 3)
    assert rows["B"][2].mean == pytest.approx(0.6) and rows["B"][2].best
    assert not rows["chance"][0].best  # the reference row is never "best"
    headline = build_view("headline", AVERAGING, metric="acc", language="en")
    assert headline.columns == ["MedQA", "PubMedQA", "Avg"] and not headline.show_std


def test_lower_is_better_metrics_mark_the_minimum():
    table = _table([("A", "medqa_en", 1, 0.10, {"metric": "ece"}), ("B", "medqa_en", 1, 0.05, {"metric": "ece"})])
    rows = dict(summary_view(table, metric="ece").rows)
    assert rows["B"][0].best and not rows["A"][0].best


def test_task_versions_are_never_mixed():
    table = _table([("A", "medqa_en", 1, 0.5), ("B", "medqa_en", 1, 0.6, {"task_version": "2.0"})])
    with pytest.raises(ResultsError, match="medqa_en cannot be compared.*version 1.0.*version 2.0"):
        summary_view(table)
    assert dict(summary_view(table, models=["B"]).rows)["B"][0].mean == 0.6


def test_regimes_are_never_mixed():
    table = _table([("A", "medqa_en", 1, 0.5), ("A", "medqa_en", 1, 0.6, {"regime": "zero_shot", "n_shot": 0})])
    with pytest.raises(ResultsError, match="mix regimes"):
        summary_view(table)
    assert dict(summary_view(table, regime="zero_shot").rows)["A"][0].mean == 0.6


@pytest.mark.parametrize("change, message", [
    ({"data_sha256": "sha-other"}, r"medqa_en was run on different data \(data sha-medqa_en: A; data sha-other: B\); "
                                   "a task name means one dataset"),
    ({"regime_version": 2}, r"medqa_en cannot be compared across these runs \(regime biomistral_3shot v1, "
                            r"version 1.0, 10 questions: A; regime biomistral_3shot v2, version 1.0, 10 questions: B\)"),
])
def test_runs_on_other_data_or_regime_versions_are_never_ranked_together(change, message):
    table = _table([("A", "medqa_en", 1, 0.5), ("B", "medqa_en", 1, 0.6, change)])
    for view in ("summary", "grid", "tasks"):
        with pytest.raises(ResultsError, match=message):
            build_view(view, table, metric="acc")
    assert dict(summary_view(table, models=["B"]).rows)["B"][0].mean == 0.6


def test_unknown_data_conflicts_with_none():
    """A run without samples has no data checksum: it is shown (unverifiable), and the note says so."""
    table = _table([("A", "medqa_en", 1, 0.5), ("B", "medqa_en", 1, 0.6, {"data_sha256": "unknown"})])
    grid = summary_view(table)
    assert "data (sha256 of the store file, first 12): medqa_en sha-medqa_en" in grid.notes


def test_renderers():
    grid = summary_view(AVERAGING)
    md = render(grid, "markdown")
    # fractions with lm-eval's four decimals, so a cell can be matched with lm-eval's own table
    assert "| A | 0.5000 ± 0.1000 | **0.4000** ± 0.0000 | **0.4500** ± 0.0500 |" in md
    assert "| B | **0.6000** | – | – | – |" in md
    assert "metric: acc (fractions 0..1, as lm-eval reports them)" in md
    assert "†" not in md and "limited run" not in md  # full splits: no mark, no legend
    tex = render(grid, "latex")
    assert r"\textbf{0.6000}" in tex and r"\begin{tabular}{lrrrr}" in tex and "±" not in tex
    lines = render(grid, "csv").splitlines()
    assert lines[0].startswith("model,en,en_std,en_seeds,en_best,en_questions,en_questions_full,en_limited,fr,")
    assert lines[1].startswith("A,0.5,0.1,2,0,20,20,0,") or lines[1].startswith("A,0.5,0.09999")
    assert latex_escape("mmlu_anatomy_en 50%") == r"mmlu\_anatomy\_en 50\%"
    with pytest.raises(ResultsError, match="valid: markdown, csv, latex"):
        render(grid, "html")


# medqa_en run with --limit 5 (of 1273 questions), pubmedqa_en and medqa_fr on their whole split
LIMITED = _table([
    ("A", "medqa_en", 1, 0.4, {"n_questions": 5, "n_questions_full": 1273}),
    ("A", "pubmedqa_en", 1, 0.6, {"n_questions": 500, "n_questions_full": 500}),
    ("A", "medqa_fr", 1, 0.5, {"n_questions": 1273, "n_questions_full": 1273}),
])
LEGEND = "† limited run (lm_eval --limit): 1 of {} tasks scored on a subset, 5 of 1273 questions"


def test_limited_cells_are_marked_in_markdown():
    md = render(summary_view(LIMITED), "markdown")
    # en averages a limited task: marked; fr does not: unmarked; Avg and the centred Avg include en: marked
    assert "| A | **0.5000**† | **0.5000** | **0.5000**† | " in md
    assert LEGEND.format(3) in md
    tasks = render(tasks_view(LIMITED, language="en"), "markdown")
    assert "| A | **0.4000**† | **0.6000** | **0.5000**† |" in tasks and LEGEND.format(2) in tasks
    assert "| chance | 0.2500 | 0.3333 |" in tasks  # reference cells are never marked


def test_limited_cells_are_marked_in_csv_and_latex():
    grid = tasks_view(LIMITED, language="en")
    header, row_a = [line.split(",") for line in render(grid, "csv").splitlines()[:2]]
    got = dict(zip(header, row_a))
    assert (got["medqa_questions"], got["medqa_questions_full"], got["medqa_limited"]) == ("5", "1273", "1")
    assert (got["pubmedqa_questions"], got["pubmedqa_limited"]) == ("500", "0")
    assert (got["Avg_questions"], got["Avg_questions_full"], got["Avg_limited"]) == ("505", "1773", "1")
    tex = render(grid, "latex")
    assert r"\textbf{0.4000}\textsuperscript{\dag} & \textbf{0.6000} &" in tex
    assert r"\textsuperscript{\dag} limited run (lm\_eval --limit)" in tex  # the legend, in the caption


def test_grid_and_headline_views_mark_limited_cells():
    grid = render(build_view("grid", LIMITED, metric="acc"), "markdown")
    assert "| medqa_en | 0.2500 | **0.4000**† |" in grid and "| pubmedqa_en | 0.3333 | **0.6000** |" in grid
    headline = render(build_view("headline", LIMITED, metric="acc", language="en"), "markdown")
    assert "| A | **0.4000**† | **0.6000** | **0.5000**† |" in headline and LEGEND.format(2) in headline
