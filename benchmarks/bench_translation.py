"""Translation throughput and cost figures against the loopback LibreTranslate server.

    .venv/bin/python benchmarks/bench_translation.py [--latency 0.05] [--workers 8] [--items 40]

Prints, measured side by side in one run:
  1. throughput with N workers over 1 worker (ratio), fixed per-request server latency;
  2. requests made by a second run over a finished one (must be 0);
  3. segments saved by de-duplication on the real MedQA 4 + 5 options (count; needs ../shared/data);
  4. requests made by a run at another address of the same server (localhost vs 127.0.0.1; must be 0);
  5. seconds and calls until a run against a dead port (http://127.0.0.1:1/, 30 items) stops.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from libre_server import FakeLibre  # noqa: E402

from medtasks.sources import import_folder  # noqa: E402
from medtasks.spec import SOURCE_LANGUAGE  # noqa: E402
from medtasks.store import read_records, write_records  # noqa: E402
from translation.backends import get_backend  # noqa: E402
from translation.backends.base import Backend  # noqa: E402
from translation.cache import Cache  # noqa: E402
from translation.engine import Engine, Job  # noqa: E402
from translation.net import ServiceUnreachable  # noqa: E402
from translation.pipeline import record_item, translate_store  # noqa: E402


class _CountOnly(Backend):
    """Plans segments like a web backend but never calls out (used to count de-duplication)."""
    name, max_chars = "count-only", 4999

    def version(self, source, target):
        return "0"

    def new_client(self, source, target):
        return lambda batch: list(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the server waits per request")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--items", type=int, default=40, help="MedQA questions translated per timing")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import_folder(args.data, tmp / "full", benchmarks=["medqa", "medqa5"])
        four, five = (read_records(tmp / "full", b, SOURCE_LANGUAGE, "test") for b in ("medqa", "medqa5"))
        write_records(tmp / "small", four[: args.items])
        with FakeLibre(latency=args.latency) as server:
            timings = {}
            for workers in (1, args.workers):
                backend = get_backend("libre", url=server.url, workers=workers, timeout=10)
                cache = Cache(tmp / f"cache{workers}.sqlite")
                start = time.perf_counter()
                translate_store(tmp / "small", ["medqa"], ["test"], ["fr"], backend, cache, progress=False)
                timings[workers] = time.perf_counter() - start
            before = len(server.requests)
            translate_store(tmp / "small", ["medqa"], ["test"], ["fr"], backend, cache, progress=False)
            second_run_requests = len(server.requests) - before
            other_address = get_backend("libre", url=server.url.replace("127.0.0.1", "localhost"), timeout=10)
            translate_store(tmp / "small", ["medqa"], ["test"], ["fr"], other_address, cache, progress=False)
            other_address_requests = len(server.requests) - before - second_run_requests
        dead_seconds, dead_calls, dead_message = _dead_port(tmp, four[:30])
        jobs = [Job(record_item(r), SOURCE_LANGUAGE, "fr") for r in four + five]
        _, stats = Engine(_CountOnly(), Cache(tmp / "count.sqlite"), progress=False).run(jobs)

    print(f"server latency {args.latency * 1000:.0f} ms/request, {args.items} MedQA questions -> fr")
    print(f"1 worker: {timings[1]:.2f} s; {args.workers} workers: {timings[args.workers]:.2f} s; "
          f"throughput ratio {timings[1] / timings[args.workers]:.2f}x")
    print(f"second run over a finished one: {second_run_requests} requests")
    print(f"MedQA 4+5 options ({len(four)}+{len(five)} questions): {stats.texts} segments, {stats.unique} unique, "
          f"{stats.saved_by_dedup} saved by de-duplication ({stats.saved_by_dedup / stats.texts:.0%})")
    print(f"run at another address of the same server (localhost): {other_address_requests} requests")
    print(f"dead port, 30 items: stopped after {dead_seconds:.2f} s and {dead_calls} calls: {dead_message}")


def _dead_port(tmp: Path, records) -> tuple[float, int, str]:
    """Translate `records` against a port nobody listens on, counting client calls until the run stops."""
    write_records(tmp / "dead", records)
    backend = get_backend("libre", url="http://127.0.0.1:1/", timeout=10)
    calls, new_client = [0], backend.new_client

    def counting(source, target):
        client = new_client(source, target)

        def call(batch):
            calls[0] += 1
            return client(batch)
        return call

    backend.new_client = counting
    start = time.perf_counter()
    try:
        translate_store(tmp / "dead", ["medqa"], ["test"], ["fr"], backend, tmp / "dead.sqlite", progress=False)
        message = "did not stop"
    except ServiceUnreachable as err:
        message = str(err)
    return time.perf_counter() - start, calls[0], message


if __name__ == "__main__":
    main()
