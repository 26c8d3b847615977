"""Test instrumentation of lm-eval processes: on with PYTHONPATH=<this folder> and MEDEVAL_PROBE=<file>.

Every process appends JSON lines to that file (O_APPEND, one write per line, so lines of several
processes never interleave):

  {"event": "requests", "pid", "rank", "world_size", "keys"}  one loglikelihood call of the model, with
        lm-eval's request-cache key (hash_args) of every request that reached the model, i.e. was not
        answered from `--use_cache`: what the model itself was asked, in the model's own ranks
  {"event": "forward", "pid", "rank", "rows", "tokens"}  one forward pass of the causal LM

MEDEVAL_PROBE_DELAY=<seconds> sleeps in each forward pass: a slow model, so a run can be killed part-way.
MEDEVAL_PROBE_DEVICES=1 makes torch report one CUDA device per process of a distributed launch
(WORLD_SIZE): lm-eval 0.4.13 turns data parallelism on only when torch counts more than one GPU
(lm_eval/models/huggingface.py, `elif gpus > 1`), so this runs its multi-GPU path on CPU processes.

Modules are patched when they are first imported (a meta-path finder), so a process that never
imports lm-eval pays nothing.
"""
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time


def _record(**event) -> None:
    line = json.dumps({"pid": os.getpid(), **event}) + "\n"
    fd = os.open(os.environ["MEDEVAL_PROBE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _patch_lm(module) -> None:
    original = module.TemplateLM.loglikelihood

    def loglikelihood(self, requests, *args, **kwargs):
        _record(event="requests", rank=self.rank, world_size=self.world_size,
                keys=[module.hash_args("loglikelihood", r.args) for r in requests])
        return original(self, requests, *args, **kwargs)

    module.TemplateLM.loglikelihood = loglikelihood


def _patch_model(module) -> None:
    import torch

    call = torch.nn.Module.__call__
    delay = float(os.environ.get("MEDEVAL_PROBE_DELAY", "0"))

    def __call__(self, *args, **kwargs):
        if type(self).__name__.endswith("ForCausalLM"):
            ids = kwargs.get("input_ids", args[0] if args else None)
            _record(event="forward", rank=os.environ.get("RANK", "0"), rows=int(ids.shape[0]), tokens=int(ids.numel()))
            time.sleep(delay)
        return call(self, *args, **kwargs)

    module.PreTrainedModel.__call__ = __call__


def _patch_devices(_module) -> None:
    import torch

    torch.cuda.device_count = lambda: int(os.environ.get("WORLD_SIZE", "1"))


PATCHES = {"lm_eval.api.model": _patch_lm, "transformers.modeling_utils": _patch_model}
if os.environ.get("MEDEVAL_PROBE_DEVICES") == "1":
    PATCHES["lm_eval.models.huggingface"] = _patch_devices


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = PATCHES.get(name)
        spec = importlib.machinery.PathFinder.find_spec(name, path) if patch else None
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if os.environ.get("MEDEVAL_PROBE"):
    sys.meta_path.insert(0, _PatchOnImport())
