"""The accuracy harness: batched greedy CoT generation, answer extraction, resumable results.

Every finished example is appended to ``<out>/<variant>.jsonl`` as soon as its batch completes
(one line each, flushed), with its raw response and the prediction of every extraction mode.
Started again, a run skips the ids already there: a run killed at any moment loses at most the
batch in flight, repeats nothing, and ends with the same results as an uninterrupted one
(batched generation equals one-at-a-time generation). Questions are batched with others that
run the same interventions (per-question methods such as anchor ablation differ by question).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

import torch
from tqdm import tqdm

from interp.accuracy.data import DataError, Item
from interp.accuracy.record import Answer
from interp.accuracy.methods import Method
from interp.accuracy.prompts import COT_CUE, PromptRange, format_prompt, instruction
from interp.accuracy import forced
from interp.model import chat
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.decoding.generation import (
    by_interventions, covering_length, decode_until_eos, generate_stream, prefix_length,
)
from interp.edits.intervention import describe
from interp.edits.plan import EditPlan, plan_edits
from interp.accuracy.identity import model_identity
from interp.files import read_json, refuse_other_run, write_atomic
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel


SCORINGS = ("generate", "letter", "cloze")


@dataclass(frozen=True)
class Settings:
    """How prompts are written and answers generated; recorded beside the results, and a resumed
    run must use the same (the batch size may change: it does not change results)."""

    cot: bool = True
    chat: bool = False
    max_new_tokens: int = 2048
    # Options moved this many places (Item.rotated), on the questions whose options can be reordered
    # alone: a model that reads them answers as before, one that answers by position does not.
    shift: int = 0
    # "generate": CoT (or direct) answers generated and read; "letter" or "cloze": each option's
    # log-likelihood, nothing generated (interp.accuracy.loglik).
    scoring: str = "generate"
    # False: CoT prompts without the paper's instruction, as a model fine-tuned on such rows was
    # taught (interp finetune --no-instruction); the prompt range is then the question.
    instruction: bool = True

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring={self.scoring!r}: choose from {', '.join(SCORINGS)}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens}: give a whole number of at least 1")


@dataclass(frozen=True)
class Shard:
    """Which slice of the items this process takes (data parallelism over GPUs or machines)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_torchrun(cls) -> "Shard":
        # torchrun tells each process its place through these variables.
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    def device(self, device: str) -> str:
        """The device this rank runs on: ``cuda`` means this machine's GPU of the rank's local
        number (ranks beyond the GPUs share them, round robin); an explicit device is kept."""
        if self.world == 1 or device != "cuda" or not torch.cuda.is_available():
            return device
        return f"cuda:{int(os.environ.get('LOCAL_RANK', self.rank)) % torch.cuda.device_count()}"

    def take(self, items: Sequence[Item]) -> list[Item]:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is outside a world of {self.world}")
        return list(items[self.rank :: self.world])

    def suffix(self) -> str:
        return "" if self.world == 1 else f".rank{self.rank}-of-{self.world}"


def prompt_for(item: Item, settings: Settings, tokenizer: Any) -> str:
    """The question in the paper's layout; with ``settings.chat``, as the user's turn of the
    model's own chat template."""
    body = _body(item, settings, tokenizer)
    return chat.user_turn(tokenizer, body) if settings.chat else body


def _body(item: Item, settings: Settings, tokenizer: Any) -> str:
    """The prompt in the paper's layout, before any chat template."""
    return format_prompt(chat.literal(tokenizer, item.question), [chat.literal(tokenizer, o) for o in item.options],
                         cot=settings.cot, instructed=settings.instruction)


def prompt_range(model: InterpModel, item: Item, settings: Settings, ids: Sequence[int]) -> PromptRange:
    """Where the question's instruction (its prompt range) starts and ends, in tokens of its
    prompt: from 0 in the paper's layout, after the template's system turn and user header in a
    chat template; its ``question``: from there to the answer cue. Without the instruction, both
    are the question (as in log-likelihood scoring)."""
    if not settings.cot:
        raise ValueError("the non-CoT prompt has no instruction, so it has no prompt range to intervene on")
    prompt = prompt_for(item, settings, model.tokenizer)
    at = prompt.index(_body(item, settings, model.tokenizer).lstrip())  # a template may trim the turn's start
    start = prefix_length(model, list(ids), prompt[:at]) if at else 0
    head = len(instruction(len(item.options))) if settings.instruction else 0
    stop = prefix_length(model, list(ids), prompt[: at + head]) if head else start
    question = (stop, covering_length(model, list(ids), prompt[: prompt.rindex(COT_CUE)]))
    return PromptRange(start, stop, question) if head else PromptRange(question)


