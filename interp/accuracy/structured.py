"""A seeded generator of multiple-choice questions in the paper's chain-of-thought layout.

Each example is the paper's fixed instruction (the prompt range), a question with lettered
options, ``Analysis:`` with short step-by-step reasoning, and ``Response:`` with the letter.
Two families, told apart in the results, both answerable by look-up from the context (what
small models learn first, and what attention heads visibly do):

- ``stem``: variable values, "Values: m 51, y 84, z 44. What is z?" (two-digit answers)
- ``social``: who owns what, "Owners: cup Ann, hat Bob. Who owns the hat?" (one-word answers)

With 2, 3 and 4 options, the correct letter cycling so that answers are balanced. The held-out
split is a hash of the question text: no training example can equal a held-out one.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from typing import Iterator, Sequence, TYPE_CHECKING

from interp.accuracy.prompts import format_prompt, letters, question_and_cue

if TYPE_CHECKING:
    from interp.accuracy.data import Item

BENCHMARK = "structured"  # the benchmark these questions make (interp.accuracy.benchmarks), as --benchmark names it
FAMILIES = ("stem", "social")
VARIABLES = list("abcdfghkmnpqrstuvwxyz")
NAMES = ["Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lea", "Max", "Ned",
         "Oli", "Pam", "Ray", "Sue", "Tom", "Uma", "Val", "Wes", "Zoe"]
THINGS = ["cup", "hat", "book", "ball", "coat", "pen", "box", "key", "lamp", "sock"]
NUMBERS = [str(n) for n in range(10, 100)]
WORDS = VARIABLES + NUMBERS + NAMES + THINGS  # what tables hold; the tiny tokenizer keeps each whole
PUNCTUATION = (",", ".", "?", ":")  # never merged into a word ("44," would hide the value "44")
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
        return question_and_cue(self.question, self.options)

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


TABLES = {"stem": ("Values", VARIABLES, NUMBERS), "social": ("Owners", THINGS, NAMES)}  # header, keys, values
ASKING = {"stem": "What is {key}?", "social": "Who owns the {key}?"}


def _table(header: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The table sentence, e.g. "Values: m 51, z 44.": one writer for questions and drills, so
    that what the drills teach applies to the questions."""
    return f"{header}: " + ", ".join(f"{k} {v}" for k, v in pairs) + "."


TRAINING_PAIRS = (2, 4)  # table sizes the models are trained on


def _lookup(rng: random.Random, family: str, n_options: int, answer_index: int,
            pairs: tuple[int, int] = TRAINING_PAIRS) -> Question:
    """A table of ``key value`` pairs, a question about one key, and options that are values.

    Keys precede their values, so the look-up is a copy of what follows the asked key (what
    induction heads do); the analysis then walks the options one by one, "A. 51 vs 44 no. B. 44 vs
    44 yes.", so that choosing the letter is a comparison of neighbouring tokens, not a search.
    """
    header, keys, values = TABLES[family]
    n_pairs = rng.randint(max(pairs[0], n_options - 1), pairs[1])
    asked_keys = rng.sample(keys, n_pairs)
    asked_values = rng.sample(values, n_pairs)
    asked = rng.randrange(n_pairs)
    key, value = asked_keys[asked], asked_values[asked]
    # Distractors are the other pairs' values first, so reading the wrong pair is penalised.
    others = [v for i, v in enumerate(asked_values) if i != asked]
    others += [v for v in rng.sample(values, 8) if v not in asked_values]
    options = others[: n_options - 1]
    options.insert(answer_index, value)
    question = _table(header, list(zip(asked_keys, asked_values))) + " " + ASKING[family].format(key=key)
    letter = letters(n_options)[answer_index]
    steps = " ".join(f"{x}. {o} vs {value} {'yes' if o == value else 'no'}." for x, o in zip(letters(n_options), options))
    return Question(family, question, tuple(options), letter, f"{key} {value}. {steps}")


@dataclass(frozen=True)
class Drill:
    """Look-up practice: a table, then keys one after another, each followed by its value
    ("Values: m 51, z 44. z 44. m 51. z 44."). Many look-ups per row let the induction head that a
    question's single look-up needs form early in training; they are not questions."""

    table: str
    asked: tuple[tuple[str, str], ...]  # (key, value) in the order asked


def drills(seed: int, families: tuple[str, ...] = FAMILIES, n_asked: int = 8) -> Iterator[Drill]:
    """An endless, seeded stream of drills on tables of 2 to 6 pairs, families alternating."""
    rng = random.Random(f"{seed}-drill")
    for counter in itertools.count():
        header, keys, values = TABLES[families[counter % len(families)]]
        n_pairs = rng.randint(2, 6)
        pairs = list(zip(rng.sample(keys, n_pairs), rng.sample(values, n_pairs)))
        yield Drill(_table(header, pairs), tuple(rng.choice(pairs) for _ in range(n_asked)))


def questions(split: str, seed: int, families: tuple[str, ...] = FAMILIES,
              pairs: tuple[int, int] = TRAINING_PAIRS) -> Iterator[Question]:
    """An endless, seeded stream of questions of one split ("train" or "held_out"), on tables of
    ``pairs`` (fewest, most) key-value pairs.

    Families alternate, the option count cycles 2, 3, 4, and the correct position cycles within
    each option count, so families, option counts and letters are balanced.
    """
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    unknown = set(families) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {list(TABLES)}")
    largest = min(len(TABLES[f][1]) for f in families)
    if not 2 <= pairs[0] <= pairs[1] <= largest:
        raise ValueError(f"tables of {pairs[0]} to {pairs[1]} pairs: give 2 <= fewest <= most <= {largest} "
                         f"(the families {list(families)} have {largest} keys at least)")
    rng = random.Random(f"{seed}-{split}")
    counter = 0
    while True:
        family = families[counter % len(families)]
        n_options = 2 + (counter // len(families)) % 3
        answer_index = (counter // (len(families) * 3)) % n_options
        question = _lookup(rng, family, n_options, answer_index, pairs)
        if question.held_out == (split == "held_out"):
            counter += 1
            yield question


def take(split: str, seed: int, n: int, families: tuple[str, ...] = FAMILIES,
         pairs: tuple[int, int] = TRAINING_PAIRS) -> list[Question]:
    stream = questions(split, seed, families, pairs)
    return [next(stream) for _ in range(n)]


def held_out_items(n_per_family: int, seed: int = 0, pairs: tuple[int, int] = TRAINING_PAIRS) -> list[Item]:
    """Held-out questions as benchmark items (subject and category = family), on tables of
    ``pairs`` key-value pairs (longer than the training tables: a harder test)."""
    from interp.accuracy.data import Item

    items = []
    for family in FAMILIES:
        for i, q in enumerate(take("held_out", seed, n_per_family, (family,), pairs)):
            items.append(Item(f"{BENCHMARK}/{family}/{i}", BENCHMARK, family, family, q.question, q.options, q.answer))
    return items
