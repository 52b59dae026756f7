"""The model's forced answer (two-stage prompting, Kojima et al. 2022): after its CoT response, an
answer cue, then the next token's distribution restricted to the option letters.

What a response *states* must be read by extraction, which can misread it; what the model
*commits to* when asked for the letter can be read off its logits, exactly. Both are recorded
(the forced answer as the ``forced`` reading, beside the extraction modes), so accuracy can be
read from the model's own committed answer, and how often its stated answer agrees with it is
known: the disagreements are the responses to read by hand.

The cue is the paper's answer header, ``\\nResponse:``, which its instruction asks the model to
write before its final answer. Where the response already holds it, the letter is read where the
model wrote its last one (the response is cut there): asked a second time after "Response: A",
a model answers a question it was never trained on, and often with another letter. Elsewhere the
cue is appended to the response. The forced pass runs with the variant's interventions active,
batched, on the prompt as the model read it (its chat template included).

A tokenizer that does not write each option letter as one token of its own after the cue (small
ones: stories260K's 512 tokens write " A" as a lone space, then A) leaves the choice unreadable
from one distribution: such a question gets no forced answer, and its stated answers are what the
page reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TYPE_CHECKING

import torch

from interp.accuracy.prompts import letters
from interp.edits.intervention import Intervention
from interp.edits.plan import EditPlan
from interp.model import chat
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.decoding.generation import by_interventions, decoder, padded_batch

if TYPE_CHECKING:
    from interp.model.load import InterpModel

CUE = "\nResponse:"


@dataclass(frozen=True)
class Forced:
    letter: str
    probability: float  # of that letter, among the option letters only


@dataclass(frozen=True)
class Answered:
    """What the forced pass needs of one answered question."""

    prompt: str  # the prompt text as the model read it (its template included)
    response: str
    n_options: int
    interventions: EditPlan | tuple[Intervention, ...] = ()  # a plan, where the run made one


def cued_text(question: Answered) -> str:
    """The prompt and the response up to the model's own last cue, or all of it, then the cue."""
    own = question.response.rfind(CUE)
    return question.prompt + (question.response[:own] if own >= 0 else question.response) + CUE


def cued_tokens(tokenizer, question: Answered) -> tuple[list[int], list[int]] | None:
    """The ids to read the next token after, and the id of each option letter there: the tokens
    of ``cued_text + " X"`` for every letter X share a beginning (the text up to the cue, and a
    lone space token in some tokenizers); the first token after it tells the letters apart.
    ``None`` where that token is not the letter alone for every letter: a lone space that begins
    some letters (stories260K's " A") would read the start of any word as that letter."""
    text = cued_text(question)
    versions = [chat.encode(tokenizer, f"{text} {letter}") for letter in letters(question.n_options)]
    shared = 0
    while all(len(v) > shared + 1 for v in versions) and len({v[shared] for v in versions}) == 1:
        shared += 1
    choices = [v[shared] for v in versions]
    if any(tokenizer.decode([c]).strip() != x for c, x in zip(choices, letters(question.n_options))):
        return None
    return versions[0][:shared], choices


@torch.no_grad()
def forced_answers(model: InterpModel, questions: Sequence[Answered],
                   batch_size: int = DEFAULT_BATCH_SIZE) -> list[Forced | None]:
    """Each question's forced answer: the option letter the model puts most probability on after
    its response and the cue, under the question's interventions; ``None`` where the tokenizer
    cannot tell the letters apart there (:func:`cued_tokens`). Questions with the same
    interventions share batches (left-padded, longest first)."""
    encoded = [cued_tokens(model.tokenizer, q) for q in questions]
    readable = [i for i, e in enumerate(encoded) if e is not None]
    out: list[Forced | None] = [None] * len(questions)
    pad = model.tokenizer.pad_token_id or 0
    device = next(model.parameters()).device
    for members in by_interventions(readable, lambda i: questions[i].interventions,
                                    lambda i: -len(encoded[i][0])):
        plan = questions[members[0]].interventions
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            ids, left_pad, mask, positions = padded_batch([encoded[i][0] for i in chunk], pad, device)
            with decoder(model, plan, left_pad) as forward:
                logits = forward(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1].float()
            for row, index in enumerate(chunk):
                choices = encoded[index][1]
                probabilities = logits[row, choices].softmax(-1)
                best = int(probabilities.argmax())
                out[index] = Forced(letters(len(choices))[best], float(probabilities[best]))
    return out
