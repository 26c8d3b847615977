"""An OpenAI-compatible chat endpoint (a vLLM server, or any /v1/chat/completions) translating a whole
item at once: the question, its options and its context travel together as one JSON object, so the
model sees the options next to their stem. Letters and the answer key are never in that object.
"""
from __future__ import annotations

import json
import os
import re

from medtasks.common import UsageError, sha256_bytes
from medtasks.spec import get_language
from translation.backends.base import Backend, Client
from translation.net import (
    ConnectionFailed,
    PermanentError,
    RetryableError,
    check_url,
    connection_reason,
    redact,
)

PROMPT = (
    "You translate medical exam questions from {source} to {target}. The user sends a JSON object. "
    "Answer with the same JSON object, every string value translated into {target}: keep the keys, keep "
    "the number and the order of the options, keep every number, unit, dose and lab value, and keep drug "
    "and gene names. Answer with the JSON object only."
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
# Before the cache keyed on the model: "<model> prompt:<id> http://host:8000/v1/chat/completions".
_OLD_VERSION = re.compile(r"(.+ prompt:[0-9a-f]{8}) \S+/chat/completions")


def parse_item(answer: str, sent: dict) -> dict:
    """The model's JSON, checked to have the shape of what was sent; RetryableError when it does not."""
    try:
        item = json.loads(_FENCE.sub("", answer.strip()))
    except json.JSONDecodeError as err:
        raise RetryableError(f"the model did not answer with JSON ({err.msg})") from None
    if not isinstance(item, dict) or set(item) != set(sent):
        raise RetryableError(f"the model answered with keys {sorted(item) if isinstance(item, dict) else item!r}, "
                             f"expected {sorted(sent)}")
    options = item.get("options")
    if not isinstance(options, list) or len(options) != len(sent["options"]) or \
            not all(isinstance(v, str) for v in [item["question"], *options]):
        raise RetryableError("the model changed the options' number or types")
    if (sent.get("context") is None) != (item.get("context") is None):
        raise RetryableError("the model dropped or invented the context")
    return item


class ChatBackend(Backend):
    name = "openai-chat"
    item_level = True

    def __init__(self, url: str | None = None, model: str | None = None, workers: int = 4, timeout: float = 120.0, rate: float | None = None,
                 retries: int = 5, key_env: str = "OPENAI_API_KEY", max_tokens: int = 4096):
        missing = [f for f, value in (("--url", url), ("--model", model)) if not value]
        if missing:
            raise UsageError(f"--backend openai-chat needs {' and '.join(missing)}: --url of an OpenAI-compatible "
                             "endpoint (e.g. http://localhost:8000/v1) and --model, the name it serves")
        self.url = check_url(url).rstrip("/") + "/chat/completions"
        self.model = model
        self.workers, self.timeout, self.rate, self.retries = workers, timeout, rate, retries
        self.max_tokens = max_tokens
        self.max_chars = 10**9  # whole items; the server enforces its own context length
        self.key = os.environ.get(key_env)  # optional: a local vLLM server needs none
        self.secrets = (self.key,) if self.key else ()

    def version(self, source: str, target: str) -> str:
        prompt_id = sha256_bytes(PROMPT.encode())[:8]  # a prompt change invalidates the cache
        return f"{self.model} prompt:{prompt_id}"  # not the URL: any server of this model will do

    def upgrade_version(self, old: str) -> str | None:
        match = _OLD_VERSION.fullmatch(old)
        return match.group(1) if match else None

    def new_client(self, source: str, target: str) -> Client:
        import requests

        session = requests.Session()
        if self.key:
            session.headers["Authorization"] = f"Bearer {self.key}"
        system = PROMPT.format(source=get_language(source).name, target=get_language(target).name)

        def one(text: str) -> str:
            sent = json.loads(text)
            body = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                    "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}]}
            try:
                response = session.post(self.url, json=body, timeout=self.timeout)
            except (requests.ConnectionError, requests.ConnectTimeout) as err:
                raise ConnectionFailed(redact(f"connection failed: {connection_reason(str(err))}", self.secrets)) from None
            except requests.Timeout:
                raise RetryableError(f"no answer within {self.timeout:g}s") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryableError(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise PermanentError(redact(f"HTTP {response.status_code}: {response.text[:200]}", self.secrets))
            try:
                choice = response.json()["choices"][0]
                answer = choice["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise RetryableError("unreadable answer from the chat endpoint") from None
            if choice.get("finish_reason") == "length":
                raise PermanentError(f"the answer was cut at max_tokens={self.max_tokens}")
            return json.dumps(parse_item(answer, sent), ensure_ascii=False, sort_keys=True)

        def client(batch: list[str]) -> list[str | PermanentError]:
            out = []
            for text in batch:
                try:
                    out.append(one(text))
                except PermanentError as err:
                    out.append(err)
            return out

        return client
