"""Run a benchmark as a baseline and any number of methods; write the results (JSONL per
variant) and their summaries (``summary.json``, ``summary.csv``, ``review.csv``)."""

from __future__ import annotations

import csv
import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TYPE_CHECKING

from interp.accuracy import stats
from interp.accuracy.data import Item
from interp.accuracy.prompts import letters
from interp.accuracy.record import FORCED, Answer
from interp.files import hold, json_text, rank_lock, read_json, write_atomic
from interp.accuracy.identity import check_same_model, model_identity, record_run, run_record
from interp.accuracy.methods import HeadsToSelect, Method, method_from_record, parse_method
from interp.accuracy.selected import HeldOut, check_held_out, prepare
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.accuracy.runner import (
    Settings, Shard, add_forced, check_context, merge_shards, plan, prompt_of, read_results,
    run, synchronise, write_answers,
)
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel

BASELINE = "cot"
SHIFTED = "cot-shifted"  # the baseline with every question's options rotated one place
# A folder scored by log-likelihood names its baseline after the form: "letter", "cloze".
BASELINES = (BASELINE, "letter", "cloze")


def baseline_name(scoring: str) -> str:
    """The baseline variant of a scoring: ``cot`` for generated answers, else the form's name."""
    return BASELINE if scoring == "generate" else scoring


def shifted_name(baseline: str) -> str:
    return f"{baseline}-shifted"


def baseline_of(names: Sequence[str]) -> str:
    """Which of a folder's variants is its baseline."""
    found = [b for b in BASELINES if b in names]
    if not found:
        raise FileNotFoundError(f"no baseline ({', '.join(BASELINES)}) among the variants {sorted(names)}")
    return found[0]
DEFAULT_NEW_TOKENS = 2048


def limit_per_subject(items: Sequence[Item], limit: int | None) -> list[Item]:
    if limit is None:
        return list(items)
    if limit < 1:
        raise UsageError(f"--limit {limit}: give a whole number of at least 1")
    seen: dict[str, int] = {}
    kept = []
    for item in items:
        seen[item.subject] = seen.get(item.subject, 0) + 1
        if seen[item.subject] <= limit:
            kept.append(item)
    return kept


def benchmark_items(benchmark: str, data: str | None, subjects: Sequence[str] | None,
                    limit: int | None) -> tuple[list[Item], dict[str, Any]]:
    """A benchmark's questions (the first ``limit`` of each subject) and how they were chosen, as
    ``run.json`` records it (``data`` made absolute)."""
    from interp.accuracy.benchmarks import load_benchmark
    from interp.accuracy.data import DataError

    try:
        items = limit_per_subject(load_benchmark(benchmark, data, subjects), limit)
    except DataError as err:
        raise DataError(f"{'--data ' + data if data else '--benchmark ' + benchmark}: {err}") from err
    source = {"benchmark": benchmark, "data": str(Path(data).resolve()) if data else None,
              "subjects": list(subjects) if subjects else None, "limit": limit}
    return items, source


def variant_name(method: Method, baseline: str = BASELINE) -> str:
    return f"{baseline}+{method.name}"


def new_tokens_allowed(model: InterpModel, tokens: dict[str, list[int]], max_new_tokens: int | None) -> int:
    """``max_new_tokens`` as given, or by default ``DEFAULT_NEW_TOKENS`` capped to what the
    model's context leaves after the longest prompt (the tiny models' 512, say)."""
    if max_new_tokens is not None:
        if max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens {max_new_tokens}: give a whole number of at least 1")
        return max_new_tokens
    room = int(model.cfg.n_ctx) - max((len(ids) for ids in tokens.values()), default=0)
    if room < 1:
        raise UsageError(f"the longest prompt fills the model's context of {model.cfg.n_ctx} tokens, leaving no room "
                         "to answer; use a model with a longer context, or fewer or shorter questions")
    if room < DEFAULT_NEW_TOKENS:
        print(f"max new tokens: {room} (the model's context of {model.cfg.n_ctx} tokens less the longest prompt; "
              f"--max-new-tokens sets it)", flush=True)
    return min(DEFAULT_NEW_TOKENS, room)


