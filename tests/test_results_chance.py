"""Chance levels come from the questions evaluated where the option count varies (TruthfulQA's medical
categories: 2 to 13 options, so the level depends on the categories and on --limit), not from a constant."""
import math

import pytest
from synthetic import Question, write_run

from results.leaderboard import build_view
from results.load import ResultsError, load_table
from results.render import render

SUITE = {"medqa_en": [Question(f"m{i}", i < 5, 0.6) for i in range(10)]}


def _truthfulqa(options: list[int]) -> list[Question]:
    return [Question(f"t{i}", i % 2 == 0, 0.6, options=n) for i, n in enumerate(options)]


def test_truthfulqa_chance_is_the_mean_of_one_over_options_of_the_questions_evaluated(tmp_path):
    options = [2, 4, 5, 13, 3, 4]
    write_run(tmp_path, "m", SUITE, stamp="s1")
    write_run(tmp_path, "m", {"truthfulqa_med_en": _truthfulqa(options)}, n_shot=0, stamp="s2")
    table = load_table([tmp_path], hash_models=False)
    expected = sum(1 / n for n in options) / len(options)  # 0.3101..., not the 0.2167 of the 90 default questions
    assert table[table["task"] == "truthfulqa_med_en"]["chance"].tolist() == pytest.approx([expected] * 4)  # 4 metrics
    assert table[table["task"] == "medqa_en"]["chance"].tolist() == [0.25] * 4
    grid = build_view("tasks", table, metric="acc", language="en")
    assert dict(grid.rows)["chance"][grid.columns.index("TruthfulQA en")].mean == pytest.approx(expected)
    assert f"| chance | 0.2500 | 0.2500 | 0.0000 | {expected:.4f} |" in render(grid, "markdown")


def test_runs_over_other_questions_are_not_ranked_together(tmp_path):
    """Same task and question count, other option counts (other categories): other questions."""
    write_run(tmp_path / "a", "a", {"truthfulqa_med_en": _truthfulqa([2, 2, 3, 4])}, n_shot=0)
    write_run(tmp_path / "b", "b", {"truthfulqa_med_en": _truthfulqa([5, 5, 5, 5])}, n_shot=0)
    write_run(tmp_path / "a", "a", SUITE, stamp="s")
    write_run(tmp_path / "b", "b", SUITE, stamp="s")
    table = load_table([tmp_path], hash_models=False)
    with pytest.raises(ResultsError, match=r"truthfulqa_med_en: the runs evaluated different questions "
                                        r"\(chance levels 0\.2000, 0\.3958\)"):
        build_view("summary", table, metric="acc")
    assert dict(build_view("summary", table, metric="acc", models=["a"]).rows)["a"][-1].mean == 0.5


def test_chance_is_unknown_without_samples(tmp_path):
    write_run(tmp_path, "m", {"truthfulqa_med_en": _truthfulqa([2, 3])}, n_shot=0, samples=False)
    write_run(tmp_path, "m", SUITE, stamp="s", samples=False)
    table = load_table([tmp_path], hash_models=False)
    assert math.isnan(table[table["task"] == "truthfulqa_med_en"]["chance"].iloc[0])
    md = render(build_view("tasks", table, metric="acc", language="en"), "markdown")
    assert "| chance | 0.2500 | 0.2500 | 0.0000 | – |" in md  # unknown, never a constant
