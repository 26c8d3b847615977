"""Network discipline shared by the web backends: error kinds, backoff with jitter, rate limit, retries."""
from __future__ import annotations

import random
import re
import threading
import time
from typing import Callable, Iterable, TypeVar
from urllib.parse import urlparse

from medtasks.common import UsageError

T = TypeVar("T")


class RetryableError(Exception):
    """Worth another try: HTTP 429 or 5xx, a timeout, a dropped connection, an unreadable answer."""


class ConnectionFailed(RetryableError):
    """No connection at all (refused, unknown host, connect timeout): many in a row mean the server is down."""


class ServiceUnreachable(UsageError):
    """Connections failed too many times in a row: the run stops instead of retrying every text."""


def connection_reason(message: str) -> str:
    """The cause inside a `requests` connection error ('Connection refused', 'Name or service not
    known'), not its three lines of pool and adapter wrapping."""
    found = re.search(r"\[Errno -?\d+\] ([^'\"()\]]+)", message)
    return found.group(1).strip() if found else message[:200]


def check_url(url: str, flag: str = "--url") -> str:
    """An http(s) URL with a host, or a UsageError naming the flag (ftp://, file:// or 'localhost:5000'
    would otherwise fail on every request)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"{flag} {url!r} is not an http:// or https:// address with a host "
                         "(e.g. http://localhost:5000/)")
    return url


class PermanentError(Exception):
    """Retrying will not help (bad key, unsupported language, text too long, retries exhausted)."""


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random) -> float:
    """'Full jitter' exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rand() * min(cap, base * (2 ** attempt))


def call_with_retries(fn: Callable[[], T], retries: int = 5, base: float = 0.5, cap: float = 30.0,
                      sleep: Callable[[float], None] = time.sleep,
                      on_retry: Callable[[Exception], None] | None = None) -> T:
    """Call fn; on RetryableError wait and try again, up to `retries` more times, then PermanentError."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except RetryableError as err:
            if attempt == retries:
                raise PermanentError(f"gave up after {retries + 1} attempts: {err}") from err
            if on_retry:
                on_retry(err)
            sleep(backoff_delay(attempt, base, cap))
    raise AssertionError("unreachable")


class RateLimiter:
    """At most `rate` calls per second across all threads (None: unlimited)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def redact(message: str, secrets: Iterable[str | None]) -> str:
    """Remove API keys from an error message before it is shown or written (some clients echo them)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
    return message
