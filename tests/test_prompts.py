"""BioMistral's template, character for character (BIOMISTRAL.md, 'Prompt')."""
import pytest

from medtasks import prompts

OPTIONS = {"A": "Aspirin", "B": "Heparin"}


@pytest.mark.parametrize("context, expected", [
    (None, "**Question:** Which drug? \n (A) Aspirin \n (B) Heparin \n **Answer:**("),
    ("", "**Question:** Which drug? \n (A) Aspirin \n (B) Heparin \n **Answer:**("),
    ("An abstract.", "An abstract. \n **Question:** Which drug? \n (A) Aspirin \n (B) Heparin \n **Answer:**("),
])
def test_format_question(context, expected):
    assert prompts.format_question("Which drug?", OPTIONS, context) == expected


def test_example_ends_with_gold_letter_without_parenthesis():
    assert prompts.format_example("Which drug?", OPTIONS, "B").endswith("**Answer:**(B")


def test_build_prompt_joins_instruction_examples_and_target():
    shot = {"question": "Q1?", "options": {"A": "x", "B": "y"}, "answer": "A"}
    target = {"question": "Q2?", "options": {"A": "u", "B": "v"}}
    assert prompts.build_prompt(target, [shot, shot]) == (
        "The following are multiple choice questions (with answers) about medical knowledge. \n "
        "**Question:** Q1? \n (A) x \n (B) y \n **Answer:**(A \n "
        "**Question:** Q1? \n (A) x \n (B) y \n **Answer:**(A \n "
        "**Question:** Q2? \n (A) u \n (B) v \n **Answer:**("
    )


def test_lm_eval_doc_helpers_match_the_builder():
    doc = {"question": "Q?", "context": "", "options": ["a", "b", "c"], "answer": "C"}
    assert prompts.doc_to_text(doc) == prompts.format_question("Q?", {"A": "a", "B": "b", "C": "c"})
    assert prompts.doc_to_choice(doc) == ["A", "B", "C"]
    assert prompts.doc_to_target(doc) == "C"
