"""The paper's experiment as one resumable command, ``interp reproduce``, in the paper's order:

1. the fine-tuned pair (without and with attention dropout): taken from ``--tuned``, the shipped
   pair for the default base, or trained into ``<out>/tuned``;
2. the attention analyses of Figures 2-5 on base, tuned and tuned-with-dropout: the study pages on
   one example, and the measures of :mod:`interp.analysis.survey` on ``--examples`` held-out ones
   (``<out>/analyses/measures.json``);
3. CoT accuracy, the baseline against each method, on MMLU (the first ``--limit`` questions of every
   subject), PIQA and SIQA, for each model, in ``<out>/accuracy/<layout>/<model>/<benchmark>/``
   (the harness's results folders; ``<layout>``: paper or chat, ``--layout``);
4. log-likelihood accuracy, the same comparison with nothing generated (each option scored in
   lm-evaluation-harness's forms, :mod:`interp.accuracy.loglik`): MMLU (``--scored-limit`` per
   subject) by letter and by cloze, PIQA and SIQA (``--scored-questions``, default all) by cloze, in
   ``<out>/accuracy/<form>/<model>/<benchmark>/`` (``<form>``: letter or cloze);
5. the reproduction page (:mod:`interp.reproduction.page`): the paper's claims beside what was
   measured, every method's accuracy difference from the baseline, and the accuracy tables.

``--scoring`` chooses steps 3 (generate) and 4 (letter, cloze).

Each step is skipped when its output exists: the pair's ``training.json`` files, ``measures.json``,
and the harness's own resume, question by question. ``<out>/reproduce.json`` records the settings
that shape steps 1 and 2, and each accuracy folder's ``run.json`` those of its run, so a rerun with
other settings is refused, naming the setting, instead of mixing two runs. The paper's prompt and
the chat template write to separate folders, so one run can hold both. Every invocation's time
per step is appended to ``<out>/steps.json``.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence, TYPE_CHECKING

from interp.accuracy.benchmarks import BENCHMARKS, FILE_BENCHMARKS
from interp.accuracy.runner import Shard
from interp.config import ReproduceConfig
from interp.files import hold, rank_lock, read_json, refuse_other_run, write_atomic
from interp.report.page import Page, Report
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel
    from interp.accuracy.methods import Method

Loader = Callable[[str, str], "InterpModel"]  # (what to load, the option that named it) -> model
SETTINGS = "reproduce.json"
STEPS = "steps.json"
MEASURES = Path("analyses") / "measures.json"
PAIR = {"tuned": "without-dropout", "tuned-dropout": "with-dropout"}  # `interp finetune --pair`'s folders
# Step 4's forms and the benchmarks scored in each (lm-evaluation-harness's tasks: mmlu;
# mmlu_continuation, piqa, social_iqa).
SCORED_FORMS = {form: tuple(name for name in FILE_BENCHMARKS if form in BENCHMARKS[name].forms)
                for form in ("letter", "cloze")}
STUDY_LABELS = {"base": "base", "tuned": "tuned", "tuned-dropout": "tuned with dropout"}


ACCURACY = "accuracy"  # <out>/accuracy/<layout or form>/<model>/<benchmark>/: one harness folder each


def accuracy_folder(out: Path, how: str, model: str, benchmark: str) -> Path:
    """``how``: the prompt's layout (paper, chat) or the log-likelihood form (letter, cloze)."""
    return out / ACCURACY / how / model / benchmark


def accuracy_folders(out: Path) -> list[tuple[str, str, str, Path]]:
    """Every accuracy folder with a summary, in name order, as (layout or form, model, benchmark, folder)."""
    found = sorted(p.parent for p in (out / ACCURACY).glob("*/*/*/summary.json"))
    return [(f.parent.parent.name, f.parent.name, f.name, f) for f in found]


def settings(config: ReproduceConfig) -> dict[str, object]:
    """What shapes steps 1 and 2 (each accuracy folder's ``run.json`` checks step 3's own)."""
    from interp.shipped import BASE

    return {"model": config.model or BASE, "tuned": config.tuned, "examples": config.examples, "ratio": config.ratio,
            "steps": config.steps if config.model and not config.tuned else None}


def record_settings(out: Path, record: dict[str, object]) -> None:
    """Write ``reproduce.json``, or refuse a run whose settings differ from the one already there."""
    path = out / SETTINGS
    if path.is_file():
        refuse_other_run(read_json(path), record, lambda key, was, now: (
            f"{out} holds a reproduction run with --{key.replace('_', '-')} {was!r}, this run has {now!r}; resuming "
            f"would mix the two. Use another --out, or delete {out / SETTINGS} and what the changed setting shaped"),
            UsageError)
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record, indent=2))


