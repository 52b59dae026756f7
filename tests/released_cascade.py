"""The answer extraction of the paper's released evaluation scripts, written again here from their
rules (the C-Eval/CMMLU family of ``extract_choice``), sharing no code with ``interp``: what the
``paper`` mode must read, response for response.

1. Every option's text, longest first, with a final period dropped, is replaced in the response by
   its letter, ignoring case.
2. Four patterns, the first that matches wins: "choose X" / "answer (is|:|be) X" / "choice ... X"
   (not negated within 20 characters); "X is correct/right" (not negated); the response opening
   with "X." "X," "X:" or "X" alone; the first letter standing alone.
3. Otherwise ``thefuzz.process.extractOne`` of the replaced response against the option texts (its
   default scorer and processor): always a letter.

Written for any number of options (the scripts write ``A|B|C|D`` and ``[^ABCD]`` for four).
"""

from __future__ import annotations

import re
import string

from thefuzz import process


def released_reading(response: str, options: list[str]) -> str:
    letters = string.ascii_uppercase[: len(options)]
    text = response
    for letter, option in sorted(zip(letters, options), key=lambda pair: -len(pair[1])):
        if option.rstrip("."):  # an empty pattern would put the letter between every character
            text = re.sub(re.escape(option.rstrip(".")), letter, text, flags=re.IGNORECASE)
    one = "(" + "|".join(letters) + ")"
    other = "[^" + letters + "]"
    rules = (
        r"(?:(?:[Cc]hoose)|(?:(?:[Aa]nswer|[Cc]hoice)(?!" + other + r"{0,20}?(?:n't|not))" + other
        + r"{0,10}?\b(?:|is|:|be))\b)" + other + r"{0,20}?\b" + one + r"\b",
        r"\b" + one + r"\b(?!" + other + r"{0,8}?(?:n't|not)" + other + r"{0,5}?(?:correct|right))" + other
        + r"{0,10}?\b(?:correct|right)\b",
        r"^" + one + r"(?:\.|,|:|$)",
        r"(?<![a-zA-Z])" + one + r"(?![a-zA-Z=])",
    )
    for rule in rules:
        found = re.search(rule, text)
        if found:
            return found.group(1)
    return letters[options.index(process.extractOne(text, options)[0])]
