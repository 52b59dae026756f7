"""Run a benchmark as a baseline and any number of methods; write the results (JSONL per
variant) and their summaries (``summary.json``, ``summary.csv``, ``review.csv``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

from interp.accuracy import stats
from interp.accuracy.data import Item
from interp.accuracy.record import FORCED, Answer
from interp.files import hold, json_text, rank_lock, read_json, write_atomic
from interp.accuracy.identity import check_same_model, claim, model_identity, run_record
from interp.accuracy.methods import Method, method_from_record, parse_method
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.accuracy.runner import (
    Settings, Shard, add_forced, check_context, merge_shards, plan, prompt_tokens, read_results,
    run, synchronise, write_answers,
)
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel

BASELINE = "cot"
SHIFTED = "cot-shifted"  # the baseline with every question's options rotated one place
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
    from interp.accuracy.data import DataError, load_benchmark

    try:
        items = limit_per_subject(load_benchmark(benchmark, data, subjects), limit)
    except DataError as err:
        raise DataError(f"{'--data ' + data if data else '--benchmark ' + benchmark}: {err}") from err
    source = {"benchmark": benchmark, "data": str(Path(data).resolve()) if data else None,
              "subjects": list(subjects) if subjects else None, "limit": limit}
    return items, source


def variant_name(method: Method) -> str:
    return f"{BASELINE}+{method.name}"


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
    source: dict[str, Any] | None = None, shifted: bool = False,
) -> Evaluation | None:
    """The CoT baseline, CoT under each method, and optionally the non-CoT baseline (for computed
    tokens). With ``shifted``, the baseline again (:data:`SHIFTED`) on the questions whose options
    can be reordered, each with its options rotated one place: its paired difference from the
    baseline is what answering by position costs. Returns the answers (merged over shards on rank 0;
    ``None`` on other ranks) and the summary, written once.

    ``max_new_tokens`` defaults to 2048, or what the model's context leaves after the longest
    prompt. Everything is checked (methods, context) before ``out`` is claimed for this run
    (:mod:`interp.accuracy.identity`; ``source`` says how the questions and the model were
    chosen, to name what differs when a resume is refused) and before anything generates."""
    out = Path(out)
    if not items:
        raise UsageError("no questions to run: the benchmark, --subjects and --limit leave none")
    names = [variant_name(m) for m in methods]
    if len(set(names)) != len(names):
        raise UsageError(f"--method: methods {names} name the same variant twice; give each once")
    tokens = {item.id: prompt_tokens(model, item, Settings(chat=chat)) for item in items}
    max_new_tokens = new_tokens_allowed(model, tokens, max_new_tokens)
    cot = Settings(cot=True, chat=chat, max_new_tokens=max_new_tokens)
    check_context(model, items, tokens, max_new_tokens, skip_over_context)
    variants: dict[str, tuple[Method | None, Settings]] = {BASELINE: (None, cot), **{n: (m, cot) for n, m in zip(names, methods)}}
    if shifted:  # after the baseline: its paired difference is the positional bias
        variants = {BASELINE: variants.pop(BASELINE), SHIFTED: (None, dataclasses.replace(cot, shift=1)), **variants}
    if direct:
        variants = {"direct": (None, Settings(cot=False, chat=chat, max_new_tokens=max_new_tokens)), **variants}
    for method in methods:  # every method's parameters are checked on the model before any variant generates
        try:
            plan(model, method, items[0], cot, tokens[items[0].id])
        except ValueError as err:
            raise UsageError(f"--method {method.name}: {err}") from err
    with hold(out, name=rank_lock(shard.rank)):  # until the last record and summary are written
        identity = model_identity(model)  # one pass over the weights, for run.json and every variant's settings
        claim(out, run_record(identity, items, {"chat": chat, "max_new_tokens": max_new_tokens}, source))
        runs = {}
        for name, (method, settings) in variants.items():
            runs[name] = run(model, items, out, variant=name, method=method, settings=settings, shard=shard,
                             batch_size=batch_size, skip_over_context=skip_over_context, progress=progress,
                             tokens=tokens if settings == cot else None, identity=identity)
        if shard.world > 1:
            synchronise(shard)
            if shard.rank != 0:
                return None
            for name, (_, settings) in variants.items():
                merged = read_results(merge_shards(out, name, shard.world))
                runs[name] = [merged[item.id] for item in items if not settings.shift or item.permutable]
        # the folder's summary covers every variant it holds: an earlier run's other --method stays in it
        runs |= {name: list(read_results(out / f"{name}.jsonl").values()) for name in variants_in(out) if name not in runs}
        return Evaluation(runs, write_tables(out, runs))


def variants_in(out: Path) -> list[str]:
    """The variants of a results folder, baseline first, from their settings files."""
    names = sorted(p.name[: -len(".settings.json")] for p in out.glob("*.settings.json"))
    if BASELINE not in names:
        raise FileNotFoundError(f"{out} holds no {BASELINE}.settings.json: not a results folder of `interp accuracy`")
    return [BASELINE] + [n for n in names if n != BASELINE]


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
    for mode in modes:
        for name, records in runs.items():
            agreed = {(r["level"], r["name"]): r["agreement"] for r in stats.agreement(records)} if mode == FORCED else {}
            against = {(r["level"], r["name"]): r for r in stats.compare(runs[BASELINE], records, mode)} \
                if name not in (BASELINE, "direct") and BASELINE in runs else {}
            for row in stats.accuracy(records, mode):
                paired = against.get((row["level"], row["name"]))
                rows.append({"mode": mode, "variant": name, **row, **({
                    "difference": paired["difference"], "difference_ci": paired["difference_ci"],
                    "mcnemar_p": paired["mcnemar_p"], "paired_n": paired["n"],
                } if paired else {"difference": None, "difference_ci": None, "mcnemar_p": None, "paired_n": None}),
                    **({"agreement_with_final": agreed.get((row["level"], row["name"]))} if agreed else {})})
    return {
        "modes": modes, "baseline": BASELINE,
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
                                 *map(as_cell, (r.item.question, " | ".join(r.item.options), r.response))])
    return summary


def as_cell(text: str) -> str:
    """Text from a data file or a model as a spreadsheet cell that stays text: one starting with
    ``= + - @`` (or a tab or carriage return) would be read as a formula (``=HYPERLINK(...)``), so
    it gets a leading apostrophe, which spreadsheets show as nothing."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
