"""What a free-form multiple-choice response commits to: the ``final`` extraction mode, a
pipeline of small steps (each a function of this module, in this order, testable alone), read
the way a grader reads a response. :class:`Reader` runs steps 2 to 5 with its settings (the fuzzy
matching's thresholds, the distinctive-words rule); a benchmark's entry in the registry
(:attr:`interp.accuracy.benchmarks.Benchmark.reader`) holds the one it reads with (every one of
today's: the defaults).

1. :func:`clean`: markdown emphasis, ``\\boxed{X}`` and curly quotes undone; whatever the model
   wrote after its answer that starts a new exchange (a new ``Question:``, ``[INST]``, a new
   ``Analysis:``) cut off.
2. :func:`answer_section`: the text after the last ``Response:`` / ``Answer:`` / ``Final
   answer:`` header, read first; only when it names no option at all is the whole response read.
   (``strict`` mode takes the same step with its own header.)
3. Mentions, every place that names an option: :func:`letter_mentions` (``B``, ``(B)``, ``B)``,
   ``Option B``, ``b)``; the article "A" and the pronoun "I" told apart from the letters),
   :func:`text_mentions` (its text: exact, longest option first; in the answer section also
   fuzzily, with ``rapidfuzz``, and, for options that share most of their words, by the words
   that set one apart), :func:`ordinal_mentions` ("the second option", "solution 2", "the
   latter"); :func:`join_groups` joins mentions linked by "and", "or", commas ("either B or D"),
   and a label with another option's text as its line ("A. can carry pole") into a group of both.
4. :func:`read_groups`: each group's reading from its clause: *negated* ("not A", "A is
   incorrect", "rather than A", "eliminate A and C"; in an option-by-option walk, an item whose
   verdict is "incorrect"), *committed* ("the answer is B", "I would choose B", "B is correct",
   the first thing in the answer section, a walk item whose verdict is "correct"; not a line
   that only repeats its own label, "B. The answer is B."; not lines that commit to three
   options in a row, :func:`unlist`), *compared* ("A vs ..."), else *named*. An opening label
   that begins a list of the model's own (:func:`_enumerator`) is no mention.
5. :func:`resolve`: the decision, in order: :func:`refused` (a refusal, "I cannot determine",
   "none of the options", with no commitment after it: none); :func:`settled` (the commitments
   settle on one option, or never do: degenerate repetition "The answer is A. The answer is B.
   The answer is A." gives none), unless :func:`retracted`; the one option named, if only one is
   (a group of every option is the question's list); :func:`eliminated` (every option but one
   negated: that one). A response that names several options without committing to one gives none.

Every step is linear in the text's length (lines and clause ends are indexed once per text; cues
are searched in a window beside their option), and what is read is bounded (``MAX_CHARS``,
``MAX_MENTIONS``).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from rapidfuzz import fuzz

from interp.accuracy.prompts import letters as option_letters

# Similarity (0-100) above which an answer section's text counts as naming an option's text,
# and the margin by which it must beat every other option (misspellings and light paraphrase
# clear it; an unrelated sentence does not).
FUZZY_THRESHOLD = 85.0
FUZZY_MARGIN = 5.0
FUZZY_MIN_LENGTH = 5  # shorter option texts ("Mars", "54") are matched exactly only
# What is read of a response: its first MAX_CHARS characters (2048 tokens of CoT are about 8,000),
# and in them the first MAX_MENTIONS places that name an option (a response that names options
# more often is a degenerate loop; reading every one would stall the generation loop it runs in).
MAX_CHARS = 32_000
MAX_MENTIONS = 1_000

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
    r"|\b(?:answer|solution)\s+(?:to|for)\b[^\n]{0,100}?\s(?:is|would\s+be|will\s+be|must\s+be)"  # "the answer to the question "..." is"
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
COMPARED_AFTER = re.compile(r"^[\s.,:)\]-]*(?:vs\b|versus\b|compared\s+(?:to|with)\b)", re.IGNORECASE)
COMPARED_BEFORE = re.compile(r"\b(?:vs\.?|versus|compared\s+(?:to|with)|compare)" + FILLER + "$", re.IGNORECASE)
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
LABEL = r"[ \t>*•-]*(?:option\s+)?[(\[]?({letters})[)\].:]"  # "B.", "(b)", "Option C:" opening a line


@lru_cache(maxsize=None)
def walk_line(letters: str) -> re.Pattern[str]:
    """A line opened by the label of one of these options (another letter's label is no option's)."""
    return re.compile("^" + LABEL.format(letters=f"[{letters}]"), re.IGNORECASE | re.MULTILINE)


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
# Joins within a paragraph: across one line break ("A. Paris\nB. London" is one group, named
# together), never across a blank line. (Joining within a line only reads the real set worse:
# development half 96.8% -> 96.4%, held-out 95.1% -> 93.8%.)
GROUP_JOIN = re.compile(r"^(?:[ \t]|,|/|&|\band\b|\bor\b|\bnor\b|\boptions?\b|\bchoices?\b|\bthe\b)*\n?\Z", re.IGNORECASE)
SAME_OPTION_JOIN = re.compile(r"^[ \t,.:;()\[\]-]*\n?\Z")


STOPWORDS = frozenset("a an the to of in on at for with and or but is are be it its this that by from as into your you "
                      "their them they he she his her use using".split())
ARTICLE_FOLLOWERS = re.compile(
    r"\s+(?!(?:is|was|are|and|or|nor|would|could|should|seems|appears|looks|can|must|might|may|does|doesn't|isn't|"
    r"makes|has|remains|because|since|as|which|states|says|vs|versus|to|through|only|alone)\b)[a-z0-9]")
PRONOUN_FOLLOWERS = re.compile(r"\s+[a-z]+(?<!\bor)(?<!\band)(?<!\bis)(?<!\bnor)(?<!\bvs)(?<!\bversus)\b")
WINDOW = 400
REACH = 48  # how far back a cue that ends where a group starts can begin ("rather than the option (")
REASON = re.compile(r"(?:because|since|as|it|this|that)\b", re.IGNORECASE)
ANNOUNCE = re.compile(r"\b(?:answer|choice|option)\s+(?:is|would\s+be|will\s+be|must\s+be)\s*:?\s*$", re.IGNORECASE)
LABEL_LINE = re.compile(LABEL.format(letters="[A-Z]"), re.IGNORECASE)
RETRACTION = re.compile(r"\b(?:answer|correct|right|wrong|incorrect)\b", re.IGNORECASE)
# The answer denied by reference: "This answer is not correct", "my answer is wrong" (not "this
# option is incorrect", which in a walk is about the option of its line).
DENIED = re.compile(r"\b(?:this|that|my|the\s+above)\s+answer\s+(?:is|would\s+be|seems)\s+"
                    r"(?:not\b(?!\s+only)|incorrect\b|wrong\b)", re.IGNORECASE)
# What licenses a change of answer: a revision or a conclusion between the two commitments.
REVISION = re.compile(
    r"\b(?:however|but|actually|wait|instead|on\s+(?:second\s+thought|reflection|closer\s+inspection)"
    r"|re-?(?:consider|evaluat|examin|think)\w*|upon\s+(?:further\s+)?(?:reflection|review|inspection)|correction"
    r"|in\s+conclusion|to\s+conclude|in\s+summary|overall|therefore|thus|hence|so|final(?:ly)?|ultimately|after\s+all)\b",
    re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<![\s(\[][A-Za-z])[.!?]+(?=\s)|\n")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    letter: str
    loose: bool = False  # read from a few of the option's words: any negator in its clause negates it
    quoted: bool = False  # the option's text, rather than its letter or place


@dataclass
class Group:
    start: int
    end: int
    letters: list[str]
    loose: bool = False
    negated: bool = False
    committed: bool = False
    hedged: bool = False
    compared: bool = False  # set against something ("A. Aerobic exercise vs memory"): not chosen


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


def answer_section(text: str, header: re.Pattern[str] = HEADER) -> str | None:
    """The text after the last answer header, or ``None`` when there is none."""
    headers = list(header.finditer(text))
    return text[headers[-1].end():] if headers else None


class Spans:
    """Spans of the text already taken by a mention, kept sorted and disjoint, so that asking
    whether a span is free costs a bisection, not a scan of every mention (a response of option
    labels repeated has as many mentions as characters / 3)."""

    def __init__(self, spans: Sequence[tuple[int, int]] = ()):
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in sorted(spans):
            self.add(start, end)

    def free(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._starts, start)
        return (i == 0 or self._ends[i - 1] <= start) and (i == len(self._starts) or end <= self._starts[i])

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)


def _spans(taken: "Spans | Sequence[tuple[int, int]]") -> Spans:
    return taken if isinstance(taken, Spans) else Spans(taken)


@lru_cache(maxsize=8)
def _index(text: str) -> tuple[list[int], list[int], list[int], str]:
    """Where the text's lines start, where its clause ends start and end, and the text in lower
    case: computed once per text, so that each group's line and clause is a bisection (rescanning
    from the start for every group made extraction quadratic in the response's length)."""
    lines = [0] + [m.end() for m in re.finditer("\n", text)]
    ends = list(CLAUSE_END.finditer(text))
    return lines, [m.start() for m in ends], [m.end() for m in ends], text.lower()


