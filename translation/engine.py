"""Translate items (question, options, context) with a backend, through the cache, on worker threads.

Each item is cut into segments (or sent whole to item-level backends), identical segments are
translated once across all items, cached segments are never requested again, and the rest go to
`backend.workers` threads, each with its own client. Every finished batch is committed to the cache
before anything else happens, which is what makes a killed run resumable.

A server that cannot be reached is not retried text by text: MAX_CONNECTION_FAILURES failed
connections in a row (no answer in between, across all workers) stop the run with ServiceUnreachable.
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from translation.backends.base import Backend
from translation.cache import Cache
from translation.net import (ConnectionFailed, PermanentError, RateLimiter, ServiceUnreachable, call_with_retries,
                             redact)
from translation.segment import join, needs_translation, segment


@dataclass
class Job:
    item: dict  # {"question": str, "options": [str], "context": str | None}
    source: str
    target: str


@dataclass
class Outcome:
    item: dict | None  # the translated item, None when any part failed
    errors: list[str]
    created: float  # when the newest of its translations was made (cache time)
    from_cache: bool  # every part was already in the cache when the run started


@dataclass
class Stats:
    items: int = 0
    texts: int = 0  # texts to translate before de-duplication
    unique: int = 0  # after
    cache_hits: int = 0
    translated: int = 0  # newly translated this run
    failed: int = 0
    calls: int = 0  # client calls, retries included
    retries: int = 0
    copied: int = 0  # segments without letters, copied as they are
    seconds: float = 0.0

    @property
    def saved_by_dedup(self) -> int:
        return self.texts - self.unique


@dataclass
class _Plan:
    fields: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # (field, segments)


def _plan(item: dict, backend: Backend) -> _Plan:
    if backend.item_level:
        return _Plan([("item", [(json.dumps(item, ensure_ascii=False, sort_keys=True), "")])])
    fields = [("question", item["question"])] + [(f"option{i}", t) for i, t in enumerate(item["options"])]
    if item.get("context") is not None:
        fields.append(("context", item["context"]))
    return _Plan([(name, segment(text, backend.max_chars)) for name, text in fields])


def _assemble(item: dict, plan: _Plan, done: dict[str, str], backend: Backend) -> dict:
    if backend.item_level:
        return json.loads(done[plan.fields[0][1][0][0]])
    parts = {name: join([done.get(text, text) for text, _ in segs], segs) for name, segs in plan.fields}
    return {"question": parts["question"], "options": [parts[f"option{i}"] for i in range(len(item["options"]))],
            "context": parts.get("context")}


MAX_CONNECTION_FAILURES = 8


class Engine:
    def __init__(self, backend: Backend, cache: Cache, progress: bool = True, desc: str = "translate"):
        self.backend, self.cache, self.progress, self.desc = backend, cache, progress, desc
        cache.upgrade_versions(backend.name, backend.upgrade_version)
        self.limiter = RateLimiter(backend.rate)
        self._local = threading.local()
        self._failed_in_a_row = 0
        self._stop = threading.Event()  # set when the run must end: workers stop waiting out backoffs
        self._error: Exception = ServiceUnreachable("interrupted")

    def _client(self, source: str, target: str):
        clients = self._local.__dict__.setdefault("clients", {})
        if (source, target) not in clients:
            clients[(source, target)] = self.backend.new_client(source, target)
        return clients[(source, target)]

    def _unreachable(self, err: Exception) -> ServiceUnreachable:
        where = f" at {self.backend.url}" if getattr(self.backend, "url", None) else ""
        return ServiceUnreachable(
            f"cannot reach the {self.backend.name} service{where}: {MAX_CONNECTION_FAILURES} connections in a row "
            f"failed (last: {redact(str(err), self.backend.secrets)}); check --url and that the server is "
            "running (translations made so far are cached)")

    def _call(self, source: str, target: str, batch: list[str], stats: Stats, lock: threading.Lock) -> list:
        def attempt():
            if self._stop.is_set():
                raise self._error
            self.limiter.wait()
            with lock:
                stats.calls += 1
            try:
                results = self._client(source, target)(batch)
            except ConnectionFailed as err:
                with lock:
                    self._failed_in_a_row += 1
                    if self._failed_in_a_row >= MAX_CONNECTION_FAILURES and not self._stop.is_set():
                        self._error = self._unreachable(err)
                        self._stop.set()
                    if self._stop.is_set():
                        raise self._error from None
                raise
            with lock:
                self._failed_in_a_row = 0
            return results

        def retried(_err):
            with lock:
                stats.retries += 1

        try:
            results = call_with_retries(attempt, retries=self.backend.retries, on_retry=retried,
                                        sleep=lambda seconds: self._stop.wait(seconds))
        except PermanentError as err:
            results = [err] * len(batch)
        good = [(text, out) for text, out in zip(batch, results) if isinstance(out, str)]
        if good:
            versions = self.backend.version(source, target)
            self.cache.put_many(self.backend.name, versions, source, target, good)
        return results

    def run(self, jobs: list[Job]) -> tuple[list[Outcome], Stats]:
        from tqdm.auto import tqdm

        started = time.time()
        stats, lock = Stats(items=len(jobs)), threading.Lock()
        self._stop.clear()
        self._failed_in_a_row = 0
        plans = [_plan(job.item, self.backend) for job in jobs]
        # per language pair: each text needing translation -> the jobs waiting for it
        waiting: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for index, (job, plan) in enumerate(zip(jobs, plans)):
            for _, segs in plan.fields:
                for text, _ in segs:
                    if self.backend.item_level or needs_translation(text):
                        stats.texts += 1
                        waiting[(job.source, job.target)][text].append(index)
                    else:
                        stats.copied += 1
        done: dict[tuple[str, str], dict[str, str]] = {}
        errors: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        created = [0.0] * len(jobs)
        remaining = [0] * len(jobs)
        batches = []
        for pair, texts in waiting.items():
            stats.unique += len(texts)
            version = self.backend.version(*pair)
            hits = self.cache.get_many(self.backend.name, version, *pair, list(texts))
            stats.cache_hits += len(hits)
            done[pair] = {text: out for text, (out, _) in hits.items()}
            for text, (_, when) in hits.items():
                for index in texts[text]:
                    created[index] = max(created[index], when)
            misses = [text for text in texts if text not in hits]
            for text in misses:
                for index in set(texts[text]):
                    remaining[index] += 1
            size = max(1, self.backend.batch_size)
            batches += [(pair, misses[i:i + size]) for i in range(0, len(misses), size)]

        bar = tqdm(total=len(jobs), desc=self.desc, unit="item", disable=not self.progress, dynamic_ncols=True)
        from_cache = [n == 0 for n in remaining]
        bar.update(sum(from_cache))
        with ThreadPoolExecutor(max_workers=max(1, self.backend.workers)) as pool:
            pending = {pool.submit(self._call, *pair, batch, stats, lock): (pair, batch) for pair, batch in batches}
            try:
                for future in as_completed(pending):  # waiters installed once: O(n), not O(n^2)
                    pair, batch = pending[future]
                    now = time.time()
                    for text, out in zip(batch, future.result()):
                        if isinstance(out, str):
                            done[pair][text] = out
                            stats.translated += 1
                        else:
                            errors[pair][text] = redact(str(out), self.backend.secrets)
                            stats.failed += 1
                        for index in set(waiting[pair][text]):
                            created[index] = now
                            remaining[index] -= 1
                            bar.update(remaining[index] == 0)
                    bar.set_postfix(cached=stats.cache_hits, new=stats.translated, failed=stats.failed,
                                    calls=stats.calls, refresh=False)
            except BaseException:
                self._stop.set()  # workers waiting out a backoff give up at once
                for future in pending:
                    future.cancel()
                raise
            finally:
                bar.close()

        outcomes = []
        for index, (job, plan) in enumerate(zip(jobs, plans)):
            pair = (job.source, job.target)
            failed = [f"{name}: {errors[pair][text]}" for name, segs in plan.fields for text, _ in segs
                      if text in errors[pair]]
            item = None if failed else _assemble(job.item, plan, done.get(pair, {}), self.backend)
            outcomes.append(Outcome(item, failed, created[index] or time.time(), from_cache[index]))
        stats.seconds = time.time() - started
        return outcomes, stats