@dataclass(frozen=True)
class Prompt:
    """A question as the model is asked it under some settings, built once: the text, its token
    ids, and its prompt range (``None`` where the prompt has no instruction: non-CoT)."""

    text: str
    ids: list[int]
    range: PromptRange | None


def prompt_of(model: InterpModel, item: Item, settings: Settings) -> Prompt:
    text = prompt_for(item, settings, model.tokenizer)
    ids = chat.encode(model.tokenizer, text)
    return Prompt(text, ids, prompt_range(model, item, settings, ids) if settings.cot else None)


def check_context(model: InterpModel, items: Sequence[Item], tokens: dict[str, list[int]], max_new_tokens: int,
                  skip: bool) -> set[str]:
    """The ids whose prompt plus ``max_new_tokens`` exceeds the model's context. Unless ``skip``,
    any such question stops the run before it generates anything, naming the fix."""
    context = int(model.cfg.n_ctx)
    over = {item.id for item in items if len(tokens[item.id]) + max_new_tokens > context}
    if over and not skip:
        longest = max(items, key=lambda item: len(tokens[item.id]))
        room = context - len(tokens[longest.id])
        fix = f"lower --max-new-tokens to at most {room}, " if room > 0 else ""
        raise ValueError(
            f"{len(over)} of {len(items)} prompts plus --max-new-tokens {max_new_tokens} exceed the model's context "
            f"of {context} tokens (the longest, {longest.id}, has {len(tokens[longest.id])} tokens); {fix}"
            "pass --skip-over-context to record those questions as skipped, or use a model with a longer context"
        )
    return over


def results_path(out: Path, variant: str, shard: Shard = Shard()) -> Path:
    return out / f"{variant}{shard.suffix()}.jsonl"


def read_results(path: Path) -> dict[str, Answer]:
    """Finished examples by id. A last line cut off by a kill is ignored (it is redone); any other
    line that is not a record stops the read, naming it, rather than being dropped in silence."""
    done = {}
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, text in enumerate(lines, start=1):
            try:
                answer = Answer.from_line(text)
                done[answer.id] = answer
            except (ValueError, TypeError, KeyError):
                if number == len(lines):
                    continue
                raise DataError(f"{path}:{number} is not a result record; delete that line (its question is then "
                                "answered again on the next run) or restore the file") from None
    return done


