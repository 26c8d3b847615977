"""Make plain `lm_eval --tasks medqa_zh` find our tasks on lm-eval 0.4.13, which has no plugin hook.

The installed `medtasks-lm-eval.pth` imports this module at interpreter start. It only arms an
import hook (one string comparison per import); nothing happens unless `lm_eval.tasks.manager`
is imported. Then TaskManager is wrapped so that the folders declared under the `lm_eval.tasks`
entry-point group (proposed upstream, lm-eval PR #4015) are scanned after the built-in tasks and
before any user `include_path` (precedence: built-ins < plugins < --include_path).
Once an lm-eval release discovers that entry-point group itself, this steps aside.

The same hook registers our lm-eval model backends (`hf-prefix`, medtasks/prefix_lm.py) when
`lm_eval.models` is imported (lm-eval imports it before its first model lookup): each name of the
`lm_eval.models` entry-point group goes into lm-eval's model registry as a lazy "module:object"
placeholder, so nothing heavy is imported until that model is asked for.
"""
from __future__ import annotations

import importlib.machinery
import sys

TARGET = "lm_eval.tasks.manager"
ENTRY_POINT_GROUP = "lm_eval.tasks"
MODELS_TARGET = "lm_eval.models"
MODELS_ENTRY_POINT_GROUP = "lm_eval.models"


def entry_point_folders() -> list[str]:
    """Folders of the packages declared under the `lm_eval.tasks` entry-point group, then the tasks
    generated from the user's spec files ($MEDEVAL_SPEC_PATH), when there are any."""
    import importlib.util
    from importlib.metadata import entry_points

    folders = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = importlib.util.find_spec(ep.value)
        if spec and spec.submodule_search_locations:
            folders.extend(str(p) for p in spec.submodule_search_locations)
    from medtasks.tasks.generate import user_task_folder

    user = user_task_folder()
    return sorted(dict.fromkeys(folders)) + ([str(user)] if user is not None else [])


def lm_eval_has_plugin_support(manager_module) -> bool:
    """True when this lm-eval reads the `lm_eval.tasks` entry-point group itself."""
    from pathlib import Path

    folder = Path(getattr(manager_module, "__file__", "") or ".").parent
    for name in ("manager.py", "_index.py"):
        try:
            text = (folder / name).read_text(encoding="utf-8")
        except OSError:
            continue
        if "entry_points" in text and any(q + ENTRY_POINT_GROUP + q in text for q in "\"'"):
            return True
    return False


def patch_task_manager(manager_module) -> None:
    import functools
    import inspect

    cls = manager_module.TaskManager
    if getattr(cls.__init__, "_medtasks_patched", False) or lm_eval_has_plugin_support(manager_module):
        return
    original_init = cls.__init__
    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        user = bound.arguments.get("include_path")
        user_paths = [] if user is None else list(user) if isinstance(user, (list, tuple)) else [user]
        plugins = [p for p in entry_point_folders() if p not in map(str, user_paths)]
        if plugins:
            bound.arguments["include_path"] = plugins + user_paths
        original_init(*bound.args, **bound.kwargs)

    __init__._medtasks_patched = True
    cls.__init__ = __init__


def entry_point_models() -> dict[str, str]:
    """name -> "module:object" for the `lm_eval.models` entry-point group (ours: setup.cfg)."""
    from importlib.metadata import entry_points

    return {ep.name: f"{ep.module}:{ep.attr}" for ep in entry_points(group=MODELS_ENTRY_POINT_GROUP)}


def register_models(models_module) -> None:
    """Add entry-point models to lm-eval's registry as lazy placeholders; never replace a name."""
    from lm_eval.api.registry import model_registry

    for name, target in entry_point_models().items():
        if name not in model_registry:
            model_registry.register(name, target=target)


class _PatchingLoader:  # a loader by protocol; importing importlib.abc would cost every start-up
    def __init__(self, wrapped, patch=patch_task_manager):
        self.wrapped = wrapped
        self.patch = patch

    def create_module(self, spec):
        return self.wrapped.create_module(spec)

    def exec_module(self, module):
        self.wrapped.exec_module(module)
        self.patch(module)


class _ManagerFinder:  # a meta path finder by protocol
    def find_spec(self, name, path, target=None):
        patch = PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


PATCHES = {TARGET: patch_task_manager, MODELS_TARGET: register_models}


def install() -> None:
    for name, patch in PATCHES.items():
        if name in sys.modules:  # imported before us (unusual): patch in place
            patch(sys.modules[name])
    if not any(isinstance(f, _ManagerFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ManagerFinder())


install()
