"""The built-in benchmarks of the spec: BioMistral's ten-task suite, TruthfulQA's medical categories
and the native-language exams. Users add more with spec files (medtasks/spec/user.py).

A benchmark's key is the stem of its task names (`<key>_<language>`), and one key always means one
dataset: `medqa_zh` is BioMistral's translation of MedQA-USMLE, `medqa_mainland_zh` the Chinese exam.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medtasks.spec.regimes import SUITE_REGIME

KINDS = ("suite", "extra", "native")  # suite: BioMistral's ten (groups medeval_<lang>); extra: own group;
# native: exams written in their language (groups medeval_native, medeval_native_<lang>)


@dataclass(frozen=True)
class Benchmark:
    key: str  # task-name stem: <key>_<language>
    title: str  # as in BioMistral's headline table
    short: str  # column header of leaderboards
    family: str  # the importer family that reads its original release (medtasks.sources)
    letters: str  # option letters, in order
    test_size: int  # test questions in its source language, as imported (checked on the real data)
    kind: str = "suite"
    regime: str = SUITE_REGIME  # medtasks.spec.regimes
    languages: tuple[str, ...] = ()  # the languages it exists in; () = every language of the spec
    native_languages: tuple[str, ...] = ("en",)  # languages its questions were written in (others: translations)
    answers: str = "single"  # "multi": several options may be correct (Hamming score, exact match)
    # Variable option count: a question has letters[:n] with min_options <= n <= len(letters); 0 = always all.
    min_options: int = 0
    fewshot_from: tuple[str, ...] = ()  # english regime: whose English examples, in order of preference
    dataset: str = ""  # what data the key means (shown by `medeval tasks`, recorded in the store)
    fewshot_note: str = ""  # where offline few-shot examples come from (documentation)
    corpus_name: str = ""  # `corpus_name` in BioMistral/BioInstructQA
    mmlu_subject: str = ""  # MMLU file stem, for the mmlu family
    subset: str = ""  # a named subset of the family's questions ("single", "multi"), chosen by the importer
    data: Any = field(default=None, compare=False)  # user benchmarks: medtasks.spec.user.DataSource
    builtin: bool = True

    @property
    def chance(self) -> float | None:
        """Expected accuracy of a uniform guess, where it is a constant of the benchmark; None where it
        depends on the questions evaluated (variable option counts, multi-answer): compute it from them."""
        if self.min_options or self.answers != "single":
            return None
        return 1.0 / len(self.letters)

    @property
    def shots_from(self) -> tuple[str, ...]:
        return self.fewshot_from or (self.key,)

    def allowed_letters(self, n: int) -> bool:
        """Whether a question with n options fits this benchmark."""
        if self.min_options:
            return self.min_options <= n <= len(self.letters)
        return n == len(self.letters)


def _mmlu(subject: str, title: str, short: str, size: int) -> Benchmark:
    return Benchmark(
        key=f"mmlu_{subject}", title=f"MMLU {title}", short=short, family="mmlu", letters="ABCD", test_size=size,
        dataset=f"MMLU {subject} (Hendrycks et al.), test", fewshot_note=f"MMLU dev split of {subject} (5 questions)",
        corpus_name=f"MMLU_{subject}", mmlu_subject=subject,
    )


_POOL_NOTE = "{name} train split (hub); offline: {name} questions of fewshot_pool"

SUITE = (
    _mmlu("clinical_knowledge", "clinical knowledge", "CK", 265),
    _mmlu("medical_genetics", "medical genetics", "MedGen", 100),
    _mmlu("anatomy", "anatomy", "Anat", 135),
    _mmlu("professional_medicine", "professional medicine", "ProMed", 272),
    _mmlu("college_biology", "college biology", "ColBio", 144),
    _mmlu("college_medicine", "college medicine", "ColMed", 173),
    Benchmark("medqa", "MedQA (4 options)", "MedQA", "medqa", "ABCD", 1273,
              dataset="MedQA-USMLE (jind11 release), 4 options, test", corpus_name="MedQA",
              fewshot_note=_POOL_NOTE.format(name="MedQA")),
    # Offline there is no 5-option pool: MedQA's 4-option examples stand in (documented in the README).
    Benchmark("medqa5", "MedQA (5 options)", "MedQA5", "medqa", "ABCDE", 1273, fewshot_from=("medqa5", "medqa"),
              dataset="MedQA-USMLE (jind11 release), 5 options, test", corpus_name="MedQA-5_options",
              fewshot_note=_POOL_NOTE.format(name="MedQA") + " (4 options)"),
    Benchmark("pubmedqa", "PubMedQA", "PubMedQA", "pubmedqa", "ABC", 500,
              dataset="PubMedQA PQA-L, official test ids", corpus_name="PubMedQA",
              fewshot_note="the 500 non-test PQA-L questions of ori_pqal.json"),
    Benchmark("medmcqa", "MedMCQA", "MedMCQA", "medmcqa", "ABCD", 4183,
              dataset="MedMCQA official dev split", corpus_name="MedMCQA",
              fewshot_note=_POOL_NOTE.format(name="MedMCQA")),
)

PUBMEDQA_LABELS = ("yes", "no", "maybe")  # shown as options A, B, C

# TruthfulQA's medical categories: the best answer among the incorrect ones, zero-shot; 13 letters fit
# the release's largest row (12 incorrect answers), see sources/truthfulqa.py.
EXTRA = (
    Benchmark("truthfulqa_med", "TruthfulQA (medical categories)", "TruthfulQA", "truthfulqa", "ABCDEFGHIJKLM", 90,
              kind="extra", regime="zero_shot", min_options=2,
              dataset="TruthfulQA CSV release, Health, Nutrition and Psychology categories"),
)

# Exams written in their own language, beside the translated suite (never in its averages).
NATIVE = (
    Benchmark("head_qa", "HEAD-QA", "HEAD-QA", "head_qa", "ABCDE", 2675, kind="native", regime="native_3shot",
              languages=("es", "en"), native_languages=("es",), min_options=4,
              dataset="HEAD-QA (Spanish healthcare specialisation exams 2016-2017; en: the authors' translation), "
                      "test, questions needing an image excluded",
              fewshot_note="HEAD-QA train split (2013-2014 exams) in the task's language"),
    Benchmark("frenchmedmcqa", "FrenchMedMCQA", "FrenchMedMCQA", "frenchmedmcqa", "ABCDE", 622, kind="native",
              regime="native_3shot", languages=("fr",), native_languages=("fr",), answers="multi",
              dataset="FrenchMedMCQA (French pharmacy exams), test, 1 to 5 correct options",
              fewshot_note="FrenchMedMCQA train split"),
    Benchmark("frenchmedmcqa_single", "FrenchMedMCQA (single answer)", "FrenchMedMCQA-1", "frenchmedmcqa",
              "ABCDE", 321, kind="native", regime="native_3shot", languages=("fr",), native_languages=("fr",),
              subset="single", dataset="FrenchMedMCQA (French pharmacy exams), test, single-answer questions",
              fewshot_note="single-answer questions of the FrenchMedMCQA train split"),
    Benchmark("medqa_mainland", "MedQA Mainland (4 options)", "MedQA-CN", "medqa_mainland", "ABCD", 3426,
              kind="native", languages=("zh",), native_languages=("zh",), fewshot_from=("medqa",),
              dataset="MedQA Mainland China (Chinese medical licensing exam), 4 options, test",
              fewshot_note="no train split here: BioMistral's regime, MedQA's English examples (as medqa_zh)"),
    Benchmark("medqa5_mainland", "MedQA Mainland (5 options)", "MedQA5-CN", "medqa_mainland", "ABCDE", 3426,
              kind="native", languages=("zh",), native_languages=("zh",), fewshot_from=("medqa5", "medqa"),
              dataset="MedQA Mainland China (Chinese medical licensing exam), 5 options, test",
              fewshot_note="no train split here: BioMistral's regime, MedQA-5's English examples (as medqa5_zh)"),
    Benchmark("cmexam", "CMExam (single answer)", "CMExam", "cmexam", "ABCDE", 6607, kind="native",
              languages=("zh",), native_languages=("zh",), min_options=4, fewshot_from=("medqa5", "medqa"),
              subset="single", dataset="CMExam (Chinese national medical licensing exam), test, single-answer",
              fewshot_note="no train split here: BioMistral's regime, MedQA-5's English examples"),
    # 203: the release's 204 multi-answer questions less one whose answer names an option it lacks (line 5332)
    Benchmark("cmexam_multi", "CMExam (multiple answers)", "CMExam-M", "cmexam", "ABCDE", 203, kind="native",
              regime="zero_shot", languages=("zh",), native_languages=("zh",), min_options=4, answers="multi",
              subset="multi", dataset="CMExam (Chinese national medical licensing exam), test, multi-answer"),
)

BUILTIN_BENCHMARKS: dict[str, Benchmark] = {b.key: b for b in (*SUITE, *EXTRA, *NATIVE)}
