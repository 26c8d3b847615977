"""hf-prefix (medtasks/prefix_lm.py): the planner, then numbers equal to stock HFLM on tiny and default models."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from medtasks.prefix_lm import Group, Row, common_prefix_len, plan_groups
from medtasks.prompts import build_prompt

TOL = 1e-4


# ---------------------------------------------------------------- planner (pure)

@pytest.mark.parametrize("a, b, expected", [
    ((), (), 0), ((1, 2, 3), (1, 2, 3), 3), ((1, 2, 3), (1, 2), 2), ((1, 2), (3, 2), 0), ((5, 6, 7), (5, 6, 8), 2),
])
def test_common_prefix_len(a, b, expected):
    assert common_prefix_len(a, b) == expected


def rows_of(*seqs, need=1):
    return [Row(tuple(s), need) for s in seqs]


def test_rows_sharing_a_long_prefix_form_one_group_and_strangers_are_left_over():
    shared = list(range(100, 150))
    rows = rows_of(shared + [1, 2], [9, 9, 9], shared + [3], shared + [4, 5, 6])
    groups = plan_groups(rows, min_prefix=8)
    assert groups == [Group(50, [0, 2, 3]), Group(0, [1])]


def test_prefix_never_covers_a_scored_position():
    shared = list(range(100, 140))
    rows = [Row(tuple(shared + [1, 2, 3]), 3), Row(tuple(shared), 1), Row(tuple(shared + [7]), 1)]
    (group,) = plan_groups(rows, min_prefix=8)
    assert group.prefix_len == 39  # row 1 scores its last position, so at most 39 tokens are shared
    assert all(len(rows[i].tokens) - rows[i].need >= group.prefix_len for i in group.rows)


def test_short_shared_prefix_is_not_worth_a_pass():
    rows = rows_of([1, 2, 3, 4, 10, 11], [1, 2, 3, 4, 20, 21])
    assert plan_groups(rows, min_prefix=8) == [Group(0, [0, 1])]
    assert plan_groups(rows, min_prefix=4) == [Group(4, [0, 1])]


def test_two_families_with_a_common_instruction_get_their_own_prefixes():
    instruction = list(range(1, 11))
    shots_a, shots_b = list(range(200, 260)), list(range(300, 360))
    rows = [Row(tuple(instruction + shots + [q, q + 1]), 1) for shots in (shots_a, shots_b) for q in (1000, 2000, 3000)]
    groups = plan_groups(rows, min_prefix=8)
    assert sorted((g.prefix_len, sorted(g.rows)) for g in groups) == [(70, [0, 1, 2]), (70, [3, 4, 5])]


def test_every_row_is_planned_exactly_once():
    import random

    rnd = random.Random(0)
    base = [rnd.randrange(50) for _ in range(40)]
    rows = [Row(tuple(base[: rnd.randrange(0, 40)] + [rnd.randrange(50) for _ in range(rnd.randrange(1, 9))]),
                rnd.randrange(1, 2)) for _ in range(200)]
    groups = plan_groups(rows, min_prefix=4)
    assert sorted(i for g in groups for i in g.rows) == list(range(200))
    for g in groups:
        members = [rows[i].tokens for i in g.rows]
        assert all(m[: g.prefix_len] == members[0][: g.prefix_len] for m in members)
        assert all(len(rows[i].tokens) - rows[i].need >= g.prefix_len for i in g.rows)


# ---------------------------------------------------------------- backend vs stock HFLM

def medical_requests(n_questions=6, languages=2):
    """BioMistral-style requests: same instruction + 3 examples, varied targets, letters and a multi-token option."""
    from lm_eval.api.instance import Instance

    shots = [{"question": f"Which organ is affected in case {i}?", "options": {"A": "heart", "B": "lung", "C": "kidney"},
              "answer": "ABC"[i], "context": "patient treatment disease " * 3} for i in range(3)]
    requests = []
    for lang in range(languages):
        for q in range(n_questions):
            target = {"question": f"{'Patient' if lang == 0 else 'Paciente'} {q}: fever and cough " + "dose mg " * q,
                      "options": {"A": "yes", "B": "no", "C": "maybe"}}
            prompt = build_prompt(target, shots)
            for cont in ("A", "B", "C", "C) maybe"):
                requests.append(Instance("loglikelihood", {}, (prompt, cont), idx=0))
    unrelated = "A 45-year-old man presents with chest pain. **Answer:**("
    requests += [Instance("loglikelihood", {}, (unrelated, c), idx=0) for c in "AB"]
    return requests


def both_backends(model_dir, requests, batch_size=3, **kwargs):
    from lm_eval.models.huggingface import HFLM

    from medtasks.prefix_lm import PrefixCachingHFLM

    stock = HFLM(pretrained=str(model_dir), device="cpu", batch_size=batch_size).loglikelihood(requests, disable_tqdm=True)
    ours_lm = PrefixCachingHFLM(pretrained=str(model_dir), device="cpu", batch_size=batch_size, **kwargs)
    return stock, ours_lm.loglikelihood(requests, disable_tqdm=True), ours_lm


def assert_same(stock, ours):
    assert len(stock) == len(ours)
    worst = max(abs(a[0] - b[0]) for a, b in zip(stock, ours))
    assert worst <= TOL, f"log-likelihoods differ by {worst}"
    assert [a[1] for a in stock] == [b[1] for b in ours]


@pytest.fixture(scope="module")
def llama_runs(tiny_llama):
    requests = medical_requests(n_questions=8, languages=2)
    return requests, *both_backends(tiny_llama, requests)


def test_same_loglikelihoods_as_stock_on_tiny_llama(llama_runs):
    _, stock, ours, lm = llama_runs
    assert_same(stock, ours)
    stats = lm.prefix_stats
    assert stats["groups"] >= 1 and stats["prefix_tokens"] > 0 and stats["fallback_calls"] == 0
    assert stats["rows"] < stats["requests"]  # letter choices of one question share one row


def test_same_loglikelihoods_as_stock_on_tiny_mistral(tiny_mistral):
    stock, ours, lm = both_backends(tiny_mistral, medical_requests(n_questions=3), batch_size=2)
    assert_same(stock, ours)
    assert lm.prefix_stats["groups"] >= 1


def test_shared_prefix_cuts_the_tokens_forwarded(llama_runs):
    requests, _, _, lm = llama_runs
    encoded = [(r.args, *lm._encode_pair(*r.args)) for r in requests]
    rows, _ = lm._rows(encoded)
    full = sum(len(row.tokens) for row in rows)  # what stock HFLM forwards (one pass per row), padding aside
    forwarded = lm.prefix_stats["prefix_tokens"] + lm.prefix_stats["suffix_tokens"]
    assert forwarded < 0.6 * full, (forwarded, full)


def test_sliding_window_shorter_than_the_prompts_falls_back_to_full_rows(tmp_path):
    from transformers import AutoConfig

    sys.path.insert(0, str(tmp_path))
    from tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "m", "mistral", seed=1)
    config = AutoConfig.from_pretrained(model_dir)
    config.sliding_window = 64  # prompts are ~150+ tokens: a shared cache would not be exact
    config.save_pretrained(model_dir)
    stock, ours, lm = both_backends(model_dir, medical_requests(n_questions=3, languages=1))
    assert_same(stock, ours)
    assert lm.prefix_stats["groups"] == 0


def test_rolling_loglikelihood_uses_the_stock_path(tiny_llama):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from medtasks.prefix_lm import PrefixCachingHFLM

    reqs = [Instance("loglikelihood_rolling", {}, ("patient fever cough " * 20,), idx=0)]
    stock = HFLM(pretrained=str(tiny_llama), device="cpu").loglikelihood_rolling(reqs, disable_tqdm=True)
    lm = PrefixCachingHFLM(pretrained=str(tiny_llama), device="cpu")
    assert lm.loglikelihood_rolling(reqs, disable_tqdm=True) == pytest.approx(stock, abs=TOL)
    assert lm.prefix_stats["fallback_calls"] >= 1


def test_lm_eval_finds_the_backend_by_name_in_a_fresh_interpreter():
    code = ("from lm_eval.api.registry import get_model; c = get_model('hf-prefix'); "
            "print(c.__module__ + ':' + c.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "medtasks.prefix_lm:PrefixCachingHFLM"


def test_discovery_registers_entry_points_lazily_and_never_replaces_a_name(monkeypatch):
    from lm_eval.api.registry import get_model, model_registry

    from medtasks import _discovery
    from medtasks.prefix_lm import PrefixCachingHFLM

    declared = {**_discovery.entry_point_models(), "medtasks-probe": "medtasks.prefix_lm:PrefixCachingHFLM",
                "hf": "medtasks.prefix_lm:PrefixCachingHFLM"}  # a clash with a built-in name must not win
    monkeypatch.setattr(_discovery, "entry_point_models", lambda: declared)
    before = model_registry.get("hf")
    _discovery.register_models(None)
    assert get_model("medtasks-probe") is PrefixCachingHFLM
    assert model_registry.get("hf") is before


# ---------------------------------------------------------------- default model, real tasks

@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()  # indexing lm-eval's ~13,000 tasks costs seconds: once per module


def run_tasks(model, model_dir, tasks, limit, monkeypatch, shared_data, task_manager, batch_size=2):
    from lm_eval import simple_evaluate

    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    return simple_evaluate(model=model, model_args=f"pretrained={model_dir}", tasks=tasks, limit=limit,
                           device="cpu", batch_size=batch_size, log_samples=True, metadata={"fewshot_seed": 1},
                           task_manager=task_manager)


def compare_runs(stock, ours, tasks):
    for task in tasks:
        a, b = stock["samples"][task], ours["samples"][task]
        assert [s["doc_id"] for s in a] == [s["doc_id"] for s in b]
        for x, y in zip(a, b):
            lx = [r[0][0] for r in x["resps"]]
            ly = [r[0][0] for r in y["resps"]]
            assert max(abs(p - q) for p, q in zip(lx, ly)) <= TOL, (task, x["doc_id"], lx, ly)
            assert [r[0][1] for r in x["resps"]] == [r[0][1] for r in y["resps"]]
            # ECE: the same questions in the same bins with the same correctness; the value itself moves
            # with the ~1e-5 float noise of the confidences (stock HFLM does as much between batch sizes)
            (cx, okx), (cy, oky) = x["ece"], y["ece"]
            assert okx == oky and abs(cx - cy) <= TOL and ece_bin(cx) == ece_bin(cy), (task, x["doc_id"])
        for metric in ("acc,none", "strict_acc,none"):
            assert stock["results"][task][metric] == ours["results"][task][metric], (task, metric)
        assert abs(stock["results"][task]["ece,none"] - ours["results"][task]["ece,none"]) <= TOL


def ece_bin(confidence: float) -> int:
    from medtasks.metrics import ECE_BINS

    return min(int(confidence * ECE_BINS), ECE_BINS - 1)


def test_default_model_same_numbers_on_one_task(default_model, shared_data, monkeypatch, task_manager):
    tasks = ["medqa_en"]
    stock = run_tasks("hf", default_model, tasks, 2, monkeypatch, shared_data, task_manager)
    ours = run_tasks("hf-prefix", default_model, tasks, 2, monkeypatch, shared_data, task_manager)
    compare_runs(stock, ours, tasks)


@pytest.mark.slow
def test_default_model_same_numbers_across_tasks_and_languages(default_model, shared_data, monkeypatch, task_manager):
    tasks = ["medqa_en", "medqa5_en", "pubmedqa_en", "medmcqa_en", "mmlu_anatomy_en", "mmlu_anatomy_fr",
             "mmlu_medical_genetics_es"]
    stock = run_tasks("hf", default_model, tasks, 4, monkeypatch, shared_data, task_manager, batch_size=4)
    ours = run_tasks("hf-prefix", default_model, tasks, 4, monkeypatch, shared_data, task_manager, batch_size=4)
    compare_runs(stock, ours, tasks)
    json.dumps(ours["results"])  # results stay serializable (lm-eval writes them as JSON)
