"""Moved to medtasks.spec; this name stays until every import is updated (it still means the suite and
the extra benchmarks only, as before the native exams existed)."""
from medtasks.spec import BENCHMARKS, EXTRA_BENCHMARKS, PUBMEDQA_LABELS, Benchmark  # noqa: F401
from medtasks.spec.registry import _View

ALL_BENCHMARKS = _View(lambda r: {**r.by_kind("suite"), **r.by_kind("extra")}, "suite and extra benchmarks")


def get_benchmark(key: str) -> Benchmark:
    if key not in ALL_BENCHMARKS:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(ALL_BENCHMARKS)}")
    return ALL_BENCHMARKS[key]
