"""Answer extraction from free-form responses, in three modes (``extract_answer``).

- ``final`` (the default): what the response commits to, read from its answer section first
  (:mod:`interp.accuracy.commitment`); ``None`` for refusals, open answers and text that names
  no option.
- ``paper``: the released code's cascade, kept for fidelity (the paper's numbers were made with
  it): each option's text is replaced by its letter (longest first), then "answer is X" /
  "choose X", "X is correct", a leading letter, the first standalone letter, and last fuzzy
  matching of the replaced response against the option texts (``thefuzz.process.extractOne``'s
  defaults, through ``rapidfuzz``), which always picks a letter.
- ``strict``: only the letter right after the last ``Response:``.
"""

from __future__ import annotations

import re
from typing import Sequence

from rapidfuzz import fuzz, process, utils

from interp.accuracy.benchmarks import BENCHMARKS, OTHER
from interp.accuracy.commitment import answer_section, extract_final
from interp.accuracy.prompts import letters as option_letters

MODES = ("final", "paper", "strict")
STRICT_HEADER = re.compile(r"Response:")  # the paper's header exactly: case and all


def replace_option_text(response: str, options: Sequence[str]) -> str:
    """Replace each option's text (a final period dropped) by its letter, longest option first,
    ignoring case."""
    labelled = sorted(zip(option_letters(len(options)), options), key=lambda item: len(item[1]), reverse=True)
    for letter, text in labelled:
        text = text.rstrip(".")
        if text:  # an empty pattern would put the letter between every character
            response = re.sub(re.escape(text), letter, response, flags=re.IGNORECASE)
    return response


def _cascade(text: str, allowed: str) -> str | None:
    x = f"[{allowed}]"
    not_x = f"[^{allowed}]"
    patterns = [
        rf"(?:(?:[Cc]hoose)|(?:(?:[Aa]nswer|[Cc]hoice)(?!{not_x}{{0,20}}?(?:n't|not)){not_x}{{0,10}}?\b(?:|is|:|be))\b){not_x}{{0,20}}?\b({x})\b",
        rf"\b({x})\b(?!{not_x}{{0,8}}?(?:n't|not){not_x}{{0,5}}?(?:correct|right)){not_x}{{0,10}}?\b(?:correct|right)\b",
        rf"^({x})(?:\.|,|:|$)",
        rf"(?<![a-zA-Z])({x})(?![a-zA-Z=])",
    ]
    for pattern in patterns:
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


def extract_paper(response: str, options: Sequence[str]) -> str | None:
    """The paper's cascade; ``None`` only for an empty response (fuzzy matching always picks one;
    the scripts' own would guess A there)."""
    allowed = option_letters(len(options))
    if not response.strip():
        return None
    replaced = replace_option_text(response, options)
    found = _cascade(replaced, allowed)
    if found:
        return found
    best = process.extractOne(replaced, list(options), scorer=fuzz.WRatio, processor=_fuzzy_form)
    return allowed[best[2]]


_NON_ASCII = {code: None for code in range(128, 256)}


def _fuzzy_form(text: str) -> str:
    """thefuzz's processing for its default scorer: characters 128-255 dropped, then lower case,
    letters and digits only, trimmed."""
    return utils.default_process(text.translate(_NON_ASCII))


def extract_strict(response: str, options: Sequence[str]) -> str | None:
    """The letter right after the last ``Response:`` (optionally in parentheses), else ``None``."""
    section = answer_section(response, STRICT_HEADER)
    found = re.match(rf"\s*\(?([{option_letters(len(options))}])\b", section) if section is not None else None
    return found.group(1) if found else None


EXTRACTORS = {"final": extract_final, "paper": extract_paper, "strict": extract_strict}


def extract_answer(response: str, options: Sequence[str], mode: str = "final", benchmark: str | None = None) -> str | None:
    """The option letter ``response`` answers with under ``mode`` (``final``, ``paper`` or
    ``strict``), or ``None`` when it gives none; ``final`` reads with ``benchmark``'s reader
    (:attr:`interp.accuracy.benchmarks.Benchmark.reader`)."""
    if mode not in EXTRACTORS:
        raise ValueError(f"unknown extraction mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == "final":
        return extract_final(response, options, BENCHMARKS.get(benchmark or "", OTHER).reader)
    return EXTRACTORS[mode](response, options)
