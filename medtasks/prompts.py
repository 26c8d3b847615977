"""BioMistral's 3-shot prompt, as pure functions. The tasks, SFT and the tests all build prompts here.

    <instruction> \\n <example 1> \\n <example 2> \\n <example 3> \\n <target>
    example: [<context> \\n ]**Question:** <q> \\n (A) <a> \\n (B) <b> ... \\n **Answer:**(<gold letter>
    target:  the same, ending at **Answer:**(   -- the model's next token is the answer letter.

Multi-answer questions (several correct letters) are scored over every set of letters written as
"A, C)" (doc_to_subset_choices below; the method is in medtasks/metrics.py).
"""
from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence

INSTRUCTION = "The following are multiple choice questions (with answers) about medical knowledge."
SEPARATOR = " \n "
ANSWER_PREFIX = "**Answer:**("
LETTERS = "ABCDEFGHIJKLM"  # 13: TruthfulQA rows have up to 13 options; the suite uses the first 3-5


def format_question(question: str, options: Mapping[str, str], context: str | None = None) -> str:
    """One element of the prompt, without its answer: ends with '**Answer:**('."""
    parts = [context.strip()] if context and context.strip() else []
    parts.append(f"**Question:** {question.strip()}")
    parts.extend(f"({letter}) {text.strip()}" for letter, text in options.items())
    parts.append(ANSWER_PREFIX)
    return SEPARATOR.join(parts)


def format_example(question: str, options: Mapping[str, str], answer: str, context: str | None = None) -> str:
    """A solved example: the question element followed by its gold letter (no closing parenthesis)."""
    return format_question(question, options, context) + answer


def build_prompt(target: Mapping, examples: Sequence[Mapping] = ()) -> str:
    """The full scored prompt for a target item, items being {question, options, answer?, context?}."""
    shots = [format_example(e["question"], e["options"], e["answer"], e.get("context")) for e in examples]
    return SEPARATOR.join([INSTRUCTION, *shots, format_question(target["question"], target["options"], target.get("context"))])


# --- lm-eval glue: docs are flat rows {id, question, context, options: [texts], answer: letter} ---

def doc_options(doc: Mapping) -> dict[str, str]:
    return dict(zip(LETTERS, doc["options"]))


def doc_to_text(doc: Mapping) -> str:
    return format_question(doc["question"], doc_options(doc), doc.get("context"))


def doc_to_target(doc: Mapping) -> str:
    return doc["answer"]


def doc_to_choice(doc: Mapping) -> list[str]:
    return list(LETTERS[: len(doc["options"])])


# --- multi-answer questions (spec answers="multi"; docs' answer is the correct letters, "AC") ---
# The choices are every non-empty subset of the question's letters, by size then in letter order:
# "A)", "B)", ..., "A, B)", "A, C)", ... (31 for 5 options). The ")" closes the prompt's "(": without an
# end mark "A" would be a prefix of "A, C" and could never score below it, so no set of two or more
# letters could ever be the most likely one.
SUBSET_JOIN = ", "
SUBSET_END = ")"


def letter_subsets(n: int) -> list[str]:
    """The non-empty subsets of the first n letters, as concatenated letters, in choice order."""
    return ["".join(combo) for size in range(1, n + 1) for combo in combinations(LETTERS[:n], size)]


def format_subset(letters: str) -> str:
    """How a set of letters is written after '**Answer:**(': "AC" -> "A, C)"."""
    return SUBSET_JOIN.join(letters) + SUBSET_END


def doc_to_subset_choices(doc: Mapping) -> list[str]:
    return [format_subset(subset) for subset in letter_subsets(len(doc["options"]))]


def doc_to_subset_target(doc: Mapping) -> int:
    subsets = letter_subsets(len(doc["options"]))
    if doc["answer"] not in subsets:
        raise ValueError(f"question {doc.get('id')!r}: answer {doc['answer']!r} is not a set of its "
                         f"{len(doc['options'])} option letters in order")
    return subsets.index(doc["answer"])
