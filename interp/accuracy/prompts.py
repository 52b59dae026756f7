"""The paper's chain-of-thought prompt layout (its eval_chat_*.py), for any number of options."""

from __future__ import annotations

from typing import Iterable, Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # MMLU-Pro has 10 options (A-J)

COT_INSTRUCTION = (
    "For each multiple-choice question, follow this specific response structure: Begin by carefully "
    "analyzing the question and its options, labeled {labeled}. Start your response with the header "
    "'Analysis:', under which you will delve into a detailed examination of each option. Discuss the "
    "logic, relevance, and factual accuracy of each option, considering how they relate to the question. "
    "Evaluate why some options may be incorrect and why others could be correct, based on your "
    "understanding of the topic. Once you have completed this in-depth analysis, proceed to the next "
    "section with the header 'Response:', where you will clearly state your final answer, choosing from "
    "options {choosing}. This structured approach is designed to prioritize a comprehensive analysis "
    "before arriving at a conclusion, thereby enhancing the depth and clarity of your reasoning.\n\n"
)


COT_CUE = "\n Analysis:"  # where a CoT prompt's question block ends and the answer begins


class PromptRange(tuple):
    """A question's prompt range ``(start, stop)`` in tokens of its prompt (what methods with a
    prompt range edit), with ``question``: where its question and options are written (the same
    range where the prompt has no instruction, as in log-likelihood scoring). A tuple everywhere a
    tuple is expected; ``PromptRange((start, stop))`` as copies and ``dataclasses.asdict`` make it."""

    question: tuple[int, int]

    def __new__(cls, start: int | Iterable[int], stop: int | None = None,
                question: tuple[int, int] | None = None) -> "PromptRange":
        pair = tuple(start) if stop is None else (start, stop)  # type: ignore[arg-type]
        self = super().__new__(cls, pair)
        self.question = tuple(question) if question is not None else pair
        return self

    def __getnewargs__(self) -> tuple[int, int, tuple[int, int]]:
        return self[0], self[1], self.question


def letters(n_options: int) -> str:
    if not 2 <= n_options <= len(LETTERS):
        raise ValueError(f"a question needs 2 to {len(LETTERS)} options, got {n_options}")
    return LETTERS[:n_options]


def _listing(items: str, last: str, oxford: bool) -> str:
    if len(items) == 2:
        return f"{items[0]} {last} {items[1]}"
    return ", ".join(items[:-1]) + ("," if oxford else "") + f" {last} {items[-1]}"


def instruction(n_options: int) -> str:
    """The paper's CoT instruction with its option letters ("labeled A, B, and C", "choosing from
    options A, B, or C"). The paper's PIQA script says "A, B, or C" for two options; we don't."""
    opts = letters(n_options)
    return COT_INSTRUCTION.format(labeled=_listing(opts, "and", True), choosing=_listing(opts, "or", True))


def question_block(question: str, options: Sequence[str]) -> str:
    """The question, a blank line, then one ``X. option`` line per option."""
    return question + "\n\n" + "".join(f"{letter}. {text}\n" for letter, text in zip(letters(len(options)), options))


def question_and_cue(question: str, options: Sequence[str]) -> str:
    """A CoT prompt after its instruction: the question block, then ``\\n Analysis:``."""
    return question_block(question, options) + COT_CUE


def format_prompt(question: str, options: Sequence[str], cot: bool = True, instructed: bool = True) -> str:
    """CoT: instruction (unless not ``instructed``), question, options, ``\\n Analysis:``; non-CoT:
    no instruction, ``\\n Answer:``."""
    if cot:
        return (instruction(len(options)) if instructed else "") + question_and_cue(question, options)
    return question_block(question, options) + "\n Answer:"

