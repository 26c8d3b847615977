"""Multi-answer scoring inside lm-eval: a tiny model, three FrenchMedMCQA-like questions written here,
the subset choices and metrics of medtasks wired as a task YAML would wire them."""
import json
import math

import pytest

from medtasks.metrics import process_multi_results
from medtasks.prompts import doc_to_subset_choices, doc_to_text

DOCS = [
    {"id": "q1", "question": "Which are enzymes?", "context": None,
     "options": ["amylase", "glucose", "lipase", "sodium", "pepsin"], "answer": "ACE"},
    {"id": "q2", "question": "Which is a vitamin?", "context": None,
     "options": ["retinol", "iron", "zinc", "urea", "sucrose"], "answer": "A"},
    {"id": "q3", "question": "Which are ions?", "context": "Four options here.",
     "options": ["Na+", "Cl-", "DNA", "ATP"], "answer": "AB"},
]

TASK = """task: multi_answer_probe
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
num_fewshot: 0
doc_to_text: !function medtasks.prompts.doc_to_text
doc_to_target: !function medtasks.prompts.doc_to_subset_target
doc_to_choice: !function medtasks.prompts.doc_to_subset_choices
target_delimiter: ""
process_results: !function medtasks.metrics.process_multi_results
metric_list:
  - metric: hamming
    aggregation: mean
    higher_is_better: true
  - metric: emr
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def run(tiny_llama, tmp_path_factory):
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    folder = tmp_path_factory.mktemp("multi_task")
    (folder / "test.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (folder / "task.yaml").write_text(TASK.format(data=folder / "test.jsonl"))
    lm = HFLM(pretrained=str(tiny_llama), device="cpu", batch_size=1)
    passes = []
    hook = lm.model.register_forward_hook(lambda module, args, output: passes.append(args[0].shape[0]))
    with torch.no_grad():
        out = simple_evaluate(model=lm, tasks=["multi_answer_probe"], log_samples=True,
                              task_manager=TaskManager(include_path=str(folder)))
    hook.remove()
    return lm, sum(passes), out


def test_forward_passes_per_question(run):
    """lm-eval's HF backend shares one pass among continuations differing only in their last token;
    every letter set ends with ")", so each set needs its own pass: 31 for 5 options, 15 for 4."""
    lm, passes, _ = run
    prefixes = {tuple(lm.tok_encode(doc_to_text(d) + choice)[:-1]) for d in DOCS for choice in doc_to_subset_choices(d)}
    assert passes == len(prefixes) == 31 + 31 + 15


def test_reported_metrics_are_the_most_likely_sets_scored(run):
    _, _, out = run
    samples = out["samples"]["multi_answer_probe"]
    assert len(samples) == 3
    hamming, emr = [], []
    for sample in samples:
        doc = sample["doc"]
        logliks = [(float(ll), bool(greedy)) for ll, greedy in (r[0] for r in sample["resps"])]
        assert len(logliks) == len(doc_to_subset_choices(doc))
        scores = process_multi_results(doc, logliks)
        assert math.isclose(sample["hamming"], scores["hamming"]) and sample["emr"] == scores["emr"]
        hamming.append(scores["hamming"])
        emr.append(scores["emr"])
    results = out["results"]["multi_answer_probe"]
    assert math.isclose(results["hamming,none"], sum(hamming) / 3)
    assert math.isclose(results["emr,none"], sum(emr) / 3)
