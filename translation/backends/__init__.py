"""The one registry of translation backends. Each entry is imported only when it is chosen."""
from __future__ import annotations

import importlib
import inspect

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


def get_backend(name: str, **options) -> Backend:
    """Build backend `name`; options set to None are left at the backend's default."""
    if name not in BACKENDS:
        raise KeyError(f"unknown translation backend {name!r}; valid: {', '.join(BACKENDS)}")
    module, cls_name, fixed = BACKENDS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    options = {k: v for k, v in options.items() if v is not None}
    accepted = set(inspect.signature(cls).parameters) - set(fixed)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"backend {name!r} does not take option(s) {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(accepted))}")
    return cls(**fixed, **options)
