"""deep-translator services (Google, DeepL, Microsoft, MyMemory, LibreTranslate) behind one backend.

deep-translator 1.11.4 has known defects this module works around:
- no request timeout at all: its modules' `requests` is replaced by a stand-in that adds one;
- keys sent in URLs (DeepL's `auth_key`, Libre's `api_key`): the stand-in moves them to a header
  or the request body, so they never appear in a URL or a server log line;
- HTTP status lost in its exceptions: the stand-in remembers it, so 429/5xx are retried and
  other 4xx are not;
- clients mutate their own state per call: one client per worker thread.
"""
from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass

from medtasks.common import UsageError, require
from medtasks.spec import get_language
from translation.backends.base import Backend, Client
from translation.checks import service_warning
from translation.net import (
    ConnectionFailed,
    PermanentError,
    RetryableError,
    check_url,
    connection_reason,
    redact,
)


@dataclass(frozen=True)
class Service:
    identity: str  # what translates: the cache key and the provenance's engine_version
    module: str
    cls: str
    code_field: str  # the languages-table field holding this service's code
    max_chars: int  # the client's own per-call limit
    key_env: str | None  # environment variable holding the key
    key_required: bool
    rate: float | None  # default calls per second (polite to a public service)


SERVICES = {
    "google": Service("Google Translate", "deep_translator.google", "GoogleTranslator", "google_code", 4999, None, False, 5.0),
    "deepl": Service("DeepL API", "deep_translator.deepl", "DeeplTranslator", "code", 5000, "DEEPL_API_KEY", True, 5.0),
    "microsoft": Service("Microsoft Translator", "deep_translator.microsoft", "MicrosoftTranslator", "microsoft_code", 5000,
                         "MICROSOFT_API_KEY", True, 5.0),
    "mymemory": Service("MyMemory", "deep_translator.mymemory", "MyMemoryTranslator", "mymemory_code", 499, None, False, 2.0),
    "libre": Service("LibreTranslate", "deep_translator.libre", "LibreTranslator", "code", 5000, "LIBRE_API_KEY", False, None),
}

# Before the cache keyed on the service: "deep-translator 1.11.4 libre http://127.0.0.1:5000/".
_OLD_VERSION = re.compile(r"deep-translator \S+ \w+(?: \S+)?")
_local = threading.local()  # per thread: the timeout to apply and the last HTTP status seen
_install_lock = threading.Lock()