def drop_partial_line(path: Path) -> None:
    """Cut a last line left unfinished by a kill, so new records start on a line of their own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


class BatchSize:
    """The batch size of a run: a number, or ``"auto"`` (what fits the device's free memory); it
    halves on a CUDA out-of-memory error, so a long run goes on with smaller batches."""

    def __init__(self, size: int | str, model: InterpModel, longest_prompt: int, max_new_tokens: int, n_rows: int) -> None:
        if size == "auto":
            from interp.accuracy.memory import fit_batch

            fit = fit_batch(model, longest_prompt, max_new_tokens, max(1, n_rows))
            print(fit.explain(), flush=True)
            size = fit.batch_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch size {size!r}: give a positive whole number or 'auto'")
        self.size = size

    def halve(self) -> None:
        self.size = max(1, self.size // 2)
        print(f"out of memory: batch size halved to {self.size}; the questions in flight are retried", flush=True)


def pending(items: Sequence[Item], out: Path, variant: str, settings: Settings,
            shard: Shard) -> tuple[list[Item], Path, dict[str, Answer], list[Item]]:
    """Where a variant's run stands: this shard's items (options rotated where ``settings.shift``
    asks), its results file (a line cut off by a kill dropped), the records already there by id,
    and the items still to do."""
    if settings.shift:
        items = [item.rotated(settings.shift) for item in items if item.permutable]
    mine = shard.take(items)
    path = results_path(out, variant, shard)
    drop_partial_line(path)
    done = read_results(path)
    return mine, path, done, [item for item in mine if item.id not in done]


def run(
    model: InterpModel,
    items: Sequence[Item],
    out: str | Path,
    *,
    variant: str,
    method: Method | None = None,
    settings: Settings = Settings(),
    shard: Shard = Shard(),
    batch_size: int | str = DEFAULT_BATCH_SIZE,
    skip_over_context: bool = False,
    progress: bool = True,
    prompts: dict[str, Prompt] | None = None,
    identity: dict[str, Any] | None = None,
) -> list[Answer]:
    """Answer every item (this shard's share) under ``method`` (``None``: no intervention),
    appending results; returns them in item order. ``prompts`` (by id, under ``settings``) and
    ``identity`` (the model's :func:`~interp.accuracy.identity.model_identity`): if already known."""
    out = Path(out)
    mine, path, done, todo = pending(items, out, variant, settings, shard)
    prompts = {item.id: prompts[item.id] if prompts else prompt_of(model, item, settings) for item in todo}
    tokens = {item.id: prompts[item.id].ids for item in todo}
    over = check_context(model, todo, tokens, settings.max_new_tokens, skip_over_context)
    out.mkdir(parents=True, exist_ok=True)
    write_settings(out, variant, identity or model_identity(model), method, settings)
    todo_now = [item for item in todo if item.id not in over]
    plans = {item.id: plan(model, method, prompts[item.id])
             for item in tqdm(todo_now, disable=not progress or not method, desc=f"{variant}: set-up")}
    eos = model.tokenizer.eos_token_id
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), disable=not progress, unit="q", desc=variant)
    generated, started = 0, time.perf_counter()
    # The bar closes on the way out of an error too, so the error's message is the last line printed.
    with bar, path.open("a", encoding="utf-8") as sink:
        for item in todo:
            if item.id in over:
                done[item.id] = Answer.skip(item, len(tokens[item.id]))
                sink.write(done[item.id].to_line() + "\n")
        bar.update(len(over))
        size = BatchSize(batch_size, model, max((len(tokens[i.id]) for i in todo_now), default=0),
                         settings.max_new_tokens, len(todo_now))
        for group in by_interventions(todo_now, lambda item: plans[item.id], lambda item: len(tokens[item.id])):
            while group:
                # Rows keep the batch full: a finished question's slot goes to the next waiting one.
                stream = generate_stream(model, [tokens[item.id] for item in group], max_new_tokens=settings.max_new_tokens,
                                         batch_size=size.size, interventions=plans[group[0].id])
                finished: set[int] = set()
                try:
                    for index, row in stream:
                        item = group[index]
                        answer = _answer(model, item, row, eos, len(tokens[item.id]), plans[item.id])
                        sink.write(answer.to_line() + "\n")
                        sink.flush()
                        done[item.id] = answer
                        finished.add(index)
                        generated += answer.generated_tokens
                        bar.update(1)
                        bar.set_postfix(tok_s=f"{generated / (time.perf_counter() - started):.1f}", batch=size.size)
                except torch.cuda.OutOfMemoryError:
                    if size.size == 1:
                        raise
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    size.halve()  # the questions in flight were not written: they are retried, with fewer rows
                group = [item for index, item in enumerate(group) if index not in finished]
    answers = [done[item.id] for item in mine]
    if any(not a.skipped and not a.has_forced for a in answers):
        answers = add_forced(model, answers, method, settings, size.size, plans=plans, prompts=prompts,
                             progress=progress)
        write_answers(path, answers)  # whole, through a temporary file: a kill keeps the records as they were
    return answers


def add_forced(model: InterpModel, answers: Sequence[Answer], method: Method | None, settings: Settings,
               batch_size: int = DEFAULT_BATCH_SIZE, *, plans: dict[str, EditPlan] | None = None,
               prompts: dict[str, Prompt] | None = None, progress: bool = True) -> list[Answer]:
    """Each answered record with the model's forced answer (:mod:`interp.accuracy.forced`) under
    the variant's interventions (``plans`` and ``prompts``, by id, where already made); records
    that have one, were skipped, or whose option letters the tokenizer writes alike, as they are."""
    todo = [a for a in answers if not a.skipped and not a.has_forced]
    plans, prompts = plans or {}, dict(prompts or {})
    questions = []
    for answer in tqdm(todo, disable=not progress or not method or all(a.id in plans for a in todo),
                       desc="forced answer: set-up"):
        prompt = prompts.get(answer.id) or prompt_of(model, answer.item, settings)
        edit_plan = plans.get(answer.id) or plan(model, method, prompt)
        questions.append(forced.Answered(prompt.text, answer.response or "", len(answer.item.options), edit_plan))
    found = dict(zip((a.id for a in todo), forced.forced_answers(model, questions, batch_size)))
    return [a.with_forced(found[a.id].letter, found[a.id].probability) if found.get(a.id) else a for a in answers]


def plan(model: InterpModel, method: Method | None, prompt: Prompt) -> EditPlan:
    """The interventions a question is answered with, checked against the model: bad parameters
    fail here, before generation; generation and the forced pass apply this plan."""
    if method is None:
        return plan_edits(model)
    if prompt.range is None:
        raise ValueError("the non-CoT prompt has no instruction, so it has no prompt range to intervene on")
    return plan_edits(model, *method.interventions(model, prompt.ids, prompt.range))


def _answer(model: InterpModel, item: Item, row: torch.Tensor, eos: int, prompt_tokens: int,
            edit_plan: EditPlan) -> Answer:
    ids = row.tolist()
    n = ids.index(eos) + 1 if eos in ids else len(ids)  # the EOS itself is a computed token
    return Answer.read(item, decode_until_eos(model, row, eos), prompt_tokens=prompt_tokens, generated_tokens=n,
                       interventions=tuple(describe(iv) for iv in edit_plan.interventions))


def write_answers(path: Path, answers: Sequence[Answer]) -> Path:
    """Write a results file whole, through a temporary file (a kill leaves the old one)."""
    write_atomic(path, "".join(answer.to_line() + "\n" for answer in answers))
    return path


def write_settings(out: Path, variant: str, identity: dict[str, Any], method: Method | None, settings: Settings) -> None:
    # What the model is, not where it was loaded from or runs: a run may resume from another path or device.
    record = json.loads(json.dumps({"variant": variant, "model": identity, "settings": asdict(settings),
                                    "method": method.record() if method else None}))
    path = out / f"{variant}.settings.json"
    old = read_json(path) if path.is_file() else record
    if isinstance(old.get("settings"), dict):  # written before a field existed: that field at its default
        old["settings"] = asdict(Settings(**old["settings"]))
    refuse_other_run(old, record, lambda key, was, now: (
        f"{path} records a different model or settings for variant {variant!r} ({key}: {was} there, {now} now); "
        "use another results folder or variant name, or delete the old results to start afresh"), UsageError)
    write_atomic(path, json.dumps(record, indent=2))  # every rank of a sharded run writes it


def merge_shards(out: str | Path, variant: str, world: int) -> Path:
    """Combine the rank files of a sharded run into ``<variant>.jsonl`` (rank 0 calls this)."""
    out = Path(out)
    merged: dict[str, Answer] = {}
    for rank in range(world):
        part = results_path(out, variant, Shard(rank, world))
        if not part.is_file():
            raise FileNotFoundError(f"{part} is missing: rank {rank} has not finished")
        merged |= read_results(part)
    return write_answers(results_path(out, variant), list(merged.values()))


def synchronise(shard: Shard) -> None:
    """Wait for every rank, when running under torchrun with more than one process. Nothing but
    the barrier crosses between ranks, so it is gloo's on CPU and GPU alike (NCCL refuses two ranks
    on one GPU). A rank that fails or is killed ends the run: torchrun stops the others."""
    if shard.world > 1 and torch.distributed.is_available():
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")
        torch.distributed.barrier()


def tell_torchrun(err: BaseException) -> None:
    """Under torchrun, leave this rank's error where torchrun's summary reads it, so that the run's
    root cause names the rank and its message (not the ranks torchrun then stopped)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(err)
