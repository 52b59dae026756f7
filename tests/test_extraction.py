"""Answer extraction: the labelled set of LLaMA-style responses in all three modes, the paper's
cascade pinned as it is, and the phenomena the final mode reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp.accuracy import MODES, extract_answer

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "extraction_cases.jsonl").read_text().splitlines()]
CAPITALS = ("Paris", "London", "Rome", "Berlin")


def test_the_labelled_set_covers_two_three_and_four_options_and_unanswered_responses():
    assert len(CASES) >= 60
    assert {len(c["options"]) for c in CASES} == {2, 3, 4}
    assert sum(c["label"] is None for c in CASES) >= 10
    for c in CASES:
        assert c["label"] is None or c["label"] in tuple("ABCD"[: len(c["options"])])


def test_the_final_mode_reads_at_least_95_percent_of_the_labelled_set(capsys):
    scores = {mode: sum(extract_answer(c["response"], c["options"], mode) == c["label"] for c in CASES) / len(CASES)
              for mode in MODES}
    with capsys.disabled():
        print("\nlabelled set, %d responses: " % len(CASES) + ", ".join(f"{m} {100 * s:.1f}%" for m, s in scores.items()))
    misread = [(c["style"], extract_answer(c["response"], c["options"])) for c in CASES
               if extract_answer(c["response"], c["options"]) != c["label"]]
    assert scores["final"] >= 0.95, misread
    # The paper's cascade always guesses a letter and scans from the start: it misreads many.
    assert scores["paper"] < scores["final"]


# (response, options, paper, strict): the released cascade's readings as they are, wrong ones included.
PAPER = [
    ("The correct answer is (B) because London is the capital.", CAPITALS, "B", None),
    ("Analysis: Paris is in France. Rome is in Italy.\nResponse: B", CAPITALS, "A", "B"),  # first letter it meets
    ("I think the capital of England is London.", CAPITALS, "B", None),
    ("Let's consider each option. Option C is wrong. Therefore, the answer is D.", CAPITALS, "D", None),
    ("It could be A or C, but I would choose C.", CAPITALS, "C", None),
    ("The answer is not A; C is correct.", CAPITALS, "C", None),
    ("D. Berlin", CAPITALS, "D", None),
    ("Analysis: each option is examined.\nResponse: (D)", CAPITALS, "D", "D"),
    ("Response: B. To tie a shoe you loop the laces.", ("Use glue.", "Loop the laces."), "B", "B"),
    ("I believe it is Berlinn", CAPITALS, "D", None),
    ("I am not sure what to say about this.", CAPITALS, "A", None),  # a guess: the fuzzy fallback never abstains
    ("Response: A\n\nQuestion: next one?\nResponse: C", CAPITALS, "A", "C"),  # strict takes the last Response:
    ("", CAPITALS, None, None),
]


@pytest.mark.parametrize("response, options, paper, strict", PAPER)
def test_paper_and_strict_modes_as_they_are(response, options, paper, strict):
    assert extract_answer(response, options, "paper") == paper
    assert extract_answer(response, options, "strict") == strict


# Phenomena, each in a form the labelled set does not hold verbatim.
FINAL = [
    ("Analysis: Paris is in France. Rome is in Italy.\nResponse: B", CAPITALS, "B"),  # the answer section first
    ("Response: Option (D) Berlin.", CAPITALS, "D"),
    ("Response: London, of course.", CAPITALS, "B"),  # option text alone
    ("Response: The fourth option.", CAPITALS, "D"),  # ordinal
    ("Response: I'd rule out A and D; C is not it either. So: B.", CAPITALS, "B"),
    ("Response: C is incorrect and so are A and B.", CAPITALS, "D"),  # every option but one eliminated
    ("Response: not D", ("yes", "no", "maybe", "never"), None),  # one of four eliminated: no answer
    ("Response: My pick is C. On reflection, my final answer is A.", CAPITALS, "A"),  # the last commitment
    ("Response: Berlinn", CAPITALS, "D"),  # misspelt: fuzzy, in the answer section only
    ("I am not sure what to say about this.", CAPITALS, None),
    ("Response: It is impossible to determine the answer.", CAPITALS, None),
    ("Response: A and D are both defensible.", CAPITALS, None),  # two left open
    ("Response: F", CAPITALS, None),  # outside the options
    ("response: (b)", CAPITALS, "B"),  # case
    ("Response: None of the above", ("1", "2", "None of the above"), "C"),
    ("Response: none of the above", ("1", "2", "3"), None),
]


@pytest.mark.parametrize("response, options, final", FINAL)
def test_the_final_mode_reads_the_commitment(response, options, final):
    assert extract_answer(response, options) == final


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="final, paper, strict"):
        extract_answer("B", CAPITALS, "flexible")
