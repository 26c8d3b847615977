"""The spec in force: the built-in tables plus the user's spec files ($MEDEVAL_SPEC_PATH), validated
together once per process (per value of the variable)."""
from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medtasks.spec import names
from medtasks.spec.benchmarks import BUILTIN_BENCHMARKS, Benchmark
from medtasks.spec.languages import BUILTIN_LANGUAGES, Language
from medtasks.spec.regimes import REGIMES
from medtasks.spec.user import SPEC_PATH_ENV, SpecError, read_spec_file, spec_files


@dataclass(frozen=True, eq=False)  # hashed by identity: one per spec path
class Registry:
    languages: dict[str, Language]
    benchmarks: dict[str, Benchmark]
    spec_files: tuple[Path, ...]

    def by_kind(self, kind: str) -> dict[str, Benchmark]:
        return {key: b for key, b in self.benchmarks.items() if b.kind == kind}

    def languages_of(self, benchmark: Benchmark) -> tuple[str, ...]:
        return benchmark.languages or tuple(self.languages)


def _merge(files: list[Path]) -> Registry:
    languages, benchmarks = dict(BUILTIN_LANGUAGES), dict(BUILTIN_BENCHMARKS)
    origin: dict[str, Path] = {}
    for path in files:
        new_languages, new_benchmarks = read_spec_file(path)
        for lang in new_languages:
            if lang.code in languages:
                first = origin.get(f"lang:{lang.code}")
                raise SpecError(path, f"language {lang.code!r}", "already defined "
                                + (f"in {first}" if first else "by the package"))
            languages[lang.code] = lang
            origin[f"lang:{lang.code}"] = path
        for bench in new_benchmarks:
            if bench.key in benchmarks:
                first = origin.get(bench.key)
                raise SpecError(path, f"benchmark {bench.key!r}", "already defined "
                                + (f"in {first}" if first else "by the package") + "; a name means one dataset")
            benchmarks[bench.key] = bench
            origin[bench.key] = path
    reserved = names.reserved_names(languages)
    for key, bench in benchmarks.items():
        if bench.builtin:
            continue
        path = origin[key]
        if names.benchmark_tag(key) in reserved:
            raise SpecError(path, f"benchmark {key!r}", f"its tag {names.benchmark_tag(key)} is a group name")
        for code in (*bench.languages, *bench.native_languages):
            if code not in languages:
                raise SpecError(path, f"benchmark {key!r}.languages",
                                f"unknown language {code!r}; valid: {', '.join(languages)} (add it under `languages`)")
        for other in bench.fewshot_from:
            if other not in benchmarks:
                raise SpecError(path, f"benchmark {key!r}.fewshot_from", f"unknown benchmark {other!r}")
    return Registry(languages, benchmarks, tuple(files))


@functools.lru_cache(maxsize=4)
def _load(spec_path: str) -> Registry:
    return _merge(spec_files(spec_path))


def current() -> Registry:
    """The spec for the current $MEDEVAL_SPEC_PATH (read once per value; `reload()` after editing files)."""
    return _load(os.environ.get(SPEC_PATH_ENV, ""))


def reload() -> Registry:
    _load.cache_clear()
    return current()


class _View(Mapping):
    """A read-only dict of the current spec, so `for key in BENCHMARKS` sees the user's spec files too."""

    def __init__(self, pick, what: str):
        self._pick, self._what = pick, what

    def _dict(self) -> dict:
        return self._pick(current())

    def __getitem__(self, key):
        return self._dict()[key]

    def __iter__(self):
        return iter(self._dict())

    def __len__(self):
        return len(self._dict())

    def __contains__(self, key):
        return key in self._dict()

    def __repr__(self):
        return f"<{self._what}: {', '.join(self._dict())}>"


LANGUAGES: Mapping[str, Language] = _View(lambda r: r.languages, "languages")
BENCHMARKS: Mapping[str, Benchmark] = _View(functools.lru_cache(maxsize=4)(lambda r: r.by_kind("suite")),
                                            "suite benchmarks")
EXTRA_BENCHMARKS: Mapping[str, Benchmark] = _View(functools.lru_cache(maxsize=4)(lambda r: r.by_kind("extra")),
                                                  "extra benchmarks")
NATIVE_BENCHMARKS: Mapping[str, Benchmark] = _View(functools.lru_cache(maxsize=4)(lambda r: r.by_kind("native")),
                                                   "native benchmarks")
ALL_BENCHMARKS: Mapping[str, Benchmark] = _View(lambda r: r.benchmarks, "benchmarks")


def get_benchmark(key: str) -> Benchmark:
    """Any benchmark; an unknown key fails listing the valid ones."""
    benchmarks = current().benchmarks
    if key not in benchmarks:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(benchmarks)}")
    return benchmarks[key]


def get_language(code: str) -> Language:
    languages = current().languages
    if code not in languages:
        raise KeyError(f"unknown language {code!r}; valid: {', '.join(languages)} "
                       f"(add one with a spec file: {SPEC_PATH_ENV})")
    return languages[code]


def suite_languages() -> tuple[str, ...]:
    """BioMistral's eight: the members of the `medeval` group (user languages get medeval_<code> only)."""
    return tuple(BUILTIN_LANGUAGES)


def task_pairs(kinds=("suite", "extra", "native")) -> list[tuple[str, str]]:
    """Every (benchmark, language) the spec defines, in table order."""
    registry = current()
    return [(key, code) for key, bench in registry.benchmarks.items() if bench.kind in kinds
            for code in registry.languages_of(bench)]


def task_names(kinds=("suite", "extra", "native")) -> list[str]:
    return [names.task_name(b, l) for b, l in task_pairs(kinds)]


def parse_task(name: str) -> tuple[Benchmark, str]:
    """(benchmark, language) of one of our task names; KeyError naming it otherwise."""
    registry = current()
    parsed = names.parse_task_name(name, registry.benchmarks, registry.languages)
    if parsed is None or parsed[1] not in registry.languages_of(registry.benchmarks[parsed[0]]):
        raise KeyError(f"{name!r} is not a task of this spec (grammar: <benchmark>_<language>; "
                       f"`medeval tasks` lists them)")
    return registry.benchmarks[parsed[0]], parsed[1]


def regime_of(benchmark: Benchmark):
    return REGIMES[benchmark.regime]
