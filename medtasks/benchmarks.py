"""The one table of benchmarks: names, option letters, expected sizes and where their data lives."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    key: str  # task-name stem: <key>_<language>
    title: str  # as in BioMistral's headline table
    short: str  # column header of that table
    family: str  # medqa | medmcqa | pubmedqa | mmlu (one importer / template family each)
    letters: str  # option letters, in order
    corpus_name: str  # `corpus_name` in BioMistral/BioInstructQA
    test_size: int  # English test questions (BioMistral's table)
    fewshot_source: str  # where offline few-shot examples come from (documented in the README)
    mmlu_subject: str = ""  # MMLU file stem, for the mmlu family

    @property
    def chance(self) -> float:
        return 1.0 / len(self.letters)


def _mmlu(subject: str, title: str, short: str, size: int) -> Benchmark:
    return Benchmark(
        key=f"mmlu_{subject}",
        title=f"MMLU {title}",
        short=short,
        family="mmlu",
        letters="ABCD",
        corpus_name=f"MMLU_{subject}",
        test_size=size,
        fewshot_source=f"MMLU dev split of {subject} (5 questions)",
        mmlu_subject=subject,
    )


BENCHMARKS: dict[str, Benchmark] = {
    b.key: b
    for b in (
        _mmlu("clinical_knowledge", "clinical knowledge", "CK", 265),
        _mmlu("medical_genetics", "medical genetics", "MedGen", 100),
        _mmlu("anatomy", "anatomy", "Anat", 135),
        _mmlu("professional_medicine", "professional medicine", "ProMed", 272),
        _mmlu("college_biology", "college biology", "ColBio", 144),
        _mmlu("college_medicine", "college medicine", "ColMed", 173),
        Benchmark("medqa", "MedQA (4 options)", "MedQA", "medqa", "ABCD", "MedQA", 1273,
                  "MedQA train split (hub); offline: MedQA questions of fewshot_pool"),
        Benchmark("medqa5", "MedQA (5 options)", "MedQA5", "medqa", "ABCDE", "MedQA-5_options", 1273,
                  "MedQA train split (hub); offline: MedQA questions of fewshot_pool"),
        Benchmark("pubmedqa", "PubMedQA", "PubMedQA", "pubmedqa", "ABC", "PubMedQA", 500,
                  "the 500 non-test PQA-L questions of ori_pqal.json"),
        Benchmark("medmcqa", "MedMCQA", "MedMCQA", "medmcqa", "ABCD", "MedMCQA", 4183,
                  "MedMCQA train split (hub); offline: MedMCQA questions of fewshot_pool"),
    )
}

PUBMEDQA_LABELS = ("yes", "no", "maybe")  # shown as options A, B, C


def get_benchmark(key: str) -> Benchmark:
    try:
        return BENCHMARKS[key]
    except KeyError:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(BENCHMARKS)}") from None
