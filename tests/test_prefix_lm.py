"""hf-prefix (medtasks/prefix_lm.py): the planner, then numbers equal to stock HFLM on tiny and default models."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from medtasks.prefix_lm import (Group, PrefixCache, Row, common_prefix_len, plan_batches, plan_groups,
                                 token_floor)
from medtasks.prompts import build_prompt

TOL = 1e-4


# ---------------------------------------------------------------- planner (pure)

@pytest.mark.parametrize("a, b, expected", [
    ((), (), 0), ((1, 2, 3), (1, 2, 3), 3), ((1, 2, 3), (1, 2), 2), ((1, 2), (3, 2), 0), ((5, 6, 7), (5, 6, 8), 2),
    (tuple(range(1000)), tuple(range(617)) + (-1,) * 5, 617), (tuple(range(9)), (0, 9), 1),
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


def test_rows_longer_than_the_exact_cache_limit_are_left_over():
    shared = list(range(100, 150))
    rows = rows_of(shared + [1], shared + [2], shared + [3] * 30)
    assert plan_groups(rows, min_prefix=8, max_len=60) == [Group(50, [0, 1]), Group(0, [2])]


def test_batches_hold_similar_lengths_within_the_padding_budget():
    assert plan_batches([100, 10, 99, 59, 98, 60], max_rows=4, max_padding=0.02) == [[0, 2, 4], [5, 3], [1]]
    assert plan_batches([50] * 5, max_rows=2) == [[0, 1], [2, 3], [4]]
    assert plan_batches([50, 10], max_rows=4, max_padding=4.0) == [[0, 1]]  # a loose budget pads


def test_batches_cover_every_row_once_and_respect_both_bounds():
    import random

    rnd = random.Random(1)
    lengths = [rnd.randrange(1, 400) for _ in range(300)]
    batches = plan_batches(lengths, max_rows=8, max_padding=0.05)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for b in batches:
        real = sum(lengths[i] for i in b)
        assert len(b) <= 8 and max(lengths[i] for i in b) * len(b) <= 1.05 * real
    assert len(batches) < 300  # similar lengths do share batches


def test_token_floor_counts_each_prefix_once_and_a_shared_trunk_once():
    trunk, tail_a, tail_b = tuple(range(100, 160)), (1, 2, 3), (4, 5)
    questions = [(7, 8), (9, 10, 11), (12,)]
    task_a = [Row(trunk + tail_a + q, 1) for q in questions]
    task_b = [Row(trunk + tail_b + q, 1) for q in questions]
    task_c = [Row(trunk + tail_a + (50,) + q, 1) for q in questions]  # same prefix as task a
    # each task's prefix stops before its first distinct token; a row's own tokens follow it
    floor = token_floor({"a": task_a, "b": task_b})
    assert floor == {"prefix": 63 + 2, "suffix": 6 + 6, "total": 77}
    assert token_floor({"a": task_a, "c": task_c})["prefix"] == 63 + 1  # c's prefix: a's plus one token


def test_token_floor_stops_short_of_scored_positions():
    rows = [Row(tuple(range(20)) + (1,), 4), Row(tuple(range(20)) + (2,), 1)]
    assert token_floor({"t": rows}) == {"prefix": 17, "suffix": 4 + 4, "total": 25}


def test_prefix_cache_finds_the_longest_shared_prefix_and_evicts_the_least_recently_used():
    cache = PrefixCache(max_bytes=100)
    assert cache.longest((1, 2, 3)) == (None, None, 0)
    assert cache.put((1, 2, 3, 4), "a", 40) and cache.put((1, 2, 9), "b", 40)
    assert cache.longest((1, 2, 3, 7)) == ((1, 2, 3, 4), "a", 3)
    assert cache.longest((1, 2)) == ((1, 2, 3, 4), "a", 2)  # a tie goes to the most recently used
    assert cache.longest((5,)) == (None, None, 0)
    cache.longest((1, 2, 9))  # "b" is now the most recently used: "a" goes first
    assert cache.put((8,), "c", 40)
    assert list(cache.entries) == [(1, 2, 9), (8,)] and cache.evictions == 1 and cache.nbytes == 80
    assert not cache.put((9,), "too big", 101) and (9,) not in cache.entries
    assert cache.put((8,), "c2", 60) and cache.nbytes == 100 and cache.longest((8,))[1] == "c2"


# ---------------------------------------------------------------- backend vs stock HFLM

def medical_requests(n_questions=6, languages=2, unrelated=True, fourth_option=False, doses=None, task="t"):
    """BioMistral-style requests: same instruction + 3 examples, varied targets, letters and a multi-token option.

    fourth_option: the examples get an option (D), like MedQA-5 beside MedQA-4: the same instruction and
    first question, then a different prefix. doses: per question, how many times "dose mg " lengthens it.
    """
    from lm_eval.api.instance import Instance

    options = {"A": "heart", "B": "lung", "C": "kidney", **({"D": "liver"} if fourth_option else {})}
    shots = [{"question": f"Which organ is affected in case {i}?", "options": options,
              "answer": "ABC"[i], "context": "patient treatment disease " * 3} for i in range(3)]
    requests = []
    for lang in range(languages):
        for q, dose in enumerate(doses if doses is not None else range(n_questions)):
            target = {"question": f"{'Patient' if lang == 0 else 'Paciente'} {q}: fever and cough " + "dose mg " * dose,
                      "options": {"A": "yes", "B": "no", "C": "maybe"}}
            prompt = build_prompt(target, shots)
            for cont in ("A", "B", "C", "C) maybe"):
                requests.append(Instance("loglikelihood", {}, (prompt, cont), idx=0, metadata=(task, q, 1)))
    if unrelated:
        text = "A 45-year-old man presents with chest pain. **Answer:**("
        requests += [Instance("loglikelihood", {}, (text, c), idx=0, metadata=(task, -1, 1)) for c in "AB"]
    return requests


def both_backends(model_dir, requests, batch_size=3, **kwargs):
    from lm_eval.models.huggingface import HFLM

    from medtasks.prefix_lm import PrefixCachingHFLM

    stock_lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=batch_size)
    stock = stock_lm.loglikelihood(requests, disable_tqdm=True)
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


def count_tokens(lm) -> dict:
    """Tokens the model is given (input_ids.numel(), padding included), counted by a forward pre-hook."""
    counted = {"tokens": 0, "forwards": 0}

    def hook(_module, args, kwargs):
        counted["tokens"] += int(kwargs.get("input_ids", args[0] if args else None).numel())
        counted["forwards"] += 1

    lm.model.register_forward_pre_hook(hook, with_kwargs=True)
    return counted


def prefix_lm(model_dir, **kwargs):
    from medtasks.prefix_lm import PrefixCachingHFLM

    return PrefixCachingHFLM(pretrained=str(model_dir), device="cpu", **{"batch_size": 3, **kwargs})


def stock_loglikelihoods(model_dir, requests, batch_size=3):
    from lm_eval.models.huggingface import HFLM

    stock = HFLM(pretrained=str(model_dir), device="cpu", batch_size=batch_size)
    return stock.loglikelihood(requests, disable_tqdm=True)


@pytest.fixture(scope="module")
def two_tasks():
    """Two tasks with the same instruction and first example stem, then different examples (MedQA-4 / -5)."""
    return (medical_requests(n_questions=4, languages=1, unrelated=False, task="four"),
            medical_requests(n_questions=4, languages=1, unrelated=False, fourth_option=True, task="five"))


def test_a_prefix_is_computed_only_past_the_longest_cached_one_across_tasks_and_calls(tiny_llama, two_tasks):
    from medtasks.prefix_lm import request_floor

    four, five = two_tasks
    stock = stock_loglikelihoods(tiny_llama, four + five)
    lm = prefix_lm(tiny_llama, max_padding=0)
    counted = count_tokens(lm)
    floor = request_floor(lm, four + five)
    first = lm.loglikelihood(four, disable_tqdm=True)
    second = lm.loglikelihood(five, disable_tqdm=True)  # a later call: extends task four's cached trunk
    assert_same(stock, first + second)
    assert lm.prefix_stats["prefix_tokens"] == floor["prefix"] and lm.prefix_stats["prefix_reused"] > 0
    assert counted["tokens"] <= 1.05 * floor["total"], (counted, floor)
    before = counted["tokens"]
    assert_same(stock[:len(four)], lm.loglikelihood(four, disable_tqdm=True))  # a third call: no prefix pass
    assert lm.prefix_stats["prefix_tokens"] == floor["prefix"]
    assert counted["tokens"] - before == request_floor(lm, four)["suffix"]  # only the questions' own tokens


def test_one_call_over_two_tasks_forwards_the_floor(tiny_llama, two_tasks):
    from medtasks.prefix_lm import request_floor

    four, five = two_tasks
    lm = prefix_lm(tiny_llama)
    counted = count_tokens(lm)
    assert_same(stock_loglikelihoods(tiny_llama, five + four), lm.loglikelihood(five + four, disable_tqdm=True))
    floor = request_floor(lm, five + four)
    assert lm.prefix_stats["prefix_tokens"] == floor["prefix"]
    assert counted["tokens"] <= 1.05 * floor["total"], (counted, floor)


def test_suffixes_of_different_lengths_are_batched_by_length_with_little_padding(tiny_llama):
    # sorted by length, batches of 4 would put the dose-30 questions with the dose-0 ones
    requests = medical_requests(languages=1, unrelated=False, doses=[0, 30, 0, 60, 31, 0])
    lm = prefix_lm(tiny_llama, batch_size=4, max_padding=0.02)
    assert_same(stock_loglikelihoods(tiny_llama, requests, batch_size=4), lm.loglikelihood(requests, disable_tqdm=True))
    stats = lm.prefix_stats
    assert stats["padded_tokens"] <= 1.02 * stats["suffix_tokens"], stats
    assert stats["batches"] < stats["rows"]  # equal lengths still share a batch
    loose = prefix_lm(tiny_llama, batch_size=4, max_padding=10)  # full, padded batches give the same numbers
    assert_same(stock_loglikelihoods(tiny_llama, requests), loose.loglikelihood(requests, disable_tqdm=True))
    assert loose.prefix_stats["padded_tokens"] > 1.2 * loose.prefix_stats["suffix_tokens"], loose.prefix_stats


def test_a_bounded_prefix_cache_evicts_the_least_recently_used_and_stays_exact(tiny_llama, two_tasks):
    four, five = two_tasks
    stock = stock_loglikelihoods(tiny_llama, four + five)
    probe = prefix_lm(tiny_llama)  # default bound: keeps both tasks' prefixes
    probe.loglikelihood(four, disable_tqdm=True)
    probe.loglikelihood(five, disable_tqdm=True)
    (p4, (_, size4)), (p5, _) = probe.prefix_cache.entries.items()
    trunk = common_prefix_len(p4, p5)
    lm = prefix_lm(tiny_llama, prefix_cache_mb=1.5 * size4 / 2**20)  # room for one task's prefix, not two
    results = [lm.loglikelihood(reqs, disable_tqdm=True) for reqs in (four, five, four)]
    assert_same(stock + stock[:len(four)], results[0] + results[1] + results[2])
    assert lm.prefix_cache.evictions == 2 and list(lm.prefix_cache.entries) == [p4]
    assert lm.prefix_cache.nbytes <= lm.prefix_cache.max_bytes
    # the third call extended task five's prefix (the shared trunk) since task four's had been evicted
    assert lm.prefix_stats["prefix_tokens"] == len(p4) + (len(p5) - trunk) + (len(p4) - trunk)
    nothing_kept = prefix_lm(tiny_llama, prefix_cache_mb=0)
    assert_same(stock[:len(four)], nothing_kept.loglikelihood(four, disable_tqdm=True))
    assert not nothing_kept.prefix_cache.entries and nothing_kept.prefix_stats["prefix_tokens"] == len(p4)


def test_bad_model_args_are_usage_errors(tiny_llama):
    from medtasks.common import UsageError

    with pytest.raises(UsageError, match="max_padding"):
        prefix_lm(tiny_llama, max_padding=-1)


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


def test_tokens_forwarded_stay_within_5_percent_of_the_floor_on_real_prompts(default_model, shared_data, monkeypatch,
                                                                             task_manager):
    """MedQA-4 and MedQA-5 share their three examples (computed once for both) and their questions up to
    option E (the planner may share those too, going below the floor's per-task prefixes)."""
    from lm_eval import simple_evaluate

    from medtasks.prefix_lm import request_floor

    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))
    lm = prefix_lm(default_model, batch_size=4)
    counted, seen = count_tokens(lm), []
    score = lm.loglikelihood
    monkeypatch.setattr(lm, "loglikelihood", lambda requests, **kw: seen.extend(requests) or score(requests, **kw))
    simple_evaluate(model=lm, tasks=["medqa_en", "medqa5_en"], limit=4, metadata={"fewshot_seed": 1},
                    task_manager=task_manager)
    floor = request_floor(lm, seen)
    assert {r.task_name for r in seen} == {"medqa_en", "medqa5_en"}
    assert lm.prefix_stats["prefix_tokens"] < 2 * floor["prefix"] and lm.prefix_stats["prefix_reused"] > 0
    assert counted["tokens"] <= 1.05 * floor["total"], (counted, floor, lm.prefix_stats)


@pytest.mark.slow
def test_default_model_same_numbers_across_tasks_and_languages(default_model, shared_data, monkeypatch, task_manager):
    tasks = ["medqa_en", "medqa5_en", "pubmedqa_en", "medmcqa_en", "mmlu_anatomy_en", "mmlu_anatomy_fr",
             "mmlu_medical_genetics_es"]
    stock = run_tasks("hf", default_model, tasks, 4, monkeypatch, shared_data, task_manager, batch_size=4)
    ours = run_tasks("hf-prefix", default_model, tasks, 4, monkeypatch, shared_data, task_manager, batch_size=4)
    compare_runs(stock, ours, tasks)
    json.dumps(ours["results"])  # results stay serializable (lm-eval writes them as JSON)