@dataclass(frozen=True)
class Evaluation:
    """What the harness produced: every variant's answers, in question order, and the summary
    written beside them (``summary.json``)."""

    runs: dict[str, list[Answer]]
    summary: dict[str, Any]

    def __repr__(self) -> str:  # the records would fill a notebook cell
        mode = self.summary["modes"][0]
        overall = [f"{r['variant']} {100 * r['accuracy']:.1f}%" for r in self.summary["rows"]
                   if r["mode"] == mode and r["level"] == "overall"]
        n = len(next(iter(self.runs.values()), []))
        return f"Evaluation({n} questions, accuracy by {mode}: {', '.join(overall)})"


def evaluate(
    model: InterpModel, items: Sequence[Item], out: str | Path, *, methods: Sequence[Method] = (parse_method("emulation"),),
    max_new_tokens: int | None = None, batch_size: int | str = DEFAULT_BATCH_SIZE, direct: bool = False, chat: bool = False,
    shard: Shard = Shard(), skip_over_context: bool = False, progress: bool = True,
    source: dict[str, Any] | None = None, shifted: bool = False, scoring: str = "generate",
    held_out: HeldOut | None = None, instruction: bool = True,
) -> Evaluation | None:
    """The CoT baseline, CoT under each method, and optionally the non-CoT baseline (for computed
    tokens). With ``shifted``, the baseline again (:data:`SHIFTED`) on the questions whose options
    can be reordered, each with its options rotated one place: its paired difference from the
    baseline is what answering by position costs. With ``scoring`` ``letter`` or ``cloze``,
    nothing is generated: every variant scores each option by log-likelihood
    (:mod:`interp.accuracy.loglik`), its baseline named after the form. Returns the answers (merged over shards on rank 0;
    ``None`` on other ranks) and the summary, written once.

    ``max_new_tokens`` defaults to 2048, or what the model's context leaves after the longest
    prompt. Everything is checked (methods, context) before ``out`` records this run
    (:mod:`interp.accuracy.identity`; ``source`` says how the questions and the model were
    chosen, to name what differs when a resume is refused) and before anything generates. A
    method with ``heads=auto`` has its heads chosen once the folder records the run, on ``held_out``
    questions (:mod:`interp.accuracy.selected`; :func:`~interp.accuracy.selected.held_out_questions`
    makes them). Without ``instruction``, CoT prompts leave out the paper's instruction (for a model
    fine-tuned without it) and the methods' prompt range is the question."""
    out = Path(out)
    if not items:
        raise UsageError("no questions to run: the benchmark, --subjects and --limit leave none")
    baseline = baseline_name(scoring)
    names = [variant_name(m, baseline) for m in methods]
    if len(set(names)) != len(names):
        raise UsageError(f"--method: methods {names} name the same variant twice; give each once")
    if scoring != "generate":
        return _evaluate_scored(model, items, out, methods, names, scoring, batch_size=batch_size, direct=direct,
                                chat=chat, max_new_tokens=max_new_tokens, shard=shard, skip_over_context=skip_over_context,
                                progress=progress, source=source, shifted=shifted, held_out=held_out,
                                instruction=instruction)
    prompts = {item.id: prompt_of(model, item, Settings(chat=chat, instruction=instruction)) for item in items}  # built once, for every CoT variant
    tokens = {item_id: prompt.ids for item_id, prompt in prompts.items()}
    max_new_tokens = new_tokens_allowed(model, tokens, max_new_tokens)
    cot = Settings(cot=True, chat=chat, max_new_tokens=max_new_tokens, instruction=instruction)
    check_context(model, items, tokens, max_new_tokens, skip_over_context)
    variants: dict[str, tuple[Method | None, Settings]] = {BASELINE: (None, cot), **{n: (m, cot) for n, m in zip(names, methods)}}
    if shifted:  # after the baseline: its paired difference is the positional bias
        variants = {BASELINE: variants.pop(BASELINE), SHIFTED: (None, dataclasses.replace(cot, shift=1)), **variants}
    if direct:
        variants = {"direct": (None, Settings(cot=False, chat=chat, max_new_tokens=max_new_tokens)), **variants}
    check = lambda method: plan(model, method, prompts[items[0].id])
    _check_methods(methods, check, held_out)  # every method's parameters are checked on the model before any variant generates
    with hold(out, name=rank_lock(shard.rank)):  # until the last record and summary are written
        identity = model_identity(model)  # one pass over the weights, for run.json and every variant's settings
        record_run(out, run_record(identity, items, {"chat": chat, "max_new_tokens": max_new_tokens}, source))
        variants |= {name: (method, cot) for name, method in
                     _prepared(model, methods, names, out, held_out, "cloze", progress, check).items()}
        runs = {}
        for name, (method, settings) in variants.items():
            runs[name] = run(model, items, out, variant=name, method=method, settings=settings, shard=shard,
                             batch_size=batch_size, skip_over_context=skip_over_context, progress=progress,
                             prompts=prompts if settings == cot else None, identity=identity)
        return _finish(out, items, runs, variants, shard)


