"""What every translation backend provides. The pipeline needs nothing else from it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from translation.net import PermanentError

# A client translates a batch: one result per text, a translation or the PermanentError that
# text got. It raises RetryableError when the whole batch should be tried again.
Client = Callable[[list[str]], list["str | PermanentError"]]


class Backend(ABC):
    name: str
    max_chars: int = 4000  # segment length limit (characters)
    batch_size: int = 1  # texts per client call
    workers: int = 1  # concurrent clients (threads); each thread gets its own client
    rate: float | None = None  # calls per second across all workers; None: unlimited
    timeout: float = 30.0  # per call, seconds
    retries: int = 5
    item_level: bool = False  # True: translates a whole item (JSON) per text, not segments
    secrets: tuple[str, ...] = ()  # redacted from every error message

    @abstractmethod
    def version(self, source: str, target: str) -> str:
        """What determines this backend's output for a language pair (the service, the model and its
        prompt, the weights' checksum), never where it is reached (host, port, folder): it is part of
        the cache key, so `localhost` vs `127.0.0.1` or a new port finds the same translations, and of
        each record's provenance."""

    def upgrade_version(self, old: str) -> str | None:
        """The version for a key an older release wrote into the cache (then with the address in it),
        or None when `old` is not such a key. Opening an engine rewrites those keys once."""
        return None

    @abstractmethod
    def new_client(self, source: str, target: str) -> Client:
        """A client for one thread and one language pair."""
