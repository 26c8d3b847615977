"""Packaging (setup.cfg, owned with model_ops): the wheel builds without setuptools warnings and ships
every data file the packages read at run time (task YAMLs and templates, training recipes)."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("medtasks", "translation", "training", "model_ops", "results")


def data_files() -> set[str]:
    """Non-Python files under the packages that must be installed: YAMLs, lm-eval templates
    (`_*_yaml`), SLURM scripts and READMEs."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            name = path.name
            if path.is_file() and "__pycache__" not in path.parts and (
                    name.endswith((".yaml", ".sbatch")) or (name.startswith("_") and name.endswith("_yaml"))
                    or name == "README.md"):
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_wheel_builds_silently_and_ships_every_data_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "absent from the `packages` configuration" not in log
    assert "BuildBackendWarning" not in log and "SetuptoolsDeprecationWarning" not in log
    names = set(zipfile.ZipFile(next(tmp_path.glob("medeval-*.whl"))).namelist())
    expected = data_files()
    assert {"medtasks/tasks/_native_3shot_template_yaml", "training/configs/slurm/pretrain_multinode.sbatch",
            "medtasks/tasks/zh/medqa_zh.yaml"} <= expected
    assert expected - names == set()
    assert not any("__pycache__" in name or name.startswith("tests/") for name in names)