def _finish(out: Path, items: Sequence[Item], runs: dict[str, list[Answer]],
            variants: dict[str, tuple[Method | None, Settings]], shard: Shard) -> Evaluation | None:
    """Merge the shards (rank 0; ``None`` on the others), add the folder's other variants (an earlier
    run's other --method stays in its summary), and write the summaries."""
    if shard.world > 1:
        synchronise(shard)
        if shard.rank != 0:
            return None
        for name, (_, settings) in variants.items():
            merged = read_results(merge_shards(out, name, shard.world))
            runs[name] = [merged[item.id] for item in items if not settings.shift or item.permutable]
    others = {name: list(read_results(out / f"{name}.jsonl").values()) for name in variants_in(out) if name not in runs}
    runs |= finished(out, {**runs, **others}, others)
    return Evaluation(runs, write_tables(out, runs))


def _check_methods(methods: Sequence[Method], check: Callable[[Method], Any], held_out: HeldOut | None = None) -> None:
    """Plan each method on the first question (heads still to select: once chosen, their
    held-out questions now)."""
    check_held_out(methods, held_out)
    for method in methods:
        if isinstance(method, HeadsToSelect):
            continue
        try:
            check(method)
        except ValueError as err:
            raise UsageError(f"--method {method.name}: {err}") from err


def _prepared(model: InterpModel, methods: Sequence[Method], names: Sequence[str], out: Path,
              held_out: HeldOut | None, form: str, progress: bool, check: Callable[[Method], Any]
              ) -> dict[str, Method]:
    """The variants whose heads were chosen now, under their names, checked on the model."""
    if not any(isinstance(method, HeadsToSelect) for method in methods):
        return {}
    chosen = {name: method for name, method, was in zip(names, prepare(model, methods, names, out, held_out, form,
                                                                      progress), methods) if method is not was}
    _check_methods(list(chosen.values()), check)
    return chosen


def refuse_generation_options(scoring: str, *, direct: bool, chat: bool, max_new_tokens: bool,
                              no_instruction: bool = False) -> None:
    """Raise naming the options that apply to generated answers only, when ``scoring`` generates nothing."""
    given = [option for option, value in (("--direct", direct), ("--chat", chat), ("--max-new-tokens", max_new_tokens),
                                          ("--no-instruction", no_instruction)) if value]
    if scoring != "generate" and given:
        raise UsageError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to generated answers; --scoring {scoring} generates nothing "
                         "(each option is scored by its log-likelihood): leave them out, or use --scoring generate")


def _evaluate_scored(model: InterpModel, items: Sequence[Item], out: Path, methods: Sequence[Method],
                     names: Sequence[str], form: str, *, batch_size: int | str, direct: bool, chat: bool,
                     max_new_tokens: int | None, shard: Shard, skip_over_context: bool, progress: bool,
                     source: dict[str, Any] | None, shifted: bool, held_out: HeldOut | None,
                     instruction: bool) -> Evaluation | None:
    """:func:`evaluate` by log-likelihood: the same folder, identity, resume and summaries."""
    from interp.accuracy import loglik

    refuse_generation_options(form, direct=direct, chat=chat, max_new_tokens=max_new_tokens is not None,
                              no_instruction=not instruction)
    settings = Settings(cot=False, scoring=form)
    variants: dict[str, tuple[Method | None, Settings]] = {form: (None, settings)}
    if shifted:
        variants[shifted_name(form)] = (None, dataclasses.replace(settings, shift=1))
    variants |= {name: (method, settings) for name, method in zip(names, methods)}
    encoded = loglik.encoded_items(model, items, form)  # once, for every variant whose options keep their places
    loglik.over_context(model, encoded, skip_over_context)  # before anything is recorded or selected
    check = lambda method: loglik.plan_for(model, method, encoded[items[0].id])
    _check_methods(methods, check, held_out)
    with hold(out, name=rank_lock(shard.rank)):
        identity = model_identity(model)
        record_run(out, run_record(identity, items, {"scoring": form}, source))
        chosen = _prepared(model, methods, names, out, held_out, form, progress, check)
        variants |= {name: (method, settings) for name, method in chosen.items()}
        runs = {name: loglik.run(model, items, out, variant=name, method=method, settings=settings, shard=shard,
                                 batch_size=batch_size, skip_over_context=skip_over_context, progress=progress,
                                 identity=identity, encoded=None if settings.shift else encoded)
                for name, (method, settings) in variants.items()}
        return _finish(out, items, runs, variants, shard)


