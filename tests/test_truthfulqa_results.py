"""The leaderboard's truthfulness columns: TruthfulQA (truthfulqa_med, zero-shot) beside the ten-task
averages, never inside them. Runs are lm-eval-format files from known outcomes (tests/synthetic.py)."""
import pytest
from synthetic import Question, write_run

from medtasks.spec import BENCHMARKS
from results.leaderboard import build_view, select
from results.load import load_table, parse_task


def _questions(prefix, n, right):
    return [Question(f"{prefix}-{i}", i < right, confidence=0.6) for i in range(n)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Model A: the ten English tasks (3-shot, two seeds) + TruthfulQA en/fr (zero-shot); model B: suite only."""
    root = tmp_path_factory.mktemp("runs")
    suite = {f"{b}_en": _questions(b, 10, 5) for b in BENCHMARKS}
    for seed in (1, 2):
        write_run(root / f"a{seed}", "org/A", suite, fewshot_seed=seed, stamp=f"2026-01-0{seed}T00-00-00.000000")
        write_run(root / f"b{seed}", "org/B", {t: _questions(t, 10, 6) for t in suite}, fewshot_seed=seed,
                  stamp=f"2026-01-0{seed}T00-00-00.000000")
    write_run(root / "a_tqa", "org/A", {"truthfulqa_med_en": _questions("tqa", 10, 3),
                                        "truthfulqa_med_fr": _questions("tqa", 10, 2)},
              n_shot=0, stamp="2026-01-03T00-00-00.000000")
    return root


def test_truthfulqa_tasks_load_with_their_own_regime(runs):
    assert (parse_task("truthfulqa_med_fr").benchmark, parse_task("truthfulqa_med_fr").language) == ("truthfulqa_med", "fr")
    table = load_table([runs], hash_models=False)
    tqa = table[table["benchmark"] == "truthfulqa_med"]
    assert set(tqa["regime"]) == {"zero_shot"} and set(tqa["regime_version"]) == {1} and set(tqa["task"]) == {"truthfulqa_med_en", "truthfulqa_med_fr"}
    suite = select(table, "acc")  # the suite's selection ignores them: no "mixed regimes" error
    assert set(suite["regime"]) == {"biomistral_3shot"} and "truthfulqa_med" not in set(suite["benchmark"])


def test_summary_has_truthfulness_columns_apart_from_the_average(runs):
    table = load_table([runs], hash_models=False)
    grid = build_view("summary", table, metric="acc")
    assert grid.columns == ["en", "Avg", "Avg (chance-centred)", "TruthfulQA en", "TruthfulQA fr"]
    rows = dict(grid.rows)
    assert rows["A"][1].mean == pytest.approx(0.5)  # the ten tasks' average, TruthfulQA's 0.3 not in it
    assert rows["A"][3].mean == pytest.approx(0.3) and rows["A"][4].mean == pytest.approx(0.2)
    assert rows["B"][1].mean == pytest.approx(0.6) and rows["B"][3] is None and rows["B"][1].best
    assert any("never in Avg" in note and "zero_shot v1" in note for note in grid.notes)
    without = build_view("summary", table[table["benchmark"] != "truthfulqa_med"], metric="acc")
    assert [c.mean for c in dict(without.rows)["A"]] == [c.mean for c in rows["A"][:3]]


def test_tasks_view_adds_the_language_column_with_its_chance(runs):
    table = load_table([runs], hash_models=False)
    english = build_view("tasks", table, metric="acc", language="en")
    assert english.columns[-1] == "TruthfulQA en" and len(english.columns) == len(BENCHMARKS) + 3
    rows = dict(english.rows)
    assert rows["A"][-1].mean == pytest.approx(0.3) and rows["B"][-1] is None
    assert rows["chance"][-1].mean == pytest.approx(1 / 13)  # measured on the questions: all 13 options here
    headline = build_view("headline", table, metric="acc", language="en")
    assert "TruthfulQA en" not in headline.columns  # BioMistral's layout stays its own


def test_calibration_metrics_get_the_column_too(runs):
    table = load_table([runs], hash_models=False)
    grid = build_view("summary", table, metric="ece")
    assert grid.columns[-2:] == ["TruthfulQA en", "TruthfulQA fr"] and not grid.higher_is_better
