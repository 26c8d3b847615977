"""The naming grammar, built AND parsed here only:

    task   := <benchmark>_<language>            medqa_zh, mmlu_anatomy_fr, head_qa_es
    group  := medeval                           BioMistral's suite in its eight languages
            | medeval_<language>                the suite's tasks of one language (BioMistral's average)
            | medeval_truthfulqa                TruthfulQA's medical categories, every language
            | medeval_native                    every native-language exam, in its own language
            | medeval_native_<language>         the native exams of one language
    tag    := medeval_<benchmark>               one benchmark in every language it exists in
"""
from __future__ import annotations

PREFIX = "medeval"
SUITE_GROUP = PREFIX
TRUTHFULQA_GROUP = f"{PREFIX}_truthfulqa"
NATIVE_GROUP = f"{PREFIX}_native"


def task_name(benchmark: str, language: str) -> str:
    return f"{benchmark}_{language}"


def language_group(language: str) -> str:
    return f"{PREFIX}_{language}"


def native_group(language: str) -> str:
    return f"{NATIVE_GROUP}_{language}"


def benchmark_tag(benchmark: str) -> str:
    return f"{PREFIX}_{benchmark}"


def parse_task_name(name: str, benchmarks, languages) -> tuple[str, str] | None:
    """(benchmark, language) of a task name, given the known keys; None if it is not one of ours.
    Language codes never contain "_" (the spec validates them), so the last "_" separates them."""
    stem, sep, language = name.rpartition("_")
    if sep and stem in benchmarks and language in languages:
        return stem, language
    return None


def reserved_names(languages) -> set[str]:
    """Group names no benchmark tag may take."""
    return ({SUITE_GROUP, TRUTHFULQA_GROUP, NATIVE_GROUP} | {language_group(l) for l in languages}
            | {native_group(l) for l in languages})
