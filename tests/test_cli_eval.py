"""`medeval eval`: a bad model path and missing data fail in a moment, before lm-eval starts; a run says
where lm-eval wrote its results and samples."""
import os
import time
from pathlib import Path

import pytest
from test_cli_hints import COMMAND, parses

from medtasks import cli, cli_tasks
from medtasks.common import UsageError
from medtasks.records import Record
from medtasks.store import write_records


@pytest.fixture
def no_lm_eval(monkeypatch):
    """lm-eval must not be started: the checks come first."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("lm-eval was started")
    monkeypatch.setattr(cli_tasks.subprocess, "call", refuse)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MEDTASKS_DATA", raising=False)
    monkeypatch.setenv("MEDTASKS_STORE", str(tmp_path / "store"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def run_eval(capsys, *argv):
    started = time.monotonic()
    code = cli.main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


def fake_hub_cache(root: Path, repo: str) -> Path:
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "config.json").write_text("{}")
    return root


@pytest.mark.parametrize("path, problem", [
    ("./no/such/model", "no such folder, and not a hub id (org/name)"),
    ("no-such-model", "no such folder, and not a hub id (org/name)"),
    ("someorg/not-cached", "no such folder, and HF_HUB_OFFLINE is set while the hub model is not in the Hugging "
                           "Face cache"),
])
def test_a_model_path_that_cannot_load_is_one_line_before_lm_eval(capsys, offline, no_lm_eval, path, problem):
    code, out, err, seconds = run_eval(capsys, "--model-path", path, "--tasks", "medqa_en")
    assert code == 2 and out == "" and seconds < 5
    assert err == f"medeval eval: --model-path {path}: {problem}" + err.split(problem, 1)[1]
    assert len(err.strip().splitlines()) == 1


def test_a_folder_without_a_config_is_not_a_model(tmp_path):
    with pytest.raises(UsageError, match=r"not a model folder \(no config.json in it\)"):
        cli_tasks.check_model(str(tmp_path))


def test_a_cached_hub_id_passes_offline_and_any_hub_id_passes_online(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub_cache(tmp_path, "someorg/cached")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cli_tasks.check_model("someorg/cached")
    with pytest.raises(UsageError):
        cli_tasks.check_model("someorg/other")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    cli_tasks.check_model("someorg/other")  # online: lm-eval will fetch it


def test_every_missing_task_is_listed_before_the_model_loads(shared_data, capsys, offline, no_lm_eval, monkeypatch):
    monkeypatch.setenv("MEDTASKS_DATA", str(shared_data))  # MMLU has third-party French files; the rest has none
    code, _, err, _ = run_eval(capsys, "--model-path", str(offline), "--tasks", "medeval_fr")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no data for 4 of 10 tasks, nothing was run: medqa_fr, medqa5_fr, pubmedqa_fr, medmcqa_fr: " \
           "`medeval translate --benchmarks medqa medqa5 pubmedqa medmcqa --languages fr`; or import BioMistral's " \
           "BioInstructQA for the suite's translations: `medeval import --bioinstructqa data.zip --benchmarks " \
           "medqa medqa5 pubmedqa medmcqa --languages fr`" in err
    # the check imported the English questions from MEDTASKS_DATA, so translation can start at once
    assert "translating needs the English questions" not in err


def test_missing_english_examples_and_groups_are_named(capsys, offline, no_lm_eval):
    questions = [Record(f"medqa-test-{i}", "medqa", "en", "test", f"Q{i}?", dict(zip("ABCD", "abcd")), "A")
                 for i in range(3)]
    write_records(Path(os.environ["MEDTASKS_STORE"]), questions)
    code, _, err, _ = run_eval(capsys, "--model-path", str(offline), "--tasks", "medqa_en,medeval_truthfulqa")
    assert code == 2
    assert err.startswith("medeval eval: no data for 9 of 9 tasks, nothing was run: medqa_en (few-shot examples), "
                          "truthfulqa_med_en: `medeval import --data DIR --benchmarks medqa truthfulqa_med`")
    for code_ in ("es", "de", "pt", "ru", "fr", "ar", "zh"):
        assert f"truthfulqa_med_{code_}: `medeval translate --benchmarks truthfulqa_med --languages {code_}`" in err
    assert "bioinstructqa" not in err  # BioInstructQA has no TruthfulQA
    commands = COMMAND.findall(err)
    assert len(commands) == 9 and all(parses(c) for c in commands)


def test_missing_native_exams_point_at_their_original_files_not_at_translation(capsys, offline, no_lm_eval):
    code, _, err, _ = run_eval(capsys, "--model-path", str(offline), "--tasks", "frenchmedmcqa_fr,medqa_mainland_zh")
    assert code == 2 and len(err.strip().splitlines()) == 1
    # medqa_mainland_zh shows MedQA's English examples: they come from MedQA's release too
    assert err.startswith("medeval eval: no data for 2 of 2 tasks, nothing was run: frenchmedmcqa_fr, "
                          "medqa_mainland_zh: `medeval import --data DIR --benchmarks frenchmedmcqa medqa_mainland` "
                          "(or set MEDTASKS_DATA=DIR)"), err
    assert "translate" not in err and "--hub" not in err  # exams in their own language; the hub has none of them
    assert all(parses(c) for c in COMMAND.findall(err))


def test_groups_and_tags_expand_to_their_tasks():
    assert len(cli_tasks.expand_tasks("medeval")) == 80
    assert cli_tasks.expand_tasks("medeval_medqa,medqa_fr")[:2] == [("medqa", "en"), ("medqa", "es")]
    assert len(cli_tasks.expand_tasks("medeval_medqa,medqa_fr")) == 8  # medqa_fr once
    assert cli_tasks.expand_tasks("medeval_truthfulqa")[0] == ("truthfulqa_med", "en")


def test_only_the_files_of_this_run_are_reported(tmp_path):
    folder = tmp_path / "out" / "model"
    folder.mkdir(parents=True)
    old = [folder / "results_2020-01-01T00-00-00.json", folder / "samples_medqa_en_2020-01-01T00-00-00.jsonl"]
    for path in old:
        path.write_text("{}")
        os.utime(path, (1e9, 1e9))
    started = time.time()
    new = [folder / "results_2030-01-01T00-00-00.json", folder / "samples_medqa_en_2030-01-01T00-00-00.jsonl"]
    for path in new:
        path.write_text("{}")
    assert cli_tasks.written_files(tmp_path / "out", started) == ([new[0]], [new[1]])