def variants_in(out: Path) -> list[str]:
    """The variants of a results folder, baseline first, from their settings files."""
    names = sorted(p.name[: -len(".settings.json")] for p in out.glob("*.settings.json"))
    try:
        baseline = baseline_of(names)
    except FileNotFoundError:
        raise FileNotFoundError(f"{out} holds no {BASELINE}.settings.json (nor letter's or cloze's): not a results "
                                "folder of `interp accuracy`") from None
    return [baseline] + [n for n in names if n != baseline]


def finished(out: Path, runs: dict[str, list[Answer]], checked: Sequence[str] | None = None) -> dict[str, list[Answer]]:
    """``runs`` without the variants among ``checked`` (default: all) that have not answered every
    question the baseline did (the permutable ones, for a shifted variant): a run in progress, or
    killed, whose rows would compare other questions. A warning names each one left out and how
    to finish it."""
    baseline = baseline_of(list(runs))
    asked = [a.item for a in runs[baseline]]
    kept = dict(runs)
    for name in checked if checked is not None else list(runs):
        shifted = bool(read_json(out / f"{name}.settings.json")["settings"].get("shift"))
        missing = {item.id for item in asked if not shifted or item.permutable} - {a.id for a in runs[name]}
        if name != baseline and missing:
            del kept[name]
            warnings.warn(f"{out}: {name} has not answered {len(missing)} of the baseline's questions (its run is "
                          "unfinished), so the summaries leave it out; run its --method into this folder again to "
                          "finish it", stacklevel=2)
    return kept


def rescore_folder(out: str | Path, model: InterpModel | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                   methods: dict[str, Method] | None = None) -> Evaluation:
    """Re-extract every response of a results folder with the current extractors and rewrite its
    records and summaries; nothing is generated. With ``model`` (the one that answered: checked
    against ``run.json``), every record gets the model's forced answer afresh (where the cue is
    read may have changed since it was written), under each variant's interventions as its
    settings file records them, or as ``methods`` (variant -> method) gives them: a method of your
    own, which no settings file can rebuild. Every variant's method is resolved before any file is
    rewritten, and the files are rewritten only once every variant is done."""
    out = Path(out)
    if model is not None:
        check_same_model(out, model_identity(model))
    with hold(out):
        names = variants_in(out)
        if model is not None and names[0] != BASELINE:
            raise UsageError(f"{out} was scored by log-likelihood ({names[0]}): it holds no responses to read again "
                             "and no forced answers to add; leave out --model to rewrite its summaries, or run the "
                             "benchmark again into a new folder to score it afresh")
        recipes = {name: _recorded_method(out, name, (methods or {}).get(name)) for name in names} if model is not None else {}
        runs = {}
        for name in names:
            answers = [answer.rescored() for answer in read_results(out / f"{name}.jsonl").values()]
            if model is not None:
                settings, method = recipes[name]
                answers = add_forced(model, [answer.unforced() for answer in answers], method, settings, batch_size)
            runs[name] = answers
        for name, answers in runs.items():
            write_answers(out / f"{name}.jsonl", answers)
        runs = finished(out, runs)
        return Evaluation(runs, write_tables(out, runs))


def _recorded_method(out: Path, variant: str, given: Method | None) -> tuple[Settings, Method | None]:
    """A variant's settings and method, as its settings file records them (or ``given``)."""
    recorded = read_json(out / f"{variant}.settings.json")
    if given is not None or not recorded.get("method"):
        return Settings(**recorded["settings"]), given
    try:
        return Settings(**recorded["settings"]), method_from_record(recorded["method"])
    except ValueError:
        kind = recorded["method"].get("kind")
        raise UsageError(
            f"{out}: variant {variant!r} was answered with a method of kind {kind!r}, which is not one of --method's "
            f"kinds, so its interventions cannot be rebuilt from its settings file; nothing was rewritten. Register "
            f"the kind (interp.register_method; runs made after that rebuild themselves), or rescore from Python "
            f"giving the method: rescore_folder(folder, model, methods={{{variant!r}: method}})"
        ) from None


