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
    fewshot_source: str  # where offline few-shot examples come from (documented in the README); "" = zero-shot
    mmlu_subject: str = ""  # MMLU file stem, for the mmlu family
    # Variable option count (TruthfulQA): a question has letters[:n] with min_options <= n <= len(letters).
    # 0 = every question has exactly `letters`.
    min_options: int = 0
    chance_level: float = 0.0  # measured chance where the option count varies (mean of 1/n); else 1/len(letters)

    @property
    def chance(self) -> float:
        return self.chance_level or 1.0 / len(self.letters)

    def allowed_letters(self, n: int) -> bool:
        """Whether a question with n options fits this benchmark."""
        if self.min_options:
            return self.min_options <= n <= len(self.letters)
        return n == len(self.letters)


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

# Benchmarks beside the suite: never in BENCHMARKS, so the ten-task groups and averages stay
# BioMistral-comparable. TruthfulQA's medical categories: the best answer among the incorrect ones,
# zero-shot; 13 letters fit the release's largest row (12 incorrect answers), see sources/truthfulqa.py.
EXTRA_BENCHMARKS: dict[str, Benchmark] = {
    "truthfulqa_med": Benchmark(
        "truthfulqa_med", "TruthfulQA (medical categories)", "TruthfulQA", "truthfulqa", "ABCDEFGHIJKLM",
        "", 90, "", min_options=2,
        chance_level=0.2167,  # mean of 1/n over the 90 Health, Nutrition and Psychology questions
    ),
}
ALL_BENCHMARKS: dict[str, Benchmark] = {**BENCHMARKS, **EXTRA_BENCHMARKS}


def get_benchmark(key: str) -> Benchmark:
    """Any benchmark, suite or extra; an unknown key fails listing the valid ones."""
    try:
        return ALL_BENCHMARKS[key]
    except KeyError:
        raise KeyError(f"unknown benchmark {key!r}; valid: {', '.join(ALL_BENCHMARKS)}") from None