class Steps:
    """Each step's wall time in this invocation, appended to ``steps.json`` as it ends."""

    def __init__(self, out: Path, command: str, write: bool = True) -> None:
        self.path, self.write = out / STEPS, write
        history = read_json(self.path) if self.path.is_file() else []
        self.run = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
                    "seconds": {}}
        self.history = [*history, self.run]

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"step {name}", flush=True)
        started = time.perf_counter()
        yield
        self.run["seconds"][name] = round(time.perf_counter() - started, 1)
        if self.write:
            write_atomic(self.path, json.dumps(self.history, indent=2))


def reproduce(config: ReproduceConfig, load: Loader, report: Report | None, command: str = "interp reproduce",
              shard: Shard = Shard()) -> None:
    """Run every step in order, each skipped where its output exists (see the module's text).
    Under torchrun (``shard.world > 1``) the ranks share step 3's questions out; steps 1 and 2 must
    have run before (one process, or ``--tuned``), and rank 0 alone writes step 4 and ``report``
    (``None`` on the other ranks)."""
    out = config.out
    if shard.world > 1 and not (out / MEASURES).is_file():
        raise UsageError(f"under torchrun only step 3 (CoT accuracy) is shared out, and {out / MEASURES} does not "
                         "exist yet: run steps 1 and 2 once without torchrun (`interp reproduce` with the same "
                         "options, interrupted when step 3 starts, or to the end), then torchrun")
    with hold(out, name=rank_lock(shard.rank)):
        _reproduce(config, load, report, command, shard)


def _reproduce(config: ReproduceConfig, load: Loader, report: Report | None, command: str, shard: Shard) -> None:
    out = config.out
    if shard.rank == 0:
        record_settings(out, settings(config))
    steps = Steps(out, command, write=shard.rank == 0)
    with steps.step("1 fine-tuned pair"):
        sources = fine_tuned_pair(config)
    with steps.step("2 attention analyses"):
        if report is not None:
            analyses(config, sources, load, report)
    if "generate" in config.scoring:
        with steps.step("3 CoT accuracy"):
            accuracy(config, sources, load, shard)
    forms = [form for form in SCORED_FORMS if form in config.scoring]
    if forms:
        with steps.step("4 log-likelihood accuracy"):
            scored_accuracy(config, sources, load, forms, shard)
    if report is None:
        return
    with steps.step("5 reproduction page"):
        for page in pages_of(out):
            report.add(page)


def fine_tuned_pair(config: ReproduceConfig) -> dict[str, str]:
    """What each of the three models loads from: the base, and the pair (step 1)."""
    from interp.shipped import BASE, TUNED, TUNED_DROPOUT, adapter

    if config.tuned:
        folder = Path(config.tuned)
        missing = [name for name in PAIR.values() if not (folder / name).is_dir()]
        if missing:
            raise UsageError(f"--tuned {folder} lacks {', '.join(missing)}: give the folder `interp finetune --pair` "
                             "wrote (without-dropout/ and with-dropout/)")
        pair = {label: folder / name for label, name in PAIR.items()}
    elif config.model is None:
        pair = {"tuned": adapter(TUNED), "tuned-dropout": adapter(TUNED_DROPOUT)}
    else:
        from interp.train.config import FinetuneConfig
        from interp.train.finetune import pair as train_pair

        folder = config.out / "tuned"
        pair = {label: folder / name for label, name in PAIR.items()}
        if not all((path / "training.json").is_file() for path in pair.values()):
            training = FinetuneConfig(model=config.model, steps=config.steps, held_out=config.examples)
            train_pair(training, folder, command=f"interp reproduce (step 1) --model {config.model}", cache=config.cache)
    return {"base": config.model or BASE, **{label: str(path) for label, path in pair.items()}}


