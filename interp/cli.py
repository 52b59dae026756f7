"""The ``interp`` command: every study on any model ``load_model`` accepts, or on the shipped default
(SmolLM2-135M-Instruct fine-tuned on the structured dataset, :mod:`interp.shipped`).

    interp run                       # every study on the shipped SmolLM2 pair -> reports/index.html
    interp run --model PATH          # the same on a LLaMA-2 directory, GGUF file or llama2.c checkpoint
    interp anchors --help            # one study, with its options
    interp accuracy --benchmark mmlu --data ../shared/data/mmlu --model PATH --limit 5
    interp reproduce --data ../shared/data   # the paper's experiment: fine-tuned pair, analyses, accuracy, claims
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

from interp import validation
from interp.accuracy.benchmarks import BENCHMARKS, FILE_BENCHMARKS
from interp.config import (
    EXAMPLE, HARD_PAIRS, LOAD, AccuracyConfig, FinetuneRun, LoadConfig, ReproduceConfig, StudyConfig, add_options,
    from_args,
)
from interp.decoding import DEFAULT_BATCH_SIZE
from interp.files import read_json
from interp.model.catalog import looks_like_path
from interp.shipped import TUNED
from interp.studies import STUDIES
from interp.validation import UsageError

# What the commands compute with (torch, transformers, TransformerLens) is imported in the function
# that runs the command, so that building the options and answering --help takes no second.
if TYPE_CHECKING:
    from interp.accuracy.methods import Method
    from interp.model.load import InterpModel
    from interp.report.page import Page, Report
    from interp.studies.base import Example


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported on one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's options, from the fields of its configuration (:mod:`interp.config`)."""
    parser = Parser(prog="interp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    every = sub.add_parser("run", help="every study, one report with an index", description="every study, one report with an index")
    add_options(every, StudyConfig)  # `interp run` takes every study's options
    for study in STUDIES.values():
        if study.command:
            add_options(sub.add_parser(study.name, help=study.help, description=study.help), StudyConfig,
                        (*LOAD, *EXAMPLE, *study.options))
    add_options(sub.add_parser(
        "accuracy", help="CoT accuracy, baseline vs methods (MMLU, PIQA, SIQA, structured)",
        description="CoT accuracy of the baseline and of each --method, with answer extraction in three modes (final, "
                    "paper, strict) and parse rates; resumable; under torchrun each rank takes a shard and rank 0 "
                    "merges."), AccuracyConfig)
    add_options(sub.add_parser(
        "finetune", help="fine-tune a model on structured CoT rows or your own (LoRA or full)",
        description="Fine-tune any model `load_model` accepts on the structured CoT dataset (the paper's layout) or a "
                    "JSONL of prompt/response rows, loss on the responses; writes a Hugging Face directory with "
                    "training.json. Resumable: run the same command again after a kill."), FinetuneRun)
    add_options(sub.add_parser(
        "reproduce", help="the paper's experiment end to end: fine-tuned pair, attention analyses, CoT accuracy on "
                          "MMLU/PIQA/SIQA, the claims page",
        description="The paper's pipeline in order: (1) the fine-tuned pair, (2) the attention analyses of Figures "
                    "2-5 on base, tuned and tuned with dropout, (3) CoT accuracy, baseline vs each method, on MMLU "
                    "(the first --limit questions of every subject), PIQA and SIQA for each model, (4) a page setting "
                    "each of the paper's claims beside what was measured. Resumable: run the same command again after "
                    "a kill; each step is skipped where its output exists. --quick checks the pipeline in minutes."),
        ReproduceConfig)
    return parser


DEFAULT_NAME = f"shipped {TUNED} (SmolLM2-135M-Instruct + structured LoRA)"
CONFIGS = {"accuracy": AccuracyConfig, "finetune": FinetuneRun, "reproduce": ReproduceConfig}  # every other command: StudyConfig


MODEL_ONLY = ("--tokenizer", "--n-devices")  # how to load --model: meaningless for the shipped model
RESUME = {
    "accuracy": "the finished questions are kept in the results folder: run the same command again to resume",
    "finetune": "run the same command again to resume from the last checkpoint (every 25 steps)",
    "reproduce": "run the same command again to resume: finished steps are skipped, finished questions kept",
}


def check_options(command: str, config: StudyConfig | AccuracyConfig | FinetuneRun) -> None:
    """Paths and modes, checked before any model loads: every path exists (or can be written),
    nothing is written over its own input, and no option is silently ignored."""
    if isinstance(config, FinetuneRun):
        validation.model_path("--model", config.model)
        if config.data != "structured":
            validation.existing("--data", config.data, "a JSONL file of prompt/response rows (or 'structured')")
        if config.no_instruction and config.data != "structured":
            raise UsageError("--no-instruction applies to --data structured only; your own rows are used as written")
        validation.output_folder("--out", config.out)
        if looks_like_path(config.model):
            validation.not_inside("--out", config.out, "--model", config.model)
        if config.full and config.lora is not None:
            raise UsageError("--lora and --full exclude each other: LoRA trains adapters of that rank, --full every "
                             "weight; give one")
        return
    if isinstance(config, ReproduceConfig):
        _check_reproduce(config)
        return
    validation.require_model(config, MODEL_ONLY)
    if config.model:
        validation.model_path("--model", config.model)
    if config.tokenizer:
        validation.existing("--tokenizer", config.tokenizer, "a SentencePiece .model file or a tokenizer directory")
    validation.output_folder("--out", config.out)
    if isinstance(config, AccuracyConfig):
        _check_accuracy(config)
        return
    for option in validation.given(config, ("--tuned", "--compare-model")):
        validation.model_path(option, getattr(config, option[2:].replace("-", "_")))
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    selecting = [f"--{name.replace('_', '-')}" for name in ("select", "select_from", "select_data", "select_examples")
                 if getattr(config, name) != defaults[name]]
    if selecting and not config.for_method:
        raise UsageError(f"{', '.join(selecting)} choose how --for selects heads; add --for act or --for pasta "
                         "(interp heads), or leave them out")
    if config.select_data:
        validation.existing("--select-data", config.select_data, f"the {config.select_from} files (see ../shared/data)")
        if BENCHMARKS[config.select_from].generated:
            raise UsageError(f"--select-data names a benchmark's files: add --select-from {_listed(FILE_BENCHMARKS, 'or')} "
                             f"({config.select_from}'s questions are generated)")
    if command == "finetuning" and config.model and not config.tuned:
        raise UsageError("interp finetuning with --model needs --tuned DIR: the model directory `interp finetune` "
                         "wrote (or its --pair folder); --model is the base it was tuned from")
    _check_table_pairs(config)


def _check_reproduce(config: ReproduceConfig) -> None:
    if config.examples > MAX_EXAMPLES:
        raise UsageError(f"--examples {config.examples}: the attention analyses keep every example's patterns in "
                         f"memory, and more than {MAX_EXAMPLES} would not fit a machine's; give at most {MAX_EXAMPLES}")
    validation.require_model(config, MODEL_ONLY)
    if config.model:
        validation.model_path("--model", config.model)
    if config.tuned:
        validation.existing("--tuned", config.tuned, "the folder `interp finetune --pair` wrote")
    validation.existing("--data", config.data, "a folder holding mmlu/, piqa/ and siqa/ (as ../shared/data)")
    for benchmark in config.benchmarks:
        validation.existing("--data", str(Path(config.data) / benchmark), f"the {benchmark} files, in {benchmark}/ "
                            "inside --data (as ../shared/data holds them)")
    validation.output_folder("--out", config.out)


def _listed(names: Sequence[str], last: str) -> str:
    """``a``, ``a or b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


MAX_GENERATED = 5_000  # structured questions per family one run may ask for
MAX_EXAMPLES = 1_000  # held-out examples of reproduce's attention analyses


def _check_table_pairs(config: StudyConfig | AccuracyConfig) -> None:
    pairs = config.table_pairs
    if pairs is not None and pairs[0] > pairs[1]:
        raise UsageError(f"--table-pairs {pairs[0]} {pairs[1]}: the fewest comes after the most; give FEWEST <= MOST")


def _check_accuracy(config: AccuracyConfig) -> None:
    if config.rescore:
        wrong = validation.given(config, ("--data", "--subjects", "--limit", "--max-new-tokens", "--table-pairs"))
        if wrong:
            raise UsageError(f"--rescore re-reads the responses already in --results and generates nothing, so "
                             f"{', '.join(wrong)} do not apply; leave them out (--model, the model that answered, "
                             "adds its forced answer where a record lacks it)")
        if config.model:
            validation.model_path("--model", config.model)
        return
    from interp.accuracy.harness import refuse_generation_options

    refuse_generation_options(config.scoring, direct=config.direct, chat=config.chat,
                              max_new_tokens=config.max_new_tokens is not None, no_instruction=config.no_instruction)
    chosen = BENCHMARKS[config.benchmark]
    if chosen.generated:
        wrong = validation.given(config, ("--data", "--subjects"))
        if wrong:
            raise UsageError(f"{', '.join(wrong)} apply to {_listed(FILE_BENCHMARKS, 'and')}; the {chosen.name} "
                             "benchmark's questions are generated (choose them with --limit and --table-pairs)")
        if (config.limit or 0) > MAX_GENERATED:
            raise UsageError(f"--limit {config.limit}: the {chosen.name} benchmark's questions are generated, each "
                             f"built before the run starts; at most {MAX_GENERATED} per family (a week of CoT on a "
                             f"CPU) are offered: give at most {MAX_GENERATED}")
    else:
        if config.table_pairs is not None:
            generated = [name for name, b in BENCHMARKS.items() if b.generated]
            raise UsageError(f"--table-pairs applies to --benchmark {_listed(generated, 'or')} only, not {config.benchmark}")
        if config.subjects and not chosen.subjects:
            with_subjects = [name for name, b in BENCHMARKS.items() if b.subjects]
            raise UsageError(f"--subjects applies to --benchmark {_listed(with_subjects, 'or')} only, not "
                             f"{config.benchmark}")
        if config.data:
            validation.existing("--data", config.data, f"the {config.benchmark} files (see ../shared/data)")
    _check_table_pairs(config)
    validation.output_folder("--results", config.results_folder)


def check_against_model(config: StudyConfig, model: InterpModel) -> None:
    """The options that name layers or heads, against the loaded model, before any study computes."""
    from interp.edits.intervention import check_layers
    from interp.edits.interventions import TopLayerEmulation
    from interp.studies.removal import removal_span

    n, heads = model.cfg.n_layers, model.cfg.n_heads
    if config.zoom_layers:
        check_layers(config.zoom_layers, n, "--zoom-layers", "give layers in that range")
    removal_span(n, config.first, config.last)
    try:
        TopLayerEmulation(config.alpha, config.threshold, config.last_layer).check(n)
    except ValueError as err:  # the emulation's own check, named by the option it is about
        option = f"--last-layer {config.last_layer}" if "last_layer=" in str(err) else f"--alpha {config.alpha}"
        raise UsageError(f"{option}: {err}") from None
    for layer, head in config.show:
        validation.check_head("--show", layer, head, n, heads)
    if config.for_method and not config.select <= n * heads:
        raise UsageError(f"--select {config.select}: select_heads: k={config.select}; give 1 to {n * heads} (the "
                         "model's heads)")


def _load(config: LoadConfig, path: str | None, option: str = "--model") -> InterpModel:
    from interp.accuracy.runner import Shard
    from interp.model.load import ModelLoadError, load_model
    from interp.shipped import load_default

    device = Shard.from_torchrun().device(config.device)  # under torchrun, each rank its own GPU
    if path is None:
        return load_default(dtype=config.dtype, device=device, cache=config.cache)
    try:
        return load_model(path, tokenizer=config.tokenizer, dtype=config.dtype, device=device,
                          n_devices=config.n_devices, cache=config.cache)
    except ModelLoadError as err:
        raise ModelLoadError(f"{option}: {err}") from err


def _rescore(config: AccuracyConfig, model: InterpModel | None) -> Page:
    from interp.accuracy.harness import rescore_folder
    from interp.report.accuracy import accuracy_page, page_title

    folder = config.results_folder
    if not folder.is_dir():
        raise UsageError(f"--results {folder} does not exist; pass the results folder of an earlier run")
    record = folder / "run.json"
    answered = read_json(record).get("source", {}).get("benchmark") if record.is_file() else None
    if answered is not None and answered != config.benchmark:
        raise UsageError(f"--benchmark {config.benchmark}: {folder} holds answers to {answered} (its run.json "
                         f"says so); give --benchmark {answered}")
    batch = config.batch_size if isinstance(config.batch_size, int) else DEFAULT_BATCH_SIZE
    evaluation = rescore_folder(folder, model, batch)  # rewrites the records and the summaries
    return accuracy_page(page_title(evaluation.summary["baseline"], config.benchmark), evaluation.summary,
                         evaluation.runs, f"accuracy-{config.benchmark}.html")


def _accuracy(config: AccuracyConfig, methods: list[Method], model: InterpModel) -> Page | None:
    from interp.accuracy.harness import benchmark_items
    from interp.accuracy.selected import held_out_questions
    from interp.accuracy.structured import held_out_items
    from interp.studies.accuracy import accuracy_report

    pairs = None
    if BENCHMARKS[config.benchmark].generated:
        pairs = tuple(config.table_pairs or HARD_PAIRS)
        try:
            items = held_out_items(config.limit or 50, pairs=pairs)
        except ValueError as err:
            raise UsageError(f"--table-pairs {pairs[0]} {pairs[1]}: {err}") from None
        source = {"benchmark": config.benchmark, "limit": config.limit or 50, "table_pairs": list(pairs)}
    else:
        items, source = benchmark_items(config.benchmark, config.data, config.subjects, config.limit)
    return accuracy_report(model, items, config.benchmark, config.results_folder, methods=methods,
                           max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, direct=config.direct,
                           chat=config.chat, skip_over_context=config.skip_over_context, shifted=config.shifted,
                           source={**source, "model": model_source(config)}, scoring=config.scoring,
                           held_out=held_out_questions(config.benchmark, config.data, items, pairs),
                           instruction=not config.no_instruction)


def model_source(config: LoadConfig) -> str:
    """The model as the user named it, made absolute when it is a path (a hub name stays a name)."""
    if config.model is None:
        return f"shipped {TUNED}"
    return str(Path(config.model).expanduser().resolve()) if looks_like_path(config.model) else config.model


def _finetune(config: FinetuneRun) -> None:
    from interp.train.finetune import finetune, pair

    training = config.training()
    command = " ".join(["interp", *sys.argv[1:]])
    written = pair(training, config.out, command=command, cache=config.cache) if config.pair else \
        (finetune(training, config.out, command=command, cache=config.cache),)
    for folder in written:
        record = json.loads((Path(folder) / "training.json").read_text())
        print(f"{folder}: final loss {record['final_loss']:.3f}", record.get("held_out_accuracy", {}).get("all", ""))



def _example(config: StudyConfig, model: InterpModel) -> Example:
    from interp.shipped import default_example
    from interp.studies.base import Example

    default_prompt, default_dialogue, default_answer = default_example()
    own = config.prompt_range is not None or config.dialogue is not None
    # A dialogue of one's own has no reference answer: continuations then start at its end.
    try:
        example = Example.from_text(model, default_prompt if config.prompt_range is None else config.prompt_range,
                                    default_dialogue if config.dialogue is None else config.dialogue,
                                    default_answer if config.dialogue is None else "")
    except ValueError as err:
        raise UsageError(f"--prompt-range/--dialogue: {err}") from None
    length = len(example.tokens)
    start = length if example.answer_start is None else example.answer_start
    what = "the example (--prompt-range and --dialogue)" if own else \
        "the default example (the paper's instruction and a held-out question with its answer)"
    context = int(model.cfg.n_ctx)
    room = context - start
    validation.check_fits_context(f"{what}, continued for --max-new-tokens {config.max_new_tokens} from token {start},",
                                  max(length, start + config.max_new_tokens), context,
                                  "pass a shorter --prompt-range and --dialogue" + (
                                      f", or lower --max-new-tokens to at most {room}" if room > 0 and length <= context
                                      else ""))
    return example


def _studies(command: str, config: StudyConfig, model: InterpModel, example: Example, report: Report) -> None:
    from interp.studies.base import Context

    print(f"{len(example.tokens)} tokens, prompt range 0-{example.prompt_stop}")
    context = Context(model, example, config, lambda path, option: _load(config, path, option))
    for name, study in STUDIES.items():
        if command == name or (command == "run" and study.in_run(config)):
            started = time.perf_counter()
            report.add(study.run(context))  # written at once: a later study's failure does not lose it
            print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)


def _method(spec: str) -> Method:
    from interp.accuracy.methods import parse_method

    try:
        return parse_method(spec)
    except ValueError as err:
        raise UsageError(f"--method {spec}: {err}") from None


def _message(err: BaseException) -> str:
    """One line naming the problem; an error the code did not foresee says so."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, (ValueError, OSError)):
        return text
    return f"{type(err).__name__}: {text} (unexpected: rerun with --debug for the traceback, and report it)"


def _meta(command: str, config: LoadConfig, identity: dict[str, Any]) -> dict[str, Any]:
    from interp.report.page import run_metadata

    return run_metadata({"model": config.model or DEFAULT_NAME, **identity,
                         "command": " ".join(sys.argv), "subcommand": command,
                         "settings": dataclasses.asdict(config)})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from interp.accuracy.runner import Shard, tell_torchrun
    from interp.model.load import describe_model
    from interp.report.page import Report

    command = args.command
    config = from_args(CONFIGS.get(command, StudyConfig), args)
    started = time.perf_counter()
    report: Report | None = None
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        check_options(command, config)
        if isinstance(config, FinetuneRun):
            _finetune(config)
            return 0
        methods = [_method(spec) for spec in config.method]  # bad parameters fail here, before a model loads
        if isinstance(config, ReproduceConfig):
            from interp.reproduction.pipeline import reproduce

            config, shard = config.sized(), Shard.from_torchrun()
            if shard.rank == 0:  # under torchrun, rank 0 alone writes the report
                report = Report(config.out, "interp reproduction", _meta(command, config, {}),
                                self_contained=config.self_contained)
            reproduce(config, lambda path, option: _load(config, path, option), report,
                      " ".join(["interp", *sys.argv[1:]]), shard)
            if report is None:
                return 0
        elif isinstance(config, AccuracyConfig):
            model = _load(config, config.model) if not config.rescore or config.model else None
            page = _rescore(config, model) if config.rescore else None
            if page is None:
                print(f"model: {config.model or DEFAULT_NAME}")
                page = _accuracy(config, methods, model)
            if page is None:  # a rank of a sharded run other than 0: rank 0 writes the page
                return 0
            report = Report(config.out, "interp report", _meta(command, config, describe_model(model) if model else {}),
                            self_contained=config.self_contained)
            report.add(page)
        else:
            model = _load(config, config.model)
            print(f"model: {config.model or DEFAULT_NAME}")
            example = _example(config, model)
            check_against_model(config, model)  # every study's options, before the first one computes
            report = Report(config.out, "interp report", _meta(command, config, describe_model(model)),
                            self_contained=config.self_contained)
            _studies(command, config, model, example, report)
        index = report.finish()
    except KeyboardInterrupt:
        if report is not None:
            with contextlib.suppress(OSError):  # a full disk stopped it: the one line below says so
                report.finish(failure="interrupted")
        out = getattr(config, "out", None)
        then = RESUME.get(command, f"the report in {out} is marked unfinished: run the command again")
        print(f"interp: interrupted; {then}", file=sys.stderr)
        return 130
    except Exception as err:
        if report is not None:
            with contextlib.suppress(OSError):  # the error may be the disk itself: marking the index hits it again
                report.finish(failure=_message(err))
        if config.debug:
            traceback.print_exc()
        print(f"interp: error: {_message(err)}", file=sys.stderr)
        tell_torchrun(err)
        return 2
    print(f"report: {index.resolve()} ({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