def _line_start(text: str, position: int) -> int:
    """Where the line holding ``position`` starts (``text.rfind("\n", 0, position) + 1``)."""
    lines = _index(text)[0]
    return lines[bisect.bisect_right(lines, position) - 1]


def _line_number(text: str, position: int) -> int:
    return bisect.bisect_right(_index(text)[0], position) - 1


def text_mentions(text: str, options: Sequence[str], letters: str, fuzzy: bool,
                  reader: "Reader | None" = None) -> list[Mention]:
    """Where ``text`` quotes an option's text (exactly; with ``fuzzy``, also a close paraphrase of
    one option, or the words that set one option apart from the others)."""
    reader = reader or Reader()
    found: list[Mention] = []
    taken = Spans()
    lowered = text.lower()
    for index in sorted(range(len(options)), key=lambda i: -len(options[i])):
        phrase = options[index].strip().rstrip(".").strip().lower()
        if not phrase:
            continue
        for match in re.finditer(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", lowered):
            if taken.free(match.start(), match.end()):
                taken.add(match.start(), match.end())
                found.append(Mention(match.start(), match.end(), letters[index], quoted=True))
    if fuzzy and not found:
        scored = sorted((_closest_window(text, option, reader.fuzzy_min_length) + (index,)
                         for index, option in enumerate(options)), reverse=True)
        if scored and scored[0][0] >= reader.fuzzy_threshold and (
                len(scored) == 1 or scored[0][0] - scored[1][0] >= reader.fuzzy_margin):
            _, start, end, index = scored[0]
            found.append(Mention(start, end, letters[index], quoted=True))
        elif reader.distinctive_words:
            found += _distinctive_mention(text, options, letters)
    return found


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
        return [Mention(start, end, letters[chosen[0]], loose=True, quoted=True)]
    return []


def _closest_window(text: str, option: str, min_length: int) -> tuple[float, int, int]:
    """The best ``fuzz.token_sort_ratio`` of the option's text against runs of about as many
    words of ``text``, with the run's span (a misspelt, reordered or lightly reworded option
    scores high; ``token_set_ratio`` was too lenient: any run sharing a few words scored high)."""
    phrase = option.strip().rstrip(".").strip().lower()
    words = [(m.start(), m.end()) for m in re.finditer(r"[\w'-]+", text)]
    size = len(phrase.split())
    best = (0.0, 0, 0)
    if len(phrase) < min_length:
        return best
    for width in {max(1, size - 1), size, size + 1}:
        for i in range(len(words) - width + 1):
            start, end = words[i][0], words[i + width - 1][1]
            best = max(best, (fuzz.token_sort_ratio(phrase, text[start:end].lower()), start, end))
    return best


def letter_mentions(text: str, letters: str, taken: "Spans | Sequence[tuple[int, int]]") -> list[Mention]:
    """Where ``text`` names an option by its letter (outside the spans ``taken`` by others)."""
    taken = _spans(taken)
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
            if not taken.free(match.start(), match.end()):
                continue
            if number in (2, len(patterns) - 1) and (_article(text, end) or _pronoun(text, end)):
                continue  # "answer is a ...", "A decrease ...", "I think it is D"
            taken.add(match.start(), match.end())
            found.append(Mention(match.start(), match.end(), match.group(1).upper()))
    return found


def _article(text: str, end: int) -> bool:
    """Whether the letter just before ``end`` is the article ("A decrease in demand", "the answer is a bit")."""
    return text[end - 1] in "Aa" and ARTICLE_FOLLOWERS.match(text, end) is not None


def _pronoun(text: str, end: int) -> bool:
    """Whether the capital I just before ``end`` is the pronoun ("I think it is D", "I would pick
    B"): followed by a lower-case word other than a joiner ("I or J", "I is correct")."""
    return text[end - 1] == "I" and PRONOUN_FOLLOWERS.match(text, end) is not None


def ordinal_mentions(text: str, letters: str, taken: "Spans | Sequence[tuple[int, int]]") -> list[Mention]:
    """Where ``text`` names an option by its place ("the second option", "solution 2", "the latter")."""
    taken = _spans(taken)
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
            if 0 <= index < len(letters) and taken.free(match.start(), match.end()):
                taken.add(match.start(), match.end())
                found.append(Mention(match.start(), match.end(), letters[index]))
    return found


def mentions(text: str, options: Sequence[str], fuzzy: bool = False, reader: "Reader | None" = None) -> list[Mention]:
    """Every place in ``text`` that names one of the options, in order: texts first, then
    ordinals and letters where no text was found."""
    letters = option_letters(len(options))
    found = text_mentions(text, options, letters, fuzzy, reader)
    taken = Spans([(m.start, m.end) for m in found])
    found += ordinal_mentions(text, letters, taken)
    found += letter_mentions(text, letters, taken)
    return sorted(found, key=lambda m: m.start)


def join_groups(text: str, found: list[Mention]) -> list[Group]:
    """Mentions joined by "and", "or", commas or slashes into one group ("A, C and D"); repeats of
    one option ("B) Berlin") into one; and a letter whose line goes on with just the text of
    another option ("A. can carry pole", where that is B's text), which names both."""
    groups: list[Group] = []
    for previous, mention in zip([None, *found], found):
        if groups:
            last = groups[-1]
            between = text[last.end: mention.start]
            # the other option's text as the whole of the label's line ("B. Vitamin C deficiency
            # causes scurvy" names B, and then talks about A)
            labelled = previous is not None and not previous.quoted and mention.quoted and \
                re.match(r"[ \t.,;:!]*(?:\n|$)", text[mention.end:]) is not None
            if GROUP_JOIN.match(between) or ((mention.letter in last.letters or labelled) and SAME_OPTION_JOIN.match(between)):
                last.end = mention.end
                if mention.letter not in last.letters:
                    last.letters.append(mention.letter)
                continue
        groups.append(Group(mention.start, mention.end, [mention.letter], mention.loose))
    return groups


def _clause(text: str, start: int, end: int) -> tuple[int, int]:
    """The clause around ``text[start:end]``, at most ``WINDOW`` characters either side (its cues
    sit next to the option; a line of labels with no clause end would otherwise make every
    clause the whole text)."""
    _, starts, ends, _ = _index(text)
    i = bisect.bisect_right(ends, start) - 1  # the last clause end before the group
    begin = ends[i] if i >= 0 else 0
    # a clause end cut short by the group itself ("...so.B", "but" right before it) ends the clause too
    for match in CLAUSE_END.finditer(text, max(begin, start - 12), start):
        begin = match.end()
    j = bisect.bisect_left(starts, end)
    stop = starts[j] if j < len(starts) else len(text)
    return max(begin, start - WINDOW), min(stop, end + WINDOW)


def _ends_with(cue: re.Pattern[str], text: str, begin: int, start: int, reach: int = REACH) -> bool:
    """Whether the clause's text before ``start`` ends with ``cue`` (a pattern ending in ``$``,
    which matches at ``endpos``); only the last ``reach`` characters are searched."""
    return cue.search(text, max(begin, start - reach), start) is not None


def _commits_before(text: str, begin: int, start: int) -> bool:
    # "the answer to the question ... is" reaches ~130 characters back; the longer search only runs
    # where "answer" or "solution" is there to start it.
    if _ends_with(COMMIT_BEFORE, text, begin, start):
        return True
    lowered = _index(text)[3][max(begin, start - 160): start]
    return ("answer" in lowered or "solution" in lowered) and _ends_with(COMMIT_BEFORE, text, begin, start, 160)


def _walk(text: str, letters: str) -> dict[int, str]:
    """Lines that open an option-by-option walk: their start -> the verdict of their item."""
    starts = [m for m in walk_line(letters).finditer(text)]
    if len({m.group(1).upper() for m in starts}) < 2:
        return {}
    verdicts = {}
    for i, match in enumerate(starts):
        stop = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        # An item ends at the next item, an answer header, or a blank line (the walk's end).
        end = re.compile(r"\n[ \t]*\n|" + HEADER.pattern, re.IGNORECASE).search(text, match.end(), stop)
        item = text[match.end(): end.start() if end else stop]
        verdict = "negated" if WALK_NEGATIVE.search(item) else "committed" if WALK_POSITIVE.search(item) else ""
        verdicts[match.start(1)] = verdict
    if set(verdicts.values()) == {"committed"}:  # every item "correct": a listing, not verdicts
        return dict.fromkeys(verdicts, "")
    return verdicts


def read_groups(text: str, options: Sequence[str], opener: bool, fuzzy: bool, reader: "Reader | None" = None) -> list[Group]:
    """The option groups of ``text``, each read as negated, committed or (neither) named."""
    letters = option_letters(len(options))
    groups = join_groups(text, mentions(text, options, fuzzy, reader)[:MAX_MENTIONS])
    walk = _walk(text, letters)
    if groups and not walk and _enumerator(text, groups[0], letters):
        groups = groups[1:]
    first_content = re.search(r"[A-Za-z0-9]", re.sub(rf"\b(?:{NOUN})\b", lambda m: " " * len(m.group()), text, flags=re.I))
    walk_starts = sorted(walk)
    for number, group in enumerate(groups):
        begin, stop = _clause(text, group.start, group.end)
        before, after = text[begin: group.start], text[group.end: stop]
        if number and groups[number - 1].start >= begin and _ends_with(SAME_VERDICT, text, begin, group.start):
            group.negated, group.committed = groups[number - 1].negated, groups[number - 1].committed
            continue
        inside = bisect.bisect_left(walk_starts, group.start)
        verdict = walk[walk_starts[inside]] if inside < len(walk_starts) and walk_starts[inside] < group.end else None
        if verdict is not None:  # a walk line's label: its item's verdict is its reading
            group.negated = verdict == "negated"
            group.committed = verdict == "committed" or (not group.negated and _announced(text, group))
            continue
        group.compared = bool(COMPARED_AFTER.match(after) or _ends_with(COMPARED_BEFORE, text, begin, group.start))
        group.negated = bool(_ends_with(NEGATE_BEFORE, text, begin, group.start) or NEGATE_AFTER.match(after)) or verdict == "negated" \
            or (group.loose and LOOSE_NEGATION.search(before) is not None)
        group.hedged = bool(HEDGE.search(before) or HEDGE.search(after[:30]))
        is_opener = opener and not walk and (first_content is None or first_content.start() >= group.start)
        group.committed = not group.negated and not group.compared and not _echo(text, group, walk, letters) and (
            bool(_commits_before(text, begin, group.start) or COMMIT_AFTER.match(after)) or is_opener
            or _announced(text, group))
    unlist(text, groups, letters)
    return groups


def _enumerator(text: str, group: Group, letters: str) -> bool:
    """Whether the response opens with a label that goes on, on its line, with something other than
    its option's text, and other than a reason or verdict for it ("A. The first step is to find
    ...", "A. 3 tablespoons olive oil 1 tablespoon ..."; not "A. Because ...", "A. This is correct"):
    the first item of a list of the model's own, which names no option."""
    label = walk_line(letters).match(text, _line_start(text, group.start))
    if label is None or text[: label.start()].strip() or group.end > label.end():
        return False
    rest = text[group.end:].split("\n", 1)[0].strip(" \t.:)]")
    return bool(rest) and not WALK_POSITIVE.search(rest) and not REASON.match(rest)


def unlist(text: str, groups: list[Group], letters: str) -> None:
    """A block of consecutive lines that each commit to something, with no word of revision
    between them, committing to three or more different options ("1. The answer is A. Akitu\n2.
    The answer is B. Wag\n3. The answer is C. Bast"), is a listing of what each answer would be:
    none of its commitments commits. (Two options alternating is degenerate repetition, which
    :func:`settled` reads.)"""
    by_line: dict[int, list[Group]] = {}
    for group in groups:
        by_line.setdefault(_line_number(text, group.start), []).append(group)
    lines = text.split("\n")
    blocks: list[list[tuple[int, Group]]] = [[]]
    for line, on_line in sorted(by_line.items()):
        one = on_line[0] if len(on_line) == 1 and on_line[0].committed else None
        block = blocks[-1]
        if one is not None and block and line == block[-1][0] + 1 and not REVISION.search(lines[line]):
            block.append((line, one))
        else:
            blocks.append([(line, one)] if one is not None else [])
    for block in blocks:
        if len({letter for _, group in block for letter in group.letters}) >= 3:
            for _, group in block:
                group.committed = False


def _announced(text: str, group: Group) -> bool:
    """An option alone on the line after "The answer is:" ("The correct answer is:\n\nC. r = k"),
    not the first of a list of options written there."""
    line = _line_start(text, group.start)
    if text[line:group.start].strip(" \t>*•-([") or not ANNOUNCE.search(text[max(0, line - WINDOW):line].rstrip()):
        return False
    following = [l for l in text[group.end:group.end + WINDOW].split("\n")[1:] if l.strip()][:1]
    return not (following and LABEL_LINE.match(following[0]))


def _echo(text: str, group: Group, walk: dict[int, str], letters: str) -> bool:
    """Whether ``group`` repeats the label of the walk line it sits in ("B. The answer is B.", a
    listing's template), which commits to nothing."""
    label = walk_line(letters).match(text, _line_start(text, group.start))
    return bool(walk) and label is not None and label.start(1) < group.start and group.letters == [label.group(1).upper()]


def refused(text: str, groups: list[Group], committed: list[Group]) -> bool:
    """A refusal ("I cannot determine", "not enough information", "none of the options") with no
    commitment after it; an option's own text ("None of the above") is no refusal."""
    pieces, last = [], 0
    for g in sorted(groups, key=lambda g: g.start):
        pieces += [text[last: g.start], " " * (g.end - g.start)]
        last = g.end
    masked = "".join(pieces) + text[last:]
    refusal = REFUSAL.search(masked)
    return refusal is not None and not [g for g in committed if g.start > refusal.start()]


def retracted(text: str, groups: list[Group], committed: list[Group], answer: str) -> bool:
    """Whether the answer is denied after its last commitment ("The answer is A. ... The answer
    is not A", "... is A. This answer is not correct"), with no commitment to it after that."""
    last = max((g for g in committed if g.letters == [answer]), key=lambda g: g.start)
    denied = DENIED.search(text, last.end)
    # "this answer" is the option named last before it
    if denied and not [g for g in groups if last.start < g.start < denied.start() and g.letters != [answer]]:
        return True
    for g in groups:
        if g.start > last.start and g.negated and answer in g.letters:
            begin, stop = _clause(text, g.start, g.end)
            if RETRACTION.search(text, begin, stop):
                return True
    return False


def eliminated(groups: list[Group], letters: str) -> str | None:
    """The one option left when every other is negated ("C is incorrect and so are A and B")."""
    negated = {letter for g in groups if g.negated for letter in g.letters}
    left = [letter for letter in letters if letter not in negated]
    return left[0] if groups and len(left) == 1 else None


def _quoted_label(text: str, group: Group) -> bool:
    """An option's label inside quotation marks ('The sentence "A. happy ..." is a fallacy', 'the
    question "A: peasant"'): the option talked about, not named as the answer."""
    line = _line_start(text, group.start)
    inside = text.count('"', line, group.start) % 2 == 1
    return inside and re.match(r"[A-Z](?:[.:)]|\s|\"|$)", text[group.start:group.end]) is not None


def resolve(text: str, groups: list[Group], letters: str) -> str | None | _Nothing:
    """The option the read groups of ``text`` commit to; ``None`` when they name options (or
    refuse) without committing to one; ``NOTHING`` when there are none."""
    committed = [g for g in groups if g.committed and not (g.hedged and len(g.letters) == 1)]
    if refused(text, groups, committed):
        return None
    if committed:
        answer = settled(text, committed)
        return None if answer is not None and retracted(text, groups, committed, answer) else answer
    # a group of every option ("the options are A, B and C") is the question's list, not a choice
    named = {letter for g in groups if not g.negated and not g.compared and not _quoted_label(text, g)
             and not (len(g.letters) == len(letters) > 2) for letter in g.letters}
    if len(named) == 1:
        return named.pop()
    if named:
        return None
    return eliminated(groups, letters) if groups else NOTHING


def settled(text: str, committed: list[Group]) -> str | None:
    """The answer the commitments settle on: the last one, when every commitment names the same
    option or each change of mind is marked as a revision or conclusion ("Wait, that is wrong.
    The correct answer is D", "On reflection, the answer is A"); ``None`` when the last names two
    options ("either B or D"), when the commitments come back to an earlier answer (degenerate
    repetition: "The answer is A. The answer is B. The answer is A."), or change without a word
    saying so ("The answer is A. The answer is B.")."""
    if len(committed[-1].letters) != 1:
        return None
    single = [g for g in committed if len(g.letters) == 1]
    runs = [[single[0]]]  # consecutive commitments to the same letter
    for group in single[1:]:
        if group.letters == runs[-1][-1].letters:
            runs[-1].append(group)
        else:
            runs.append([group])
    letters = [run[0].letters[0] for run in runs]
    if len(set(letters)) != len(letters):  # back to an earlier answer: it never settles
        return None
    for before, after in zip(runs, runs[1:]):
        if not REVISION.search(text, _sentences_before(text, after[0].start, before[-1].end), after[0].start):
            return None
    return letters[-1]


def _sentences_before(text: str, start: int, floor: int) -> int:
    """Where the second sentence before the one holding ``start`` begins (not before ``floor``):
    a revision is marked there ("... wait, no. A is the paper bag. The answer is B.") or in the
    commitment's own sentence, not anywhere earlier."""
    ends = [m.end() for m in SENTENCE_END.finditer(text, floor, start) if text[m.end():start].strip()]
    return ends[-3] if len(ends) >= 3 else floor


@dataclass(frozen=True)
class Reader:
    """The pipeline's settings. ``fuzzy_threshold`` (0-100): the similarity above which the
    answer section's text counts as naming an option's text, beating every other option by
    ``fuzzy_margin`` (misspellings and light paraphrase clear it; an unrelated sentence does not);
    option texts shorter than ``fuzzy_min_length`` ("Mars", "54") are matched exactly only;
    ``distinctive_words``: options that share most of their words (PIQA's two solutions) are told
    apart by the words that differ."""

    fuzzy_threshold: float = FUZZY_THRESHOLD
    fuzzy_margin: float = FUZZY_MARGIN
    fuzzy_min_length: int = FUZZY_MIN_LENGTH
    distinctive_words: bool = True

    def decide(self, text: str, options: Sequence[str], fuzzy: bool) -> str | None | _Nothing:
        """Steps 3 to 5 on one text (the answer section, or the whole response)."""
        return resolve(text, read_groups(text, options, opener=True, fuzzy=fuzzy, reader=self), option_letters(len(options)))

    def __call__(self, response: str, options: Sequence[str]) -> str | None:
        """The option letter the response commits to, or ``None`` when it commits to none."""
        text = clean(response[:MAX_CHARS])
        section = answer_section(text)
        if section is not None:
            verdict = self.decide(section, options, fuzzy=True)
            if verdict is not NOTHING:
                return verdict
        verdict = self.decide(text, options, fuzzy=False)
        return None if verdict is NOTHING else verdict


def extract_final(response: str, options: Sequence[str], reader: Reader | None = None) -> str | None:
    """The option letter the response commits to (read by ``reader``, the defaults' if none), or
    ``None`` when it commits to none."""
    return (reader or Reader())(response, options)
