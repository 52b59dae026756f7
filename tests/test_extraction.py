"""Answer extraction on responses of the kinds LLaMA-2 chat writes, in both modes."""

from __future__ import annotations

import pytest

from interp.benchmarks.extraction import extract_flexible, extract_strict

CAPITALS = ("Paris", "London", "Rome", "Berlin")

# (response, options, flexible, strict)
TABLE = [
    ("The correct answer is (B) because London is the capital.", CAPITALS, "B", None),
    ("Analysis: Paris is in France. Rome is in Italy.\nResponse: B", CAPITALS, "A", "B"),  # the cascade's first letter
    ("I think the capital of England is London.", CAPITALS, "B", None),  # option text, no letter
    ("Let's consider each option. Option C is wrong. Therefore, the answer is D.", CAPITALS, "D", None),
    ("It could be A or C, but I would choose C.", CAPITALS, "C", None),  # hedged
    ("The answer is not A; C is correct.", CAPITALS, "C", None),  # negation
    ("D. Berlin", CAPITALS, "D", None),  # a leading letter
    ("Analysis: each option is examined.\nResponse: (D)", CAPITALS, "D", "D"),
    ("Response: B. To tie a shoe you loop the laces.", ("Use glue.", "Loop the laces."), "B", "B"),
    ("I believe it is Berlinn", CAPITALS, "D", None),  # misspelt option text: fuzzy matching
    ("", CAPITALS, None, None),  # nothing at all
]


@pytest.mark.parametrize("response, options, flexible, strict", TABLE)
def test_extraction_modes(response, options, flexible, strict):
    assert extract_flexible(response, options) == flexible
    assert extract_strict(response, options) == strict


def test_no_answer_at_all_flexible_still_guesses_as_the_paper_does_strict_does_not():
    response = "I am not sure what to say about this."
    assert extract_flexible(response, CAPITALS) in "ABCD"
    assert extract_strict(response, CAPITALS) is None


def test_option_text_is_replaced_longest_first():
    options = ("a cat", "a cat and a dog")
    assert extract_flexible("Clearly a cat and a dog.", options) == "B"


def test_letters_outside_the_options_are_ignored():
    assert extract_flexible("The answer is C.", ("yes", "no")) in ("A", "B")
    assert extract_strict("Response: C", ("yes", "no")) is None