class _GuardedRequests:
    """Stands in for `requests` inside a deep-translator module (see the module docstring)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def get(self, url, params=None, **kwargs):
        return self._send("GET", url, params, **kwargs)

    def post(self, url, params=None, **kwargs):
        return self._send("POST", url, params, **kwargs)

    def _send(self, method, url, params, **kwargs):
        kwargs["timeout"] = getattr(_local, "timeout", 30.0)
        params = dict(params or {})
        headers = dict(kwargs.pop("headers", None) or {})
        if "auth_key" in params:  # DeepL now rejects the key in the URL: header + form body
            headers["Authorization"] = f"DeepL-Auth-Key {params.pop('auth_key')}"
            method, kwargs["data"], params = "POST", params, {}
        elif method == "POST" and "json" not in kwargs and params:  # Libre: form body, not query
            kwargs["data"], params = params, {}
        response = self._real.request(method, url, params=params or None, headers=headers or None, **kwargs)
        _local.status = response.status_code
        return response


def _load(service: Service):
    module = importlib.import_module(service.module)
    with _install_lock:
        if not isinstance(module.requests, _GuardedRequests):
            module.requests = _GuardedRequests(module.requests)
    return getattr(module, service.cls)


def service_code(service: str, language: str) -> str:
    lang = get_language(language)
    return getattr(lang, SERVICES[service].code_field, None) or lang.code


class WebBackend(Backend):
    def __init__(self, service: str = "google", url: str | None = None, workers: int = 4,
                 timeout: float = 30.0, rate: float | None = None, retries: int = 5, max_chars: int | None = None):
        require("deep_translator", "translation", "web translation")
        if service not in SERVICES:
            raise UsageError(f"unknown service {service!r}; valid: {', '.join(SERVICES)}")
        self.spec = SERVICES[service]
        self.name = service
        self.key = os.environ.get(self.spec.key_env) if self.spec.key_env else None
        if self.spec.key_required and not self.key:
            raise UsageError(f"--backend {service} needs an API key: set the environment variable {self.spec.key_env}")
        if url and service not in ("libre", "deepl", "microsoft"):
            raise UsageError(f"--url: {service} has a fixed address; --url is for libre, deepl or microsoft")
        if service == "libre" and not url:
            raise UsageError("--backend libre needs --url, the address of a LibreTranslate server "
                             "(e.g. --url http://localhost:5000/)")
        self.url = check_url(url).rstrip("/") + "/" if url else None  # deep-translator appends endpoint names
        self.workers, self.timeout, self.retries = workers, timeout, retries
        self.rate = rate if rate is not None else self.spec.rate
        self.max_chars = min(max_chars or self.spec.max_chars, self.spec.max_chars)
        self.secrets = (self.key,) if self.key else ()

    def version(self, source: str, target: str) -> str:
        # The service, not its address nor the client library: every LibreTranslate server shares
        # one key (give a server running other models its own --cache).
        return self.spec.identity

    def upgrade_version(self, old: str) -> str | None:
        return self.spec.identity if _OLD_VERSION.fullmatch(old) else None

    def new_client(self, source: str, target: str) -> Client:
        cls = _load(self.spec)
        kwargs = {"source": service_code(self.name, source), "target": service_code(self.name, target)}
        if self.name == "libre":  # the client insists on a key even for servers that need none
            kwargs.update(api_key=self.key or "unused", custom_url=self.url)
        elif self.key:
            kwargs["api_key"] = self.key
        if self.name == "deepl":
            kwargs["use_free_api"] = self.key.endswith(":fx")  # DeepL's free keys end in ':fx'
        _local.timeout, _local.status = self.timeout, None
        try:
            translator = cls(**kwargs)  # Microsoft's constructor goes online
        except Exception as err:
            raise self._classify(err) from err
        if self.url and self.name != "libre":
            translator._base_url = self.url + ("translate" if self.name == "microsoft" else "")
        return lambda batch: [self._one(translator, text) for text in batch]

    def _one(self, translator, text: str) -> str:
        _local.timeout, _local.status = self.timeout, None
        try:
            out = translator.translate(text)
        except Exception as err:
            error = self._classify(err)
            if isinstance(error, RetryableError):
                raise error from err
            return error
        if not isinstance(out, str) or not out.strip():
            raise RetryableError("empty answer")
        if warning := service_warning(out):
            return PermanentError(f"{self.name} answered with a warning instead of a translation: {warning!r}")
        return out

    def _classify(self, err: Exception) -> Exception:
        import requests
        from deep_translator import exceptions as dx

        status = getattr(_local, "status", None)
        message = redact(f"{type(err).__name__}: {err}", self.secrets)
        if isinstance(err, (requests.ConnectionError, requests.ConnectTimeout)):  # ConnectTimeout is both
            return ConnectionFailed(f"connection failed: {connection_reason(message)}")
        if isinstance(err, requests.Timeout):
            return RetryableError(f"no answer within {self.timeout:g}s")
        if isinstance(err, dx.TooManyRequests) or status == 429:
            return RetryableError("HTTP 429 too many requests")
        if status is not None and status >= 500:
            return RetryableError(f"HTTP {status}")
        if status is not None and 400 <= status < 500:
            return PermanentError(f"HTTP {status}: {message}")
        if isinstance(err, (dx.NotValidLength, dx.NotValidPayload, dx.LanguageNotSupportedException,
                            dx.InvalidSourceOrTargetLanguage, dx.ApiKeyException, dx.AuthorizationException)):
            return PermanentError(message)
        if status is None:  # Microsoft swallows connection errors and then fails on a None response
            return ConnectionFailed(f"no response: {message}")
        return RetryableError(f"unreadable answer (HTTP {status}): {message}")