def _examples(model: InterpModel, n: int) -> list:
    """``n`` held-out structured questions as examples (the paper's layout: instruction, question
    up to ``Analysis:``, reference answer), alternating families."""
    from interp.accuracy.prompts import instruction
    from interp.studies.base import Example
    from interp.accuracy.structured import FAMILIES, take

    per_family = [take("held_out", 0, -(-n // len(FAMILIES)), (family,)) for family in FAMILIES]
    questions = [q for group in zip(*per_family) for q in group][:n]
    return [Example.from_text(model, instruction(len(q.options)), q.short_prompt, q.completion) for q in questions]


def analyses(config: ReproduceConfig, sources: dict[str, str], load: Loader, report: Report) -> None:
    """Step 2: the study pages on the default example and the survey's measures on held-out ones."""
    from interp.analysis.anchors import detect_anchors
    from interp.analysis.survey import survey
    from interp.shipped import default_example
    from interp.studies.ablation import ablation_study
    from interp.studies.anchors import anchor_study
    from interp.studies.attention import attention_study
    from interp.studies.base import Example
    from interp.studies.finetuning import finetuning_study
    from interp.studies.removal import removal_span, removal_study

    path = config.out / MEASURES
    if path.is_file():
        print(f"  {path} exists: analyses skipped", flush=True)
        return
    models = {label: load(source, "--model" if label == "base" else "--tuned") for label, source in sources.items()}
    tuned = models["tuned"]
    example = Example.from_text(tuned, *default_example())
    anchors = detect_anchors(tuned, example.ids, prompt_range=(0, example.prompt_stop), ratio=config.ratio)
    report.add(attention_study(tuned, example))
    report.add(anchor_study(tuned, example, anchors)[0])
    report.add(ablation_study(tuned, example, anchors))
    report.add(removal_study(tuned, example))
    report.add(finetuning_study(models["base"], {STUDY_LABELS[k]: models[k] for k in PAIR}, example, config.ratio))
    examples = _examples(models["base"], config.examples)
    span = removal_span(tuned.cfg.n_layers)
    measures = {label: asdict(survey(model, examples, span, ratio=config.ratio)) for label, model in models.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"examples": len(examples), "span": span, "ratio": config.ratio,
                                   "models": sources, "measures": measures}, indent=2))


def _chosen(config: ReproduceConfig, benchmarks: Sequence[str], limit: int | None,
            questions: int | None) -> dict[str, tuple[list, dict]]:
    """Each benchmark's questions: the first ``limit`` of each subject where it has subjects
    (MMLU), the others' first ``questions``."""
    from interp.accuracy.harness import benchmark_items

    return {benchmark: benchmark_items(benchmark, str(Path(config.data) / benchmark),
                                       config.subjects if BENCHMARKS[benchmark].subjects else None,
                                       limit if BENCHMARKS[benchmark].subjects else questions)
            for benchmark in benchmarks}


RELEASED_H = 31  # the released code's last layer index, hard-coded ("last layer idx is 31 for LLaMA-7B")


def with_released_h(methods: Sequence[Method], released_h: bool, n_layers: int) -> list[Method]:
    """``methods``, and with ``released_h`` on a model deeper than 32 layers the emulation at the
    released code's h = 31 too (on 32 layers h = 31 is the default; on fewer, not a layer)."""
    from interp.accuracy.methods import parse_method

    if not released_h:
        return list(methods)
    if n_layers <= RELEASED_H + 1:
        print(f"  --released-h: this model's last layer is {n_layers - 1}, so h = {RELEASED_H} is "
              f"{'the default' if n_layers == RELEASED_H + 1 else 'not one of its layers'}; not run", flush=True)
        return list(methods)
    return [*methods, parse_method(f"emulation:last_layer={RELEASED_H}")]


def accuracy(config: ReproduceConfig, sources: dict[str, str], load: Loader, shard: Shard = Shard()) -> None:
    """Step 3: every model's CoT accuracy on every benchmark, baseline against each method."""
    from interp.accuracy.harness import evaluate
    from interp.accuracy.methods import parse_method
    from interp.accuracy.selected import held_out_questions

    methods = [parse_method(spec) for spec in config.method]
    chosen = _chosen(config, config.benchmarks, config.limit, config.questions)
    for label in config.models:
        model = load(sources[label], "--model" if label == "base" else "--tuned")
        here = with_released_h(methods, config.released_h, model.cfg.n_layers)
        for benchmark, (items, source) in chosen.items():
            print(f"  {label} on {benchmark} ({len(items)} questions, {config.layout} prompt)", flush=True)
            evaluate(model, items, accuracy_folder(config.out, config.layout, label, benchmark), methods=here,
                     max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, chat=config.layout == "chat",
                     shard=shard, source={**source, "model": sources[label]},
                     held_out=held_out_questions(benchmark, str(Path(config.data) / benchmark), items))
        del model


def scored_accuracy(config: ReproduceConfig, sources: dict[str, str], load: Loader, forms: Sequence[str],
                    shard: Shard = Shard()) -> None:
    """Step 4: every model's accuracy by log-likelihood, baseline against each method, in each form
    a benchmark has in lm-evaluation-harness (the letter form: MMLU alone)."""
    from interp.accuracy.harness import evaluate
    from interp.accuracy.methods import parse_method
    from interp.accuracy.selected import held_out_questions

    methods = [parse_method(spec) for spec in config.method]
    chosen = _chosen(config, config.benchmarks, config.scored_limit, config.scored_questions)
    for label in config.models:
        model = load(sources[label], "--model" if label == "base" else "--tuned")
        here = with_released_h(methods, config.released_h, model.cfg.n_layers)
        for form in forms:
            for benchmark, (items, source) in chosen.items():
                if benchmark not in SCORED_FORMS[form]:
                    continue
                print(f"  {label} on {benchmark} ({len(items)} questions, scored by {form})", flush=True)
                evaluate(model, items, accuracy_folder(config.out, form, label, benchmark), methods=here,
                         batch_size=config.batch_size, shard=shard, source={**source, "model": sources[label]},
                         scoring=form, held_out=held_out_questions(benchmark, str(Path(config.data) / benchmark), items))
        del model


def pages_of(out: Path) -> list[Page]:
    """Every page step 4 writes (for tests and for rewriting the page alone)."""
    from interp.reproduction.findings import folders
    from interp.reproduction.page import accuracy_pages, reproduction_page

    found = folders(out)  # every folder's answers, read once
    return [*accuracy_pages(found), reproduction_page(out, found)]