def summarise(runs: dict[str, Sequence[Answer]], out: Path | None = None) -> dict[str, Any]:
    """Every variant's accuracy and parse rate per mode and group, and each method's difference
    from the CoT baseline (interval, McNemar p), ``final`` mode first."""
    settings = {name: read_json(out / f"{name}.settings.json")
                for name in runs if out is not None and (out / f"{name}.settings.json").is_file()}
    rows = []
    modes = stats.modes_of(runs)
    baseline = baseline_of(list(runs))
    for mode in modes:
        for name, records in runs.items():
            agreed = {(r["level"], r["name"]): r["agreement"] for r in stats.agreement(records)} if mode == FORCED else {}
            against = {(r["level"], r["name"]): r for r in stats.compare(runs[baseline], records, mode)} \
                if name not in (baseline, "direct") else {}
            for row in stats.accuracy(records, mode):
                paired = against.get((row["level"], row["name"]))
                rows.append({"mode": mode, "variant": name, **row, **({
                    "difference": paired["difference"], "difference_ci": paired["difference_ci"],
                    "mcnemar_p": paired["mcnemar_p"], "paired_n": paired["n"],
                } if paired else {"difference": None, "difference_ci": None, "mcnemar_p": None, "paired_n": None}),
                    **({"agreement_with_final": agreed.get((row["level"], row["name"]))} if agreed else {})})
    return {
        "modes": modes, "baseline": baseline,
        "variants": {name: (settings.get(name) or {}).get("method") for name in runs},
        "rows": rows,
        "review": {name: len(stats.disagreements(records, modes)) for name, records in runs.items()},
        "computed_tokens": stats.computed_tokens(runs),
    }


def write_tables(out: Path, runs: dict[str, Sequence[Answer]]) -> dict[str, Any]:
    """summary.json, summary.csv (one row per mode, variant and group) and review.csv (the
    responses whose readings disagree, or that ``final`` found no answer in); returns the summary.
    Answers are taken in id order, so a rescored folder (file order) and a fresh run (item order)
    summarise alike."""
    runs = {name: sorted(records, key=lambda r: r.id) for name, records in runs.items()}
    text = json_text(summarise(runs, out))
    write_atomic(out / "summary.json", text)
    summary = json.loads(text)  # as written: lists, not tuples
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mode", "variant", "level", "name", "n", "skipped", "parse_rate", "accuracy",
                         "accuracy_ci_low", "accuracy_ci_high", "difference", "difference_ci_low",
                         "difference_ci_high", "mcnemar_p", "agreement_with_final"])
        for r in summary["rows"]:
            ci = r["difference_ci"] or (None, None)
            writer.writerow([r["mode"], r["variant"], r["level"], r["name"], r["n"], r["skipped"], r["parse_rate"],
                             r["accuracy"], *r["accuracy_ci"], r["difference"], *ci, r["mcnemar_p"],
                             r.get("agreement_with_final")])
    modes = summary["modes"]
    with (out / "review.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", "id", "answer", *(f"pred_{m}" for m in modes), "question", "options", "response"])
        for name, records in runs.items():
            for r in stats.disagreements(records, modes):
                writer.writerow([name, r.id, r.item.answer, *(r.predictions.get(m) for m in modes),
                                 *map(as_cell, (r.item.question, " | ".join(r.item.options), shown(r)))])
    return summary


def shown(answer: Answer) -> str:
    """What a reader reads of an answer: its response, or each option's log-likelihood."""
    if answer.response is not None:
        return answer.response
    values = answer.logprobs or ()
    return " | ".join(f"{letter} {value:.3f}" for letter, value in zip(letters(len(values)), values)) if values else ""


def as_cell(text: str) -> str:
    """Text from a data file or a model as a spreadsheet cell that stays text: one starting with
    ``= + - @`` (or a tab or carriage return) would be read as a formula (``=HYPERLINK(...)``), so
    it gets a leading apostrophe, which spreadsheets show as nothing."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
