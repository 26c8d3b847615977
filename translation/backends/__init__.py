"""The one registry of translation backends. Each entry is imported only when it is chosen."""
from __future__ import annotations

import importlib
import inspect
import math

from medtasks.common import UsageError
from translation.backends.base import Backend

# name -> (module, class, fixed constructor arguments)
BACKENDS: dict[str, tuple[str, str, dict]] = {
    "google": ("translation.backends.web", "WebBackend", {"service": "google"}),
    "deepl": ("translation.backends.web", "WebBackend", {"service": "deepl"}),
    "microsoft": ("translation.backends.web", "WebBackend", {"service": "microsoft"}),
    "mymemory": ("translation.backends.web", "WebBackend", {"service": "mymemory"}),
    "libre": ("translation.backends.web", "WebBackend", {"service": "libre"}),
    "seq2seq": ("translation.backends.seq2seq", "Seq2SeqBackend", {}),
    "openai-chat": ("translation.backends.chat", "ChatBackend", {}),
}
DEFAULT_BACKEND = "google"


# The options every backend shares and their smallest sensible values: counts are integers with a
# floor, seconds and rates are numbers above zero. They are checked here, once, for every backend.
INTEGER_FLOORS = {"workers": 1, "retries": 0, "max_chars": 1, "batch_size": 1}
POSITIVE = ("timeout", "rate")


def flag(option: str) -> str:
    """The command-line flag of a backend option (max_chars -> --max-chars)."""
    return "--" + option.replace("_", "-")


def check_options(options: dict) -> None:
    for name, value in options.items():
        if name in INTEGER_FLOORS and (not isinstance(value, int) or value < INTEGER_FLOORS[name]):
            raise UsageError(f"{flag(name)} must be a whole number of at least {INTEGER_FLOORS[name]}, got {value}")
        if name in POSITIVE and not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
            raise UsageError(f"{flag(name)} must be a number above 0, got {value}")


def get_backend(name: str, **options) -> Backend:
    """Build backend `name`; options set to None are left at the backend's default. A bad name or
    option raises UsageError naming it (before any model is loaded or any request is sent)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown translation backend {name!r}; valid: {', '.join(BACKENDS)}")
    options = {k: v for k, v in options.items() if v is not None}
    check_options(options)
    module, cls_name, fixed = BACKENDS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    accepted = set(inspect.signature(cls).parameters) - set(fixed)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise UsageError(f"backend {name!r} does not take {', '.join(map(flag, unknown))}; "
                         f"it takes: {', '.join(map(flag, sorted(accepted)))}")
    return cls(**fixed, **options)
