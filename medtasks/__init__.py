"""medtasks: BioMistral's multilingual medical QA benchmark as lm-eval tasks (store, importers, tasks).

Kept import-light on purpose: the .pth start-up hook imports medtasks._discovery in every
Python process, so nothing heavy may be imported here.
"""
__version__ = "0.1.0"
