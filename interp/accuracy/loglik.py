"""Zero-shot multiple choice by log-likelihood, as lm-evaluation-harness scores it: each option's
summed log-probability after the question, nothing generated.

Two forms, for any benchmark (lm-evaluation-harness's task definitions where it has one):

- ``letter``: the question with its lettered options, then ``Answer:``; the options are the letters
  (lm-evaluation-harness's ``mmlu``; its subject line for MMLU).
- ``cloze``: the question alone, then the cue; the options are their own text (its ``piqa``,
  ``social_iqa`` and ``mmlu_continuation``; ``Question: ...\\nAnswer:`` for the others).

Two readings per question: ``acc`` (the option with the highest log-likelihood) and ``acc_norm``
(divided by the option's length in characters, as lm-evaluation-harness computes it). Tokens are
lm-evaluation-harness's: the context and the context plus option encoded whole with the
tokenizer's defaults, the option's tokens what the second adds (a trailing space of the context
moved to the option).

A method acts in the whole forward. A method with a prompt range takes the question as the
context writes it (its question, and in the letter form its options): not the task's subject line
and not the answer cue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Sequence, TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from interp.accuracy.benchmarks import BENCHMARKS, OTHER
from interp.accuracy.data import Item
from interp.accuracy.prompts import PromptRange, letters
from interp.accuracy.identity import model_identity
from interp.accuracy.record import ACC, ACC_NORM, SCORED, Answer
from interp.accuracy.runner import Settings, Shard, pending, write_settings
from interp.analysis.selection import Reference
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.decoding.generation import by_interventions, decoder, padded_batch, prefix_length
from interp.edits.intervention import describe
from interp.edits.plan import EditPlan, plan_edits
from interp.model import chat

if TYPE_CHECKING:
    from interp.accuracy.methods import Method
    from interp.model.load import InterpModel

FORMS = ("letter", "cloze")
DELIMITER = " "  # lm-evaluation-harness's target_delimiter: between the context and an option
CHUNK = 64  # questions scored between two writes of their records
OVER_CONTEXT_SCORED = "the context and its longest option exceed the model's context"


@dataclass(frozen=True)
class Choices:
    """One question as lm-evaluation-harness's ``multiple_choice`` request."""

    context: str
    choices: tuple[str, ...]  # what is scored after the context and the delimiter
    question: tuple[int, int]  # the characters of ``context`` that write the question (the prompt range)


def _subject_line(item: Item, form: str) -> str:
    if not BENCHMARKS.get(item.benchmark, OTHER).subject_line:
        return ""
    kind = "multiple choice questions" if form == "letter" else "questions"
    return f"The following are {kind} (with answers) about {item.subject.replace('_', ' ')}.\n\n"


def choices_for(item: Item, form: str) -> Choices:
    """The context and options of ``item`` in ``form`` (see the module's docstring); the cloze
    context is its benchmark's (:attr:`interp.accuracy.benchmarks.Benchmark.cloze`)."""
    if form not in FORMS:
        raise ValueError(f"scoring form {form!r}: choose from {', '.join(FORMS)}")
    head = _subject_line(item, form)
    if form == "letter":
        body = item.question.strip() + "".join(f"\n{letter}. {text}" for letter, text in
                                               zip(letters(len(item.options)), item.options))
        cue, options = "\nAnswer:", tuple(letters(len(item.options)))
    else:
        (body, cue), options = BENCHMARKS.get(item.benchmark, OTHER).cloze(item), item.options
    return Choices(head + body + cue, tuple(options), (len(head), len(head) + len(body)))


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's ``_encode_pair``: the context's ids, and what encoding the two as
    one text adds after them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole, alone = chat.encode(tokenizer, context + continuation), chat.encode(tokenizer, context)
    return alone, whole[len(alone):]


@dataclass(frozen=True)
class Encoded:
    """A question's tokens: the context's, each option's, and the prompt range in the context."""

    context: list[int]
    options: list[list[int]]
    prompt_range: PromptRange  # the question as the context writes it

    @property
    def longest(self) -> int:
        return len(self.context) + max(map(len, self.options))


