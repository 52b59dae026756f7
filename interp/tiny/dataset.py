"""A seeded generator of multiple-choice questions in the paper's chain-of-thought layout.

Each example is the paper's fixed instruction (the prompt range), a question with lettered
options, ``Analysis:`` with short step-by-step reasoning, and ``Response:`` with the letter.
Two families, told apart in the results, both answerable by look-up from the context (what
small models learn first, and what attention heads visibly do):

- ``stem``: variable bindings, "Let x = 7, y = 3 and z = 5. What is the value of y?"
- ``social``: who has what, "Ann has the red cup and Bob has the blue hat. Who has the blue hat?"

With 2, 3 and 4 options, the correct letter cycling so that answers are balanced. The held-out
split is a hash of the question text: no training example can equal a held-out one.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Iterator

from interp.benchmarks.prompts import format_prompt, letters, question_block

FAMILIES = ("stem", "social")
VARIABLES = list("abcdfghkmnpqrstuvwxyz")
NAMES = ["Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lea", "Max", "Ned",
         "Oli", "Pam", "Ray", "Sue", "Tom", "Uma", "Val", "Wes", "Zoe"]
COLOURS = ["red", "blue", "green", "brown", "pink", "black", "white", "gold"]
THINGS = ["cup", "hat", "book", "ball", "coat", "pen", "box", "key", "lamp", "sock"]
HELD_OUT_SHARE = 10  # one question text in ten is held out


@dataclass(frozen=True)
class Question:
    family: str
    question: str
    options: tuple[str, ...]
    answer: str  # the correct letter
    analysis: str

    @property
    def prompt(self) -> str:
        """What the model is given: instruction, question, options, ``\\n Analysis:``."""
        return format_prompt(self.question, self.options)

    @property
    def short_prompt(self) -> str:
        """The same without the instruction: question, options, ``\n Analysis:``."""
        return question_block(self.question, self.options) + "\n Analysis:"

    @property
    def completion(self) -> str:
        """What it should write: the reasoning, then ``Response:`` and the letter."""
        return f" {self.analysis}\nResponse: {self.answer}"

    @property
    def held_out(self) -> bool:
        return is_held_out(self.question, self.options)


def is_held_out(question: str, options: tuple[str, ...]) -> bool:
    digest = hashlib.sha256((question + "\n" + "\n".join(options)).encode()).digest()
    return digest[0] % HELD_OUT_SHARE == 0


def _stem(rng: random.Random, n_options: int, answer_index: int) -> Question:
    n_vars = rng.randint(max(2, n_options - 1), 4)
    names = rng.sample(VARIABLES, n_vars)
    values = rng.sample(range(10, 100), n_vars)
    asked = rng.randrange(n_vars)
    bindings = ", ".join(f"{v} = {n}" for v, n in zip(names[:-1], values[:-1])) + f" and {names[-1]} = {values[-1]}"
    question = f"Let {bindings}. What is the value of {names[asked]}?"
    # Distractors are the other variables' values first, so reading the wrong binding is penalised.
    others = [n for i, n in enumerate(values) if i != asked]
    others += [n for n in rng.sample(range(10, 100), 8) if n not in values]
    options = [str(n) for n in others[: n_options - 1]]
    options.insert(answer_index, str(values[asked]))
    letter = letters(n_options)[answer_index]
    analysis = f"We look for {names[asked]}. {names[asked]} = {values[asked]}. {values[asked]} is option {letter}."
    return Question("stem", question, tuple(options), letter, analysis)


def _social(rng: random.Random, n_options: int, answer_index: int) -> Question:
    n_people = rng.randint(max(2, n_options - 1), 3)
    people = rng.sample(NAMES, n_people)
    items = [f"{c} {t}" for c, t in zip(rng.sample(COLOURS, n_people), rng.sample(THINGS, n_people))]
    asked = rng.randrange(n_people)
    facts = ", ".join(f"{p} has the {i}" for p, i in zip(people[:-1], items[:-1])) + f" and {people[-1]} has the {items[-1]}"
    question = f"{facts}. Who has the {items[asked]}?"
    others = [p for i, p in enumerate(people) if i != asked] + [p for p in rng.sample(NAMES, 8) if p not in people]
    options = others[: n_options - 1]
    options.insert(answer_index, people[asked])
    letter = letters(n_options)[answer_index]
    analysis = f"We look for the {items[asked]}. {people[asked]} has the {items[asked]}. {people[asked]} is option {letter}."
    return Question("social", question, tuple(options), letter, analysis)


MAKERS = {"stem": _stem, "social": _social}


def questions(split: str, seed: int, families: tuple[str, ...] = FAMILIES) -> Iterator[Question]:
    """An endless, seeded stream of questions of one split ("train" or "held_out").

    Families alternate, the option count cycles 2, 3, 4, and the correct position cycles within
    each option count, so families, option counts and letters are balanced.
    """
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    unknown = set(families) - set(MAKERS)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {list(MAKERS)}")
    rng = random.Random(f"{seed}-{split}")
    counter = 0
    while True:
        family = families[counter % len(families)]
        n_options = 2 + (counter // len(families)) % 3
        answer_index = (counter // (len(families) * 3)) % n_options
        question = MAKERS[family](rng, n_options, answer_index)
        if question.held_out == (split == "held_out"):
            counter += 1
            yield question


def take(split: str, seed: int, n: int, families: tuple[str, ...] = FAMILIES) -> list[Question]:
    stream = questions(split, seed, families)
    return [next(stream) for _ in range(n)]


def held_out_items(n_per_family: int, seed: int = 0) -> list["Item"]:
    """Held-out questions as benchmark items (subject and category = family)."""
    from interp.benchmarks.data import Item

    items = []
    for family in FAMILIES:
        for i, q in enumerate(take("held_out", seed, n_per_family, (family,))):
            items.append(Item(f"tiny/{family}/{i}", "tiny", family, family, q.question, q.options, q.answer))
    return items
