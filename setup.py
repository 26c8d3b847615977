"""Ships medtasks-lm-eval.pth at the root of the wheel, and of the editable wheel (setup.cfg cannot).

The .pth line imports medtasks._discovery, which only arms a hook that fires when
lm_eval.tasks.manager is imported; see that module for why. Both install modes are tested.
"""
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel
from setuptools.warnings import InformationOnly

# setuptools' "Editable installation ... folders with the same name" notice, printed at every editable
# install: our packages ARE those folders (flat layout), so it says nothing here.
warnings.simplefilter("ignore", InformationOnly)

PTH = "medtasks-lm-eval.pth"
PTH_SOURCE = Path(__file__).resolve().parent / "medtasks" / PTH


class BuildPyWithPth(build_py):
    """`pip install .` / wheels: put the .pth file at the root of build_lib."""

    def run(self):
        super().run()
        self.copy_file(str(PTH_SOURCE), str(Path(self.build_lib) / PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / PTH)]


class EditableWheelWithPth(editable_wheel):
    """`pip install -e .`: setuptools builds the editable wheel itself; add the .pth file to it."""

    def _select_strategy(self, name, tag, build_lib):
        return _AddPth(super()._select_strategy(name, tag, build_lib))


class _AddPth:
    def __init__(self, strategy):
        self.strategy = strategy

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc):
        return self.strategy.__exit__(*exc)

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(PTH, PTH_SOURCE.read_bytes())


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
