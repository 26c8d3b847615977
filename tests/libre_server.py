"""A LibreTranslate-compatible HTTP server on 127.0.0.1 for tests and the benchmark, with fault injection.

It "translates" deterministically and reversibly, so round trips are exact and every check has
something real to look at: in Latin-script targets words of 5+ letters are reversed; in other
scripts their letters are moved into the target's Unicode block. Short words (units, "of") stay.
Also answers DeepL's /v2/translate and an OpenAI-compatible /v1/chat/completions (same transform).

Faults: `server.faults` is a queue consumed one per request ("429", "500", "503", "400", "slow",
"garbage", "empty", "warning", "drop", or one of TRANSFORMS, which damage the translation of an
otherwise good answer: "truncate" to 20% of its characters, "stub" to 2 letters, "echo" the English
back, "dropdigit" the first digit); `server.text_faults[substring]` is a queue for requests whose
text contains `substring`; `server.latency` delays every answer.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from medtasks.spec import LANGUAGES

BLOCKS = {"ru": 0x0430, "ar": 0x0628, "zh": 0x4E00}  # test-only: where fake "translations" live
_LONG_WORD = re.compile(r"[A-Za-z]{5,}")
WARNING = "MYMEMORY WARNING: YOU USED ALL AVAILABLE FREE TRANSLATIONS FOR TODAY."
TRANSFORMS = {
    "truncate": lambda out, text: out[: max(1, len(out) // 5)],
    "stub": lambda out, text: out[:2],
    "echo": lambda out, text: text,
    "dropdigit": lambda out, text: re.sub(r"\d", "", out, count=1),
}


def fake_translate(text: str, source: str, target: str) -> str:
    if target == "en" and source in BLOCKS:
        base = BLOCKS[source]
        return "".join(chr(ord(ch) - base + 97) if base <= ord(ch) < base + 26 else ch for ch in text)
    if target in BLOCKS:
        base = BLOCKS[target]
        return _LONG_WORD.sub(lambda m: "".join(chr(base + ord(c) - 97) for c in m.group().lower()), text)
    return _LONG_WORD.sub(lambda m: m.group()[::-1], text)


class FakeLibre:
    def __init__(self, latency: float = 0.0, slow_s: float = 3.0):
        self.latency, self.slow_s = latency, slow_s
        self.faults: list[str] = []
        self.text_faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, text) of every request
        self.headers_seen: list[dict] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_fault(self, text: str) -> str | None:
        with self.lock:
            for needle, queue in self.text_faults.items():
                if needle in text and queue:
                    return queue.pop(0)
            return self.faults.pop(0) if self.faults else None

    def texts(self, path: str = "/translate") -> list[str]:
        with self.lock:
            return [text for p, text in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    app: FakeLibre
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status: int, body: str | bytes, ctype: str = "application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if urlparse(self.path).path == "/languages":
            return self._reply(200, json.dumps([{"code": c, "name": l.name} for c, l in LANGUAGES.items()]))
        self._reply(404, "{}")

    def do_POST(self):
        url = urlparse(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/v1/chat/completions":
            return self._chat(json.loads(raw))
        form = {k: v[0] for k, v in {**parse_qs(url.query), **parse_qs(raw.decode())}.items()}
        text = form.get("q") or form.get("text") or ""
        with self.app.lock:
            self.app.requests.append((url.path, text))
            self.app.headers_seen.append(dict(self.headers))
        fault = self._fault(text)
        if fault is True:
            return
        out = fake_translate(text, form.get("source") or form.get("source_lang", "en").lower(),
                             form.get("target") or form.get("target_lang", "").lower())
        if fault in TRANSFORMS:
            out = TRANSFORMS[fault](out, text)
        if url.path == "/v2/translate":
            if not (self.headers.get("Authorization") or "").startswith("DeepL-Auth-Key "):
                return self._reply(403, "{}")
            return self._reply(200, json.dumps({"translations": [{"text": out}]}))
        self._reply(200, json.dumps({"translatedText": out}, ensure_ascii=False))

    def _fault(self, text: str) -> bool | str:
        """Apply the next injected fault; True when it replaced the answer, the name of a transform
        to apply to the translation, else False."""
        if self.app.latency:
            time.sleep(self.app.latency)
        fault = self.app.next_fault(text)
        if fault is None:
            return False
        if fault in TRANSFORMS:
            return fault
        if fault == "slow":
            time.sleep(self.app.slow_s)
            return False
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        answers = {"429": (429, '{"error": "slow down"}'), "500": (500, "oops"), "503": (503, "busy"),
                   "400": (400, '{"error": "bad request"}'),
                   "garbage": (200, "<html>gateway says hello</html>"), "empty": (200, "{}"),
                   "warning": (200, json.dumps({"translatedText": WARNING}))}
        self._reply(*answers[fault])
        return True

    def _chat(self, body: dict):
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        with self.app.lock:
            self.app.requests.append(("/v1/chat/completions", user))
        if self._fault(user) is True:
            return
        names = {lang.name: code for code, lang in LANGUAGES.items()}
        source, target = re.search(r"from (\w+) to (\w+)", system).groups()
        item = json.loads(user)
        tr = lambda t: fake_translate(t, names[source], names[target]) if isinstance(t, str) else t  # noqa: E731
        answer = {"question": tr(item["question"]), "options": [tr(o) for o in item["options"]],
                  "context": tr(item.get("context"))}
        content = "```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```"
        self._reply(200, json.dumps({"model": body["model"], "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}))
