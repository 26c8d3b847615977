"""The task grid: names, groups, generated YAMLs, and lm-eval finding them with no --include_path."""
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from task_yaml import load_task_yaml

from medtasks import _discovery
from medtasks.spec import BENCHMARKS, LANGUAGES
from medtasks.tasks import generate

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_TASKS = {f"{b}_{l}" for b in BENCHMARKS for l in LANGUAGES}




def test_grid_is_ten_benchmarks_by_eight_languages():
    assert len(BENCHMARKS) == 10 and list(LANGUAGES) == ["en", "es", "de", "pt", "ru", "fr", "ar", "zh"]
    assert len(EXPECTED_TASKS) == 80 and "medqa_zh" in EXPECTED_TASKS
    medqa_zh = load_task_yaml(generate.TASKS_DIR / "zh" / "medqa_zh.yaml")
    assert medqa_zh["dataset_kwargs"] == {"benchmark": "medqa", "language": "zh"}  # 4 options, Chinese


def test_committed_yamls_match_the_generator():
    assert generate.stale_files() == [], "run `python -m medtasks.tasks.generate` and commit"


def test_generator_check_notices_a_hand_edit(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "TASKS_DIR", tmp_path)
    assert generate.main([]) == 0 and generate.stale_files() == []
    (tmp_path / "fr" / "medqa_fr.yaml").write_text("task: medqa_fr\n")
    (tmp_path / "fr" / "stray.yaml").write_text("task: stray\n")
    assert generate.main(["--check"]) == 1
    assert [p.name for p in generate.stale_files()] == ["medqa_fr.yaml", "stray.yaml"]


def test_groups_partition_the_tasks_and_every_task_has_a_version():
    groups = {p: load_task_yaml(p) for p in generate.TASKS_DIR.rglob("_medeval_*.yaml")}
    members = Counter(t for g in groups.values() for t in g["task"])
    assert set(members) == EXPECTED_TASKS and set(members.values()) == {1}  # no task in two groups
    suite = load_task_yaml(generate.TASKS_DIR / "_medeval.yaml")
    assert suite["task"] == [f"medeval_{l}" for l in LANGUAGES]
    for g in [*groups.values(), suite]:
        assert {m["weight_by_size"] for m in g["aggregate_metric_list"]} == {False}  # macro mean
    template = load_task_yaml(generate.TASKS_DIR / generate.TEMPLATE)
    assert template["metadata"]["version"] == generate.TASK_VERSION and template["num_fewshot"] == 3


def test_lm_eval_registers_the_whole_grid_without_include_path():
    from lm_eval.tasks import TaskManager

    manager = TaskManager()
    names = set(manager.all_tasks)
    assert EXPECTED_TASKS <= names
    assert {"medeval", *(f"medeval_{l}" for l in LANGUAGES)} <= set(manager.all_groups)
    assert {f"medeval_{b}" for b in BENCHMARKS} <= set(manager.all_tags)


def test_no_name_clashes_with_lm_eval_builtin_tasks():
    from lm_eval.tasks import TaskManager

    builtin = set(TaskManager.__init__.__wrapped__.__globals__["TaskIndex"]().build(
        [Path(sys.modules["lm_eval.tasks.manager"].__file__).parent]))
    ours = EXPECTED_TASKS | {"medeval"} | {f"medeval_{x}" for x in [*LANGUAGES, *BENCHMARKS]}
    assert not ours & builtin


def test_hook_costs_nothing_for_processes_that_never_import_lm_eval():
    code = ("import sys; from medtasks._discovery import _ManagerFinder; "
            "print(any(isinstance(f, _ManagerFinder) for f in sys.meta_path), "
            "any(m.startswith('lm_eval') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]  # armed by the .pth file, lm-eval never imported


def test_hook_steps_aside_when_lm_eval_reads_entry_points(tmp_path):
    (tmp_path / "manager.py").write_text("import importlib.metadata as m\n"
                                         "EPS = m.entry_points(group='lm_eval.tasks')\n")
    fake = type(sys)("fake_manager")
    fake.__file__ = str(tmp_path / "manager.py")
    assert _discovery.lm_eval_has_plugin_support(fake)
    (tmp_path / "manager.py").write_text("from lm_eval.tasks._index import TaskIndex\n")
    assert not _discovery.lm_eval_has_plugin_support(fake)


def test_user_include_path_keeps_precedence(tmp_path):
    from lm_eval.tasks import TaskManager

    (tmp_path / "override.yaml").write_text("include: " + str(generate.TASKS_DIR / generate.TEMPLATE) +
                                            "\ntask: medqa_en\ndataset_kwargs:\n  benchmark: medqa5\n  language: en\n")
    manager = TaskManager(include_path=str(tmp_path))
    assert manager.include_path[-1] == str(tmp_path)
    assert str(generate.TASKS_DIR) in [str(p) for p in manager.include_path]


def test_wheel_ships_the_pth_file_at_its_root(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("medeval-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "medtasks-lm-eval.pth" in names
    assert "medtasks/tasks/zh/medqa_zh.yaml" in names and "medtasks/tasks/_default_template_yaml" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"[lm_eval.tasks]" in entry_points


def test_installed_environment_has_the_pth_file():
    import site
    import sysconfig

    folders = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    assert any((Path(f) / "medtasks-lm-eval.pth").exists() for f in folders), \
        "install with `pip install -e .` or `pip install .` (scripts/setup does)"


@pytest.mark.parametrize("name", ["medqa_xx", "medqa"])
def test_unknown_task_lists_valid_names(name):
    from medtasks.cli_tasks import resolve_tasks
    from medtasks.common import UsageError

    with pytest.raises(UsageError, match="valid names"):
        resolve_tasks(name)
