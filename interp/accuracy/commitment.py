"""What a free-form multiple-choice response commits to: the ``final`` extraction mode.

A response is read the way a grader reads it:

1. **Clean**: markdown emphasis, ``\\boxed{X}`` and curly quotes are undone; whatever the model
   wrote after its answer that starts a new exchange (a new ``Question:``, ``[INST]``, a new
   ``Analysis:``) is cut off.
2. **Answer section first**: the text after the last ``Response:`` / ``Answer:`` /
   ``Final answer:`` header. Only when it names no option at all is the whole response read.
3. **Mentions**: every place that names an option: its letter (``B``, ``(B)``, ``B)``,
   ``Option B``, ``b)``; the article "A" is told apart from the letter), its text (exact, longest
   option first; in the answer section also fuzzily, with ``rapidfuzz``, above a threshold, and
   for options that share most of their words, by the words that set one apart), or an ordinal
   ("the second option", "solution 2", "the last choice", "the first is safer"). Mentions joined
   by "and", "or" or commas form one group ("A, C and D", "either B or D").
4. **Each group's reading**, from its clause: *negated* ("not A", "A is incorrect", "rather than
   A", "eliminate A and C"; in an option-by-option walk, a line whose verdict is "incorrect");
   *committed* ("the answer is B", "I would choose B", "B is correct", "B is the better choice",
   the first thing in the answer section, a walk line whose verdict is "correct"); else *named*.
5. **The decision**: the last committed group, if it names one option (two, as in "either B or
   D", leave the answer open: none); else the one option named, if only one is; else, when every
   option but one is negated, that one. A refusal ("I cannot determine", "not enough
   information", "none of the options") with no commitment after it gives none, and so does a
   response that names several options without committing to one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rapidfuzz import fuzz

from interp.accuracy.prompts import letters as option_letters

# Similarity (0-100) above which an answer section's text counts as naming an option's text,
# and the margin by which it must beat every other option (misspellings and light paraphrase
# clear it; an unrelated sentence does not).
FUZZY_THRESHOLD = 85.0
FUZZY_MARGIN = 5.0
FUZZY_MIN_LENGTH = 5  # shorter option texts ("Mars", "54") are matched exactly only

ORDINALS = {"first": 0, "1st": 0, "one": 0, "second": 1, "2nd": 1, "two": 1, "third": 2, "3rd": 2, "three": 2,
            "fourth": 3, "4th": 3, "four": 3, "fifth": 4, "5th": 4, "five": 4, "sixth": 5, "seventh": 6, "eighth": 7}
NOUN = r"(?:option|solution|choice|alternative|answer)"

HEADER = re.compile(r"\b(?:final\s+answer|response|answer)\s*:", re.IGNORECASE)
# A new exchange the model went on to write after answering; cut off before reading.
CONTINUATION = re.compile(
    r"\n\s*(?:question\s*\d*\s*:|q\d*\s*:|\[INST\]|<s>|human\s*:|user\s*:|###|analysis\s*:|"
    r"for each multiple-choice question)", re.IGNORECASE)

# Cues read in the clause before a group (the prefix must end with them) or after it (the rest
# of the clause must start with them).
FILLER = r"(?:\s|[:(\[\"'=-]|\bthe\b|\beither\b|\bletter\b|\boption\b|\bchoice\b|\bsolution\b)*"
COMMIT_BEFORE = re.compile(
    r"(?:\b(?:answer|choice|option|solution|one|pick|response|closest|match|fit)\s+(?:is|would\s+be|must\s+be|should\s+be|will\s+be|=)"
    r"|\banswer\s*[:=-]|\bi\s+(?:would\s+|will\s+|'d\s+)?(?:say|go\s+with|pick|choose|select)"
    r"|\b(?:choose|chose|select|selected|pick|picking|go\s+with|going\s+with|opt\s+for|leaves|leaving|remains)"
    r"|\bremaining\s+(?:option|choice|answer)\s*,?(?:\s+which\s+is|\s+is)?)" + FILLER + "$",
    re.IGNORECASE)
NEGATE_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever|\bneither|\bnor|\brather\s+than|\binstead\s+of|\bunlike|\bexcept(?:\s+for)?|\bother\s+than"
    r"|\beliminat\w*|\brul(?:e|ed|ing)\s+out|\bexclud\w*|\breject\w*|\bdiscard\w*|\bagainst)" + FILLER + "$",
    re.IGNORECASE)
COPULA = r"(?:(?:is|are|was|were|seems?|appears?|looks?|would\s+be|should\s+be|must\s+be|will\s+be|can\s+be|could\s+be|might\s+be|may\s+be|remains?)\s+)?"
ADVERB = r"(?:(?:clearly|definitely|certainly|also|indeed|therefore|thus|obviously|likely)\s+)?"
LEAD = r"^[\s,:)\].-]*" + COPULA + ADVERB
NEGATE_AFTER = re.compile(
    LEAD + r"(?:not\b|incorrect|wrong|false|inaccurate|unlikely|implausible|invalid|irrelevant|impossible"
    r"|ruled\s+out|eliminated|excluded|out\b)"
    r"|^[\s,:)\].-]*(?:does\s+not|doesn't|do\s+not|don't|cannot|can't|isn't|aren't|fails?)\b", re.IGNORECASE)
COMMIT_AFTER = re.compile(
    LEAD + r"(?:the\s+)?(?:correct|right|best|better|answer|accurate|appropriate|most\s+\w+|more\s+(?:likely|accurate|appropriate|plausible))\b"
    r"|" + LEAD + r"(?:it|the\s+one)\b"
    r"|^[\s,:)\].-]*(?:makes?|made)\s+(?:the\s+)?(?:most|more)\s+sense", re.IGNORECASE)
# "C is incorrect and so are A and B": the group takes the verdict of the one before it.
SAME_VERDICT = re.compile(r"\b(?:(?:so|as|nor|neither)\s+(?:is|are|does|do|was|were)|same\s+(?:for|goes\s+for|with))" + FILLER + "$",
                          re.IGNORECASE)
LOOSE_NEGATION = re.compile(r"\b(?:not|never|don't|do\s+not|avoid|shouldn't|should\s+not|instead\s+of|rather\s+than)\b",
                            re.IGNORECASE)
HEDGE = re.compile(r"\b(?:could|might|may|possibly|perhaps|maybe)\b", re.IGNORECASE)
REFUSAL = re.compile(
    r"\b(?:cannot|can't|can\s+not|unable\s+to|not\s+able\s+to|impossible\s+to|not\s+possible\s+to)\s+"
    r"(?:\w+\s+)?(?:determine|determined|answer|answered|provide|say|choose|select|decide|tell|identify)"
    r"|\bnot\s+(?:sure|certain)\b|\bi\s+(?:don't|do\s+not)\s+know\b|\bi\s+apologi[sz]e\b"
    r"|\b(?:not\s+enough|insufficient|more)\s+(?:information|context|details)\b|\bdepends\s+on\b"
    r"|\bnone\s+of\s+(?:the\s+|these\s+|those\s+)?(?:options|choices|answers|above|these|them)\b"
    r"|\bno\s+(?:correct|right|valid)\s+(?:answer|option|choice)\b", re.IGNORECASE)
# An option-by-option walk: a line that starts with an option's label; its verdict words.
WALK_LINE = re.compile(r"^[ \t>*•-]*(?:option\s+)?[(\[]?([A-H])[)\].:]", re.IGNORECASE | re.MULTILINE)
WALK_NEGATIVE = re.compile(
    r"\b(?:incorrect|wrong|not\s+(?:the\s+)?(?:correct|right|best|answer)|not\s+(?:a\s+)?good|(?:doesn't|does\s+not)\s+make\s+sense"
    r"|unlikely|implausible|not\s+(?:likely|possible|plausible|appropriate|relevant|true)|ruled\s+out|eliminated|can\s+be\s+excluded)\b",
    re.IGNORECASE)
WALK_POSITIVE = re.compile(r"\b(?:correct|right|best|most\s+likely|likely|makes\s+(?:the\s+most\s+)?sense|the\s+answer|good\s+(?:idea|choice|way))\b",
                           re.IGNORECASE)
# Where a clause ends: a line break, a sentence end (not "B." after a lone letter, not "e.g."),
# a semicolon, or a contrast ("but", "however", ", not ...").
CLAUSE_END = re.compile(
    r"\n|(?<![\s(\[][A-Za-z])(?<!\be\.g)(?<!\bi\.e)[.!?]+(?=\s|$)|;|,?\s+(?:but|however|whereas|although|though)\b|,\s+(?=not\b)",
    re.IGNORECASE)
GROUP_JOIN = re.compile(r"^(?:\s|,|/|&|\band\b|\bor\b|\bnor\b|\boptions?\b|\bchoices?\b|\bthe\b)*$", re.IGNORECASE)
SAME_OPTION_JOIN = re.compile(r"^[\s,.:;()\[\]-]*$")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    letter: str
    loose: bool = False  # read from a few of the option's words: any negator in its clause negates it


@dataclass
class Group:
    start: int
    end: int
    letters: list[str]
    loose: bool = False
    negated: bool = False
    committed: bool = False
    hedged: bool = False


class _Nothing:
    """A text that names no option at all (as opposed to one that names options but commits to none)."""


NOTHING = _Nothing()


def clean(response: str) -> str:
    text = response.replace("\r\n", "\n").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\\(?:boxed|text|textbf|mathrm)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\*\*|__|`|\$", "", text)
    text = re.sub(r"(?m)^#+\s*", "", text)
    first = HEADER.search(text)
    if first:
        cut = CONTINUATION.search(text, first.end())
        if cut:
            text = text[: cut.start()]
    return text


def answer_section(text: str) -> str | None:
    """The text after the last answer header, or ``None`` when there is none."""
    headers = list(HEADER.finditer(text))
    return text[headers[-1].end():] if headers else None


def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= a or start >= b for a, b in taken)


def _text_mentions(text: str, options: Sequence[str], letters: str, fuzzy: bool) -> list[Mention]:
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []
    lowered = text.lower()
    for index in sorted(range(len(options)), key=lambda i: -len(options[i])):
        phrase = options[index].strip().rstrip(".").strip().lower()
        if not phrase:
            continue
        for match in re.finditer(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", lowered):
            if _free(taken, match.start(), match.end()):
                taken.append((match.start(), match.end()))
                found.append(Mention(match.start(), match.end(), letters[index]))
    if fuzzy and not found:
        scored = sorted((_closest_window(text, option) + (index,) for index, option in enumerate(options)), reverse=True)
        if scored and scored[0][0] >= FUZZY_THRESHOLD and (len(scored) == 1 or scored[0][0] - scored[1][0] >= FUZZY_MARGIN):
            _, start, end, index = scored[0]
            found.append(Mention(start, end, letters[index]))
        else:
            found += _distinctive_mention(text, options, letters)
    return found


STOPWORDS = frozenset("a an the to of in on at for with and or but is are be it its this that by from as into your you "
                      "their them they he she his her use using".split())


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and len(w) > 2]


def _distinctive_mention(text: str, options: Sequence[str], letters: str) -> list[Mention]:
    """Options that share most of their words (PIQA's two solutions) differ in a few: the one
    option at least half of whose own words the text uses, while it uses none of the others'."""
    words = [set(_content_words(o)) for o in options]
    used = [(m.group().lower(), m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9]+", text)]

    def same(word: str, other: str) -> bool:  # "ladder"/"ladders", "stand"/"standing"
        return fuzz.ratio(word, other) >= FUZZY_THRESHOLD or other.startswith(word) or (len(other) >= 5 and word.startswith(other[:5]))

    def found(index: int) -> list[tuple[int, int]]:
        own = words[index] - set().union(*(w for i, w in enumerate(words) if i != index))
        hits = [next(((a, b) for u, a, b in used if same(w, u)), None) for w in own]
        return [h for h in hits if h] if own and 2 * sum(h is not None for h in hits) >= len(own) else []

    hits = [found(i) for i in range(len(options))]
    chosen = [i for i, h in enumerate(hits) if h]
    if len(chosen) == 1 and not any(same(w, u) for i in range(len(options)) if i != chosen[0]
                                    for w in words[i] - words[chosen[0]] for u, _, _ in used):
        start, end = min(hits[chosen[0]])
        return [Mention(start, end, letters[chosen[0]], loose=True)]
    return []


def _closest_window(text: str, option: str) -> tuple[float, int, int]:
    """The best ``fuzz.token_sort_ratio`` of the option's text against runs of about as many
    words of ``text``, with the run's span (a misspelt, reordered or lightly reworded option
    scores high; ``token_set_ratio`` was too lenient: any run sharing a few words scored high)."""
    phrase = option.strip().rstrip(".").strip().lower()
    words = [(m.start(), m.end()) for m in re.finditer(r"[\w'-]+", text)]
    size = len(phrase.split())
    best = (0.0, 0, 0)
    if len(phrase) < FUZZY_MIN_LENGTH:
        return best
    for width in {max(1, size - 1), size, size + 1}:
        for i in range(len(words) - width + 1):
            start, end = words[i][0], words[i + width - 1][1]
            best = max(best, (fuzz.token_sort_ratio(phrase, text[start:end].lower()), start, end))
    return best


def _label_mentions(text: str, letters: str, taken: list[tuple[int, int]]) -> list[Mention]:
    found = []
    upper = f"[{letters}]"
    either = f"[{letters}{letters.lower()}]"
    patterns = [
        # (B), [B], {B}, and lower case inside them
        rf"[(\[{{]({either})[)\]}}]",
        # Option B, choice (b), answer: C, letter D
        rf"\b(?:option|choice|answer|letter|solution|alternative)\s*[:#]?\s*[(\[]?({either})\b(?![-'])",
        # a lower-case letter given as the answer: "the answer is c", "option would be b"
        rf"\b(?:answer|option|choice)\s+(?:is|would\s+be|must\s+be)\s*:?\s*([{letters.lower()}])\b(?![-'])",
        # b), b. or a lone b at the start of a line or section: a lower-case label
        rf"(?:^|\n)[ \t>*•-]*([{letters.lower()}])(?:[).:](?=\s|$)|\s*$)",
        # a capital letter standing alone
        rf"(?<![\w'-])({upper})(?![\w'-]|\.\w)",
    ]
    for number, pattern in enumerate(patterns):
        for match in re.finditer(pattern, text):
            start, end = match.span(1)
            if not _free(taken, match.start(), match.end()):
                continue
            if number in (2, len(patterns) - 1) and _article(text, end):  # "answer is a ...", "A decrease ..."
                continue
            taken.append((match.start(), match.end()))
            found.append(Mention(match.start(), match.end(), match.group(1).upper()))
    return found


ARTICLE_FOLLOWERS = re.compile(
    r"\s+(?!(?:is|was|are|and|or|nor|would|could|should|seems|appears|looks|can|must|might|may|does|doesn't|isn't|"
    r"makes|has|remains|because|since|as|which|states|says|vs|versus|to|through|only|alone)\b)[a-z]")


def _article(text: str, end: int) -> bool:
    """Whether the letter just before ``end`` is the article ("A decrease in demand", "the answer is a bit")."""
    return text[end - 1] in "Aa" and ARTICLE_FOLLOWERS.match(text, end) is not None


def _ordinal_mentions(text: str, letters: str, taken: list[tuple[int, int]]) -> list[Mention]:
    words = "|".join(ORDINALS)
    patterns = [
        (rf"\b(?:the\s+)?({words}|last)\s+(?:one|{NOUN})\b(?!\s*:)", lambda w: ORDINALS.get(w, len(letters) - 1)),
        (rf"\b{NOUN}\s*(?:number\s*|#)?([1-8])\b", lambda w: int(w) - 1),
        # "the first is safer", "the latter": an ordinal standing for an option on its own
        (rf"\bthe\s+({words}|last|former|latter)\b(?=\s*(?:[,.;!?]|$|is\b|was\b|would\b|seems\b|makes\b|works\b))",
         lambda w: {"former": 0, "latter": len(letters) - 1}.get(w, ORDINALS.get(w, len(letters) - 1))),
    ]
    found = []
    for pattern, index_of in patterns:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            index = index_of(match.group(1).lower())
            if 0 <= index < len(letters) and _free(taken, match.start(), match.end()):
                taken.append((match.start(), match.end()))
                found.append(Mention(match.start(), match.end(), letters[index]))
    return found


def mentions(text: str, options: Sequence[str], fuzzy: bool = False) -> list[Mention]:
    """Every place in ``text`` that names one of the options, in order."""
    letters = option_letters(len(options))
    found = _text_mentions(text, options, letters, fuzzy)
    taken = [(m.start, m.end) for m in found]
    found += _ordinal_mentions(text, letters, taken)
    found += _label_mentions(text, letters, taken)
    return sorted(found, key=lambda m: m.start)


def _groups(text: str, found: list[Mention]) -> list[Group]:
    groups: list[Group] = []
    for mention in found:
        if groups:
            last = groups[-1]
            between = text[last.end: mention.start]
            if GROUP_JOIN.match(between) or (mention.letter in last.letters and SAME_OPTION_JOIN.match(between)):
                last.end = mention.end
                if mention.letter not in last.letters:
                    last.letters.append(mention.letter)
                continue
        groups.append(Group(mention.start, mention.end, [mention.letter], mention.loose))
    return groups


def _clause(text: str, start: int, end: int) -> tuple[int, int]:
    begin = 0
    for match in CLAUSE_END.finditer(text, 0, start):
        begin = match.end()
    after = CLAUSE_END.search(text, end)
    return begin, after.start() if after else len(text)


def _walk(text: str) -> dict[int, str]:
    """Lines that open an option-by-option walk: their start -> the verdict of their item."""
    starts = [m for m in WALK_LINE.finditer(text)]
    if len({m.group(1).upper() for m in starts}) < 2:
        return {}
    verdicts = {}
    for i, match in enumerate(starts):
        stop = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        header = HEADER.search(text, match.end(), stop)
        item = text[match.end(): header.start() if header else stop]
        verdict = "negated" if WALK_NEGATIVE.search(item) else "committed" if WALK_POSITIVE.search(item) else ""
        verdicts[match.start(1)] = verdict
    return verdicts


def read_groups(text: str, options: Sequence[str], opener: bool, fuzzy: bool) -> list[Group]:
    """The option groups of ``text``, each read as negated, committed or (neither) named."""
    groups = _groups(text, mentions(text, options, fuzzy))
    walk = _walk(text)
    for number, group in enumerate(groups):
        begin, stop = _clause(text, group.start, group.end)
        before, after = text[begin: group.start], text[group.end: stop]
        if number and groups[number - 1].start >= begin and SAME_VERDICT.search(before):
            group.negated, group.committed = groups[number - 1].negated, groups[number - 1].committed
            continue
        verdict = next((v for start, v in walk.items() if group.start <= start < group.end), None)
        group.negated = bool(NEGATE_BEFORE.search(before) or NEGATE_AFTER.match(after)) or verdict == "negated" \
            or (group.loose and LOOSE_NEGATION.search(before) is not None)
        group.hedged = bool(HEDGE.search(before) or HEDGE.search(after[:30]))
        is_opener = opener and not walk and not re.search(r"[A-Za-z0-9]", re.sub(rf"\b(?:{NOUN})\b", "", text[: group.start], flags=re.I))
        group.committed = not group.negated and (
            bool(COMMIT_BEFORE.search(before) or COMMIT_AFTER.match(after)) or verdict == "committed" or is_opener)
    return groups


def decide(text: str, options: Sequence[str], opener: bool = True, fuzzy: bool = True) -> str | None | _Nothing:
    """The option ``text`` commits to; ``None`` when it names options (or refuses) without
    committing to one; ``NOTHING`` when it names no option at all."""
    letters = option_letters(len(options))
    groups = read_groups(text, options, opener, fuzzy)
    masked = text
    for g in groups:  # an option's own text ("None of the above") is no refusal
        masked = masked[: g.start] + " " * (g.end - g.start) + masked[g.end:]
    refusal = REFUSAL.search(masked)
    committed = [g for g in groups if g.committed and not (g.hedged and len(g.letters) == 1)]
    if refusal and not [g for g in committed if g.start > refusal.start()]:
        return None
    if committed:
        last = committed[-1]
        return last.letters[0] if len(last.letters) == 1 else None
    named = {letter for g in groups if not g.negated for letter in g.letters}
    if len(named) == 1:
        return named.pop()
    if named:
        return None
    negated = {letter for g in groups for letter in g.letters}
    left = [letter for letter in letters if letter not in negated]
    if groups and len(left) == 1:
        return left[0]
    return None if groups else NOTHING


def extract_final(response: str, options: Sequence[str]) -> str | None:
    """The option letter the response commits to, or ``None`` when it commits to none."""
    text = clean(response)
    section = answer_section(text)
    if section is not None:
        verdict = decide(section, options, opener=True, fuzzy=True)
        if verdict is not NOTHING:
            return verdict
    verdict = decide(text, options, opener=True, fuzzy=False)
    return None if verdict is NOTHING else verdict
