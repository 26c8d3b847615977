"""One real `lm_eval run` of the default model, shared by the native-view and clean-subset tests: the
English suite's anatomy task and its third-party French and Spanish translations, HEAD-QA in Spanish
(native) and in the authors' English translation, FrenchMedMCQA's single-answer exam and CMExam's
multi-answer one (zero-shot), a few questions each (lm-eval's --samples: the same question indices in
both HEAD-QA languages, taken from two of its categories). A pytest plugin of the modules that use it
(`pytest_plugins = ["native_runs"]`), so the session fixture runs once for all of them."""
import json

import pytest
from lm_eval_run import run_lm_eval

# Indices into each task's test split. HEAD-QA's test file lists exams by category (biology first,
# nursing from index 228, in both languages); 0, 1, 228, 229 span two categories.
# A multi-answer question costs one forward pass per set of letters (15 with 4 options, 31 with 5): CMExam's
# questions 8 and 33 have 4 options.
PLAN = {"head_qa_es": [0, 1, 228, 229], "head_qa_en": [0, 1, 228, 229], "mmlu_anatomy_en": [0, 1, 2],
        "mmlu_anatomy_es": [0, 1], "mmlu_anatomy_fr": [0, 1], "frenchmedmcqa_single_fr": [0, 1],
        "cmexam_multi_zh": [8, 33]}


@pytest.fixture(scope="session")
def native_run(default_model, shared_data, tmp_path_factory) -> dict:
    """{"out": lm-eval's output folder, "store": the store it imported into, "model": the model folder,
    "plan": PLAN}."""
    out, store = tmp_path_factory.mktemp("native_run"), tmp_path_factory.mktemp("native_store")
    # One torch thread: on a CPU shared with other jobs, two threads per process spin against each other
    # (measured here: a 120-token forward pass of the default model took 30 s with 2 threads, 6 s with 1).
    env = {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    proc = run_lm_eval(default_model, ",".join(PLAN), out, store=store, data=shared_data,
                       extra=["--samples", json.dumps(PLAN)], env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "store": store, "model": default_model, "plan": PLAN}