def encode(model: InterpModel, choices: Choices) -> Encoded:
    pairs = [encode_pair(model.tokenizer, choices.context, DELIMITER + c) for c in choices.choices]
    context = pairs[0][0]
    start, stop = choices.question
    span = (prefix_length(model, context, choices.context[:start]) if start else 0,
            prefix_length(model, context, choices.context[:stop]))
    return Encoded(context, [option for _, option in pairs], PromptRange(*span))


@torch.no_grad()
def option_logprobs(model: InterpModel, questions: Sequence[Encoded], plans: Sequence[EditPlan],
                    batch_size: int = DEFAULT_BATCH_SIZE) -> list[list[float]]:
    """Each question's options' summed log-probabilities under its plan. Where every option is
    one token (letters), one forward of the context reads them all; otherwise one row per option
    (the context and the option less its last token), rows of many questions batched."""
    rows = []  # (question, option or None for all at once, ids)
    for q, question in enumerate(questions):
        if all(len(o) == 1 for o in question.options):
            rows.append((q, None, question.context))
        else:
            rows += [(q, k, (question.context + option)[:-1]) for k, option in enumerate(question.options)]
    out = [[0.0] * len(question.options) for question in questions]
    pad = model.tokenizer.pad_token_id or 0
    device = next(model.parameters()).device
    for group in by_interventions(range(len(rows)), lambda r: plans[rows[r][0]], lambda r: -len(rows[r][2])):
        plan = plans[rows[group[0]][0]]
        for start in range(0, len(group), batch_size):
            chunk = [rows[r] for r in group[start : start + batch_size]]
            ids, left_pad, mask, positions = padded_batch([row[2] for row in chunk], pad, device)
            with decoder(model, plan, left_pad) as forward:
                logprobs = forward(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float().log_softmax(-1)
            for b, (q, k, _) in enumerate(chunk):
                if k is None:
                    for j, option in enumerate(questions[q].options):
                        out[q][j] = float(logprobs[b, -1, option[0]])
                else:
                    option = torch.tensor(questions[q].options[k], device=device)
                    read = logprobs[b, -len(option):].gather(-1, option[:, None])
                    out[q][k] = float(read.sum())
    return out


def references(model: InterpModel, items: Sequence[Item], form: str = "cloze") -> list[Reference]:
    """Each item as this scoring writes it, its right option the reference answer: held-out
    examples for :func:`interp.analysis.selection.select_heads`."""
    out = []
    for item in items:
        encoded = encode(model, choices_for(item, form))
        right = encoded.options[letters(len(item.options)).index(item.answer)]
        out.append(Reference(tuple(encoded.context + right), len(encoded.context), encoded.prompt_range, item.id))
    return out


SELECTION_SEED = 1  # structured questions for head selection: another seed than the runs' (0)


def selection_items(benchmark: str, data: str | Path | None, n: int, *, exclude: Collection[tuple[str, tuple[str, ...]]] = (),
                    pairs: tuple[int, int] | None = None) -> list[Item]:
    """``n`` questions for head selection that runs do not start from: the last ones of each
    subject's file, interleaved (runs take the first ``--limit``), or generated questions of
    another seed than the runs' (on tables of ``pairs`` pairs, the training tables' by default);
    none whose (question, options) is in ``exclude``."""
    from interp.accuracy.structured import TRAINING_PAIRS, held_out_items

    chosen = BENCHMARKS[benchmark]
    if chosen.generated:
        drawn = held_out_items(-(-n // 2), seed=SELECTION_SEED, pairs=pairs or TRAINING_PAIRS)
        return [item for item in drawn if (item.question, item.options) not in exclude][:n]
    by_subject: dict[str, list[Item]] = {}
    for item in chosen.load(data):
        if (item.question, item.options) not in exclude:
            by_subject.setdefault(item.subject, []).append(item)
    tails = [list(reversed(items)) for items in by_subject.values()]
    interleaved = [items[i] for i in range(max(map(len, tails), default=0)) for items in tails if i < len(items)]
    return interleaved[:n]


def readings(logprobs: Sequence[float], choices: Sequence[str]) -> dict[str, str]:
    """``acc`` and ``acc_norm``'s letters (the first of equals, as ``numpy.argmax``)."""
    values = np.asarray(logprobs, dtype=float)
    lengths = np.array([float(len(c)) for c in choices])
    names = letters(len(values))
    return {ACC: names[int(np.argmax(values))], ACC_NORM: names[int(np.argmax(values / lengths))]}


def plan_for(model: InterpModel, method: Method | None, encoded: Encoded) -> EditPlan:
    if method is None:
        return plan_edits(model)
    return plan_edits(model, *method.interventions(model, encoded.context, encoded.prompt_range))


def encoded_items(model: InterpModel, items: Sequence[Item], form: str) -> dict[str, Encoded]:
    """Every item's tokens in ``form``, by id."""
    return {item.id: encode(model, choices_for(item, form)) for item in items}


def over_context(model: InterpModel, encoded: dict[str, Encoded], skip: bool) -> set[str]:
    """The ids whose context and longest option exceed the model's context. Unless ``skip``, any
    such question stops the run before it scores anything, naming the fix."""
    context = int(model.cfg.n_ctx)
    over = {i for i, e in encoded.items() if e.longest > context}
    if over and not skip:
        longest = max(over, key=lambda i: encoded[i].longest)
        raise ValueError(f"{len(over)} of {len(encoded)} questions with their longest option exceed the model's context of "
                         f"{context} tokens (the longest, {longest}, has {encoded[longest].longest}); pass "
                         "--skip-over-context to record them as skipped, or use a model with a longer context")
    return over


def run(model: InterpModel, items: Sequence[Item], out: str | Path, *, variant: str, method: Method | None = None,
        settings: Settings, shard: Shard = Shard(), batch_size: int | str = DEFAULT_BATCH_SIZE,
        skip_over_context: bool = False, progress: bool = True, identity: dict[str, Any] | None = None,
        encoded: dict[str, Encoded] | None = None) -> list[Answer]:
    """Score every item (this shard's share) in ``settings.scoring``'s form under ``method``,
    appending each chunk's records to ``<variant>.jsonl`` as it is scored; a run started again
    skips the ids already there (a kill loses at most one chunk). ``encoded``: the items' tokens
    as :func:`encoded_items` gives them, where the caller has them. Returns the records in item order."""
    out = Path(out)
    form = settings.scoring
    mine, path, done, todo = pending(items, out, variant, settings, shard)
    requests = {item.id: choices_for(item, form) for item in todo}
    encoded = {i: encoded[i] for i in requests} if encoded is not None else encoded_items(model, todo, form)
    over = over_context(model, encoded, skip_over_context)
    out.mkdir(parents=True, exist_ok=True)
    write_settings(out, variant, identity or model_identity(model), method, settings)
    size = batch_size if isinstance(batch_size, int) else DEFAULT_BATCH_SIZE
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), disable=not progress, unit="q", desc=variant)
    started, scored = time.perf_counter(), 0
    with bar, path.open("a", encoding="utf-8") as sink:
        for item in todo:
            if item.id in over:
                done[item.id] = Answer.skip(item, encoded[item.id].longest, OVER_CONTEXT_SCORED, modes=SCORED)
                sink.write(done[item.id].to_line() + "\n")
        bar.update(len(over))
        todo = [item for item in todo if item.id not in over]
        for at in range(0, len(todo), CHUNK):
            part = todo[at : at + CHUNK]
            plans = [plan_for(model, method, encoded[item.id]) for item in part]
            values = option_logprobs(model, [encoded[item.id] for item in part], plans, size)
            for item, plan, logprobs in zip(part, plans, values):
                done[item.id] = Answer.scored(item, logprobs, readings(logprobs, requests[item.id].choices),
                                              prompt_tokens=len(encoded[item.id].context),
                                              interventions=tuple(describe(iv) for iv in plan.interventions))
                sink.write(done[item.id].to_line() + "\n")
            sink.flush()
            scored += len(part)
            bar.update(len(part))
            bar.set_postfix(q_s=f"{scored / (time.perf_counter() - started):.2f}")
    return [done[item.id] for item in mine]
