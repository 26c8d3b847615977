"""Ships medtasks-lm-eval.pth at the root of the wheel (setup.cfg cannot express that).

The .pth line imports medtasks._discovery, which only arms a hook that fires when
lm_eval.tasks.manager is imported; see that module for why.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "medtasks-lm-eval.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        source = Path(__file__).parent / "medtasks" / PTH
        target = Path(self.build_lib) / PTH
        self.copy_file(str(source), str(target), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
