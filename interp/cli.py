"""The ``interp`` command: every study on any model ``load_model`` accepts, or on the shipped tiny models.

    interp run                       # every study on the shipped tiny models -> reports/index.html
    interp run --model PATH          # the same on a LLaMA-2 directory or llama2.c checkpoint
    interp anchors --help            # one study, with its options
    interp accuracy --benchmark mmlu --data ../shared/data/mmlu --model PATH --limit 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TYPE_CHECKING

from interp import validation
from interp.accuracy.harness import DEFAULT_BATCH_SIZE
from interp.model.load import DTYPES, ModelLoadError, describe_model, load_model
from interp.report.page import Page, Report, run_metadata
from interp.studies import STUDIES, Context, Example
from interp.studies.accuracy import METHOD, TABLE_PAIRS, accuracy_report
from interp.validation import UsageError

if TYPE_CHECKING:
    from interp.model.load import InterpModel


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported on one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="HF model directory (LLaMA, Mistral, Qwen2/3, Gemma 2, ...), hub name or llama2.c .bin (default: shipped tiny model)")
    parser.add_argument("--tokenizer", help="tokenizer file or directory, if not beside the model (with --model)")
    parser.add_argument("--dtype", choices=list(DTYPES), default=None, help="weights' dtype (default float32)")
    parser.add_argument("--device", type=validation.device, default=None,
                        help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--n-devices", type=validation.devices, default=None,
                        help="split a large model over this many GPUs (with --model)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default: reports)")
    parser.add_argument("--self-contained", action="store_true",
                        help="plotly.js inside every page (4.6 MB each) instead of one plotly.min.js beside them")
    parser.add_argument("--max-new-tokens", type=validation.count, default=32, help="greedy continuation length")
    _debug(parser)


def _example_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", help="the prompt range's text (default: the paper's CoT instruction)")
    parser.add_argument("--dialogue", help="the text after the prompt (default: a held-out question with its answer)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="interp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    every = sub.add_parser("run", help="every study, one report with an index", description="every study, one report with an index")
    _common(every)
    _example_options(every)
    added: set[str] = set()
    for study in STUDIES.values():  # `run` takes every study's options, each once
        for argument in study.arguments:
            if argument.flags[0] not in added:
                added.add(argument.flags[0])
                argument.add_to(every)
        if study.command:
            p = sub.add_parser(study.name, help=study.help, description=study.help)
            _common(p)
            _example_options(p)
            for argument in study.arguments:
                argument.add_to(p)
    acc = sub.add_parser("accuracy", help="CoT accuracy, baseline vs methods (MMLU, PIQA, SIQA, tiny)",
                         description="CoT accuracy of the baseline and of each --method, with answer extraction in "
                                     "three modes (final, paper, strict) and parse rates; resumable; under torchrun "
                                     "each rank takes a shard and rank 0 merges.")
    _common(acc)
    acc.add_argument("--benchmark", choices=["mmlu", "piqa", "siqa", "tiny"], required=True)
    acc.add_argument("--data", help="benchmark files (MMLU test folder, PIQA valid.jsonl, SIQA dev.jsonl); "
                                    "omitted: load through the datasets library by name")
    acc.add_argument("--subjects", nargs="+", help="MMLU subjects to run (default: all 57)")
    acc.add_argument("--limit", type=validation.count,
                     help="at most this many questions per subject (tiny: per family, default 50)")
    TABLE_PAIRS.add_to(acc)
    acc.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE,
                     help="questions per batch, or 'auto': the most whose KV cache fits the device's free memory "
                          f"(printed with the numbers used); halved on an out-of-memory error (default {DEFAULT_BATCH_SIZE})")
    acc.add_argument("--results", type=Path, help="results folder (default: results/<benchmark>)")
    acc.add_argument("--direct", action="store_true", help="also run the non-CoT baseline (computed tokens)")
    acc.add_argument("--chat", action="store_true", help="wrap prompts in the LLaMA-2 chat template")
    METHOD.add_to(acc)
    acc.add_argument("--skip-over-context", action="store_true",
                     help="record questions whose prompt plus --max-new-tokens exceeds the model's context as "
                          "skipped (default: stop before generating, naming the longest prompt)")
    acc.add_argument("--rescore", action="store_true",
                     help="re-extract the answers of an existing results folder (--results) with the current "
                          "extractors and rewrite its summaries and page; generates nothing, loads no model")
    acc.set_defaults(max_new_tokens=None)  # the harness's own default: 2048, or what the context allows
    tune = sub.add_parser("finetune", help="fine-tune a model on structured CoT rows or your own (LoRA or full)",
                          description="Fine-tune any model `load_model` accepts on the structured CoT dataset (the "
                                      "paper's layout) or a JSONL of prompt/response rows, loss on the responses; "
                                      "writes a Hugging Face directory with training.json. Resumable: run the same "
                                      "command again after a kill.")
    _debug(tune)
    tune.add_argument("--model", required=True, help="HF model directory, hub name or llama2.c .bin")
    tune.add_argument("--out", type=Path, required=True, help="the directory to write (with --pair: a folder of two)")
    tune.add_argument("--data", default="structured", help="'structured' (default) or a JSONL file of "
                                                           '{"prompt": ..., "response": ...} rows')
    tune.add_argument("--no-instruction", action="store_true",
                      help="structured rows without the paper's instruction (for short contexts, e.g. stories260K)")
    tune.add_argument("--attention-dropout", type=validation.probability, default=0.0,
                      help="attention dropout while training (default 0)")
    kind = tune.add_mutually_exclusive_group()
    kind.add_argument("--lora", type=validation.count, default=8, metavar="RANK", help="LoRA rank (default 8)")
    kind.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA (small models)")
    tune.add_argument("--steps", type=validation.count, default=200)
    tune.add_argument("--batch-size", type=validation.count, default=8)
    tune.add_argument("--lr", type=validation.positive, default=3e-4)
    tune.add_argument("--seed", type=validation.index, default=0)
    tune.add_argument("--dtype", choices=list(DTYPES), default="float32", help="weights' dtype while training (default float32)")
    tune.add_argument("--pair", action="store_true", help="train both: without and with attention dropout "
                                                          "(--attention-dropout, default 0.1), same rows and seed")
    return parser


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--batch-size takes a positive whole number or 'auto', got {text!r}")
    return int(text)


MODEL_ONLY = ("--tokenizer", "--n-devices")  # how to load --model: meaningless for the shipped model
RESUME = {
    "accuracy": "the finished questions are kept in the results folder: run the same command again to resume",
    "finetune": "run the same command again to resume from the last checkpoint (every 25 steps)",
}


def check_options(args: argparse.Namespace) -> None:
    """Paths and modes, checked before any model loads: every path exists (or can be written),
    nothing is written over its own input, and no option is silently ignored."""
    if args.command == "finetune":
        validation.model_path("--model", args.model)
        if args.data != "structured":
            validation.existing("--data", args.data, "a JSONL file of prompt/response rows (or 'structured')")
        if args.no_instruction and args.data != "structured":
            raise UsageError("--no-instruction applies to --data structured only; your own rows are used as written")
        validation.output_folder("--out", args.out)
        if validation.looks_like_path(args.model):
            validation.not_inside("--out", args.out, "--model", args.model)
        return
    validation.require_model(args, MODEL_ONLY)
    if args.model:
        validation.model_path("--model", args.model)
    if args.tokenizer:
        validation.existing("--tokenizer", args.tokenizer, "a SentencePiece .model file or a tokenizer directory")
    validation.output_folder("--out", args.out)
    if args.command == "accuracy":
        _check_accuracy(args)
        return
    for option in validation.given(args, ("--tuned", "--compare-model")):
        validation.model_path(option, getattr(args, option[2:].replace("-", "_")))
    if args.command == "finetuning" and not args.tuned:
        raise UsageError("interp finetuning needs --tuned DIR: the model directory `interp finetune` wrote (or its "
                         "--pair folder); --model is the base it was tuned from")
    _check_table_pairs(args)


def _check_table_pairs(args: argparse.Namespace) -> None:
    pairs = getattr(args, "table_pairs", None)
    if pairs is not None and pairs[0] > pairs[1]:
        raise UsageError(f"--table-pairs {pairs[0]} {pairs[1]}: the fewest comes after the most; give FEWEST <= MOST")


def _check_accuracy(args: argparse.Namespace) -> None:
    if args.rescore:
        wrong = validation.given(args, ("--model", "--data", "--subjects", "--limit", "--max-new-tokens", "--table-pairs"))
        if wrong:
            raise UsageError(f"--rescore re-reads the responses already in --results and generates nothing, so "
                             f"{', '.join(wrong)} do not apply; leave them out")
        return
    if args.benchmark == "tiny":
        wrong = validation.given(args, ("--data", "--subjects"))
        if wrong:
            raise UsageError(f"{', '.join(wrong)} apply to mmlu, piqa and siqa; the tiny benchmark's questions are "
                             "generated (choose them with --limit and --table-pairs)")
    else:
        if args.table_pairs is not None:
            raise UsageError(f"--table-pairs applies to --benchmark tiny only, not {args.benchmark}")
        if args.subjects and args.benchmark != "mmlu":
            raise UsageError(f"--subjects applies to --benchmark mmlu only, not {args.benchmark}")
        if args.data:
            validation.existing("--data", args.data, f"the {args.benchmark} files (see ../shared/data)")
    _check_table_pairs(args)
    validation.output_folder("--results", _results_folder(args))


def check_against_model(args: argparse.Namespace, model: InterpModel) -> None:
    """The options that name layers or heads, against the loaded model, before any study computes."""
    from interp.edits.interventions import TopLayerEmulation, check_layers
    from interp.studies.removal import removal_span

    n, heads = model.cfg.n_layers, model.cfg.n_heads
    if getattr(args, "zoom_layers", None):
        check_layers(args.zoom_layers, n, "--zoom-layers", "give layers in that range")
    if hasattr(args, "first"):
        removal_span(n, args.first, args.last)
    if getattr(args, "last_layer", None) is not None and not 1 <= args.last_layer < n:
        raise UsageError(f"--last-layer {args.last_layer}: h must be a layer after layer 0 of this {n}-layer model, "
                         f"1 to {n - 1} (default: the last, {n - 1})")
    if hasattr(args, "alpha"):
        try:
            TopLayerEmulation(args.alpha, args.threshold, args.last_layer).check(n)
        except ValueError as err:
            raise UsageError(f"--alpha {args.alpha}: {err}") from None
    for layer, head in getattr(args, "show", None) or ():
        validation.check_head("--show", layer, head, n, heads)


def _load(args: argparse.Namespace, path: str | None, option: str = "--model") -> Any:
    from interp.tiny.default import load_shipped

    if path is None:
        return load_shipped(dtype=args.dtype, device=args.device)
    try:
        return load_model(path, tokenizer=args.tokenizer, dtype=args.dtype, device=args.device,
                          n_devices=args.n_devices)
    except ModelLoadError as err:
        raise ModelLoadError(f"{option}: {err}") from err


def _results_folder(args: argparse.Namespace) -> Path:
    return args.results or Path("results") / args.benchmark


def _rescore(args: argparse.Namespace) -> Page:
    from interp.accuracy.harness import rescore_folder
    from interp.report.accuracy import accuracy_page

    folder = _results_folder(args)
    if not folder.is_dir():
        raise UsageError(f"--results {folder} does not exist; pass the results folder of an earlier run")
    evaluation = rescore_folder(folder)  # rewrites the records and the summaries
    return accuracy_page(f"CoT accuracy: {args.benchmark}", evaluation.summary, evaluation.runs,
                         f"accuracy-{args.benchmark}.html")


def _accuracy(args: argparse.Namespace, model: InterpModel) -> Page | None:
    from interp.accuracy.data import DataError, load_benchmark
    from interp.accuracy.harness import limit_per_subject
    from interp.studies.accuracy import HARD_PAIRS
    from interp.tiny.dataset import held_out_items

    if args.benchmark == "tiny":
        pairs = tuple(args.table_pairs or HARD_PAIRS)
        try:
            items = held_out_items(args.limit or 50, pairs=pairs)
        except ValueError as err:
            raise UsageError(f"--table-pairs {pairs[0]} {pairs[1]}: {err}") from None
        source = {"benchmark": "tiny", "limit": args.limit or 50, "table_pairs": list(pairs)}
    else:
        try:
            items = limit_per_subject(load_benchmark(args.benchmark, args.data, args.subjects), args.limit)
        except DataError as err:
            raise DataError(f"{'--data ' + args.data if args.data else '--benchmark ' + args.benchmark}: {err}") from err
        source = {"benchmark": args.benchmark, "data": str(Path(args.data).resolve()) if args.data else None,
                  "subjects": args.subjects, "limit": args.limit}
    return accuracy_report(args, model, items, args.benchmark, _results_folder(args), args.max_new_tokens,
                           source={**source, "model": model_source(args)})


def model_source(args: argparse.Namespace) -> str:
    """The model as the user named it, made absolute when it is a path (a hub name stays a name)."""
    if args.model is None:
        return "shipped cot-tiny"
    return str(Path(args.model).expanduser().resolve()) if validation.looks_like_path(args.model) else args.model


def _finetune(args: argparse.Namespace) -> None:
    from interp.train.finetune import FinetuneConfig, finetune, pair

    config = FinetuneConfig(model=args.model, data=args.data, instruction=not args.no_instruction,
                            attention_dropout=args.attention_dropout, lora_rank=None if args.full else args.lora,
                            steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, dtype=args.dtype)
    command = " ".join(["interp", *sys.argv[1:]])
    written = pair(config, args.out, command=command) if args.pair else (finetune(config, args.out, command=command),)
    for folder in written:
        record = json.loads((Path(folder) / "training.json").read_text())
        print(f"{folder}: final loss {record['final_loss']:.3f}", record.get("held_out_accuracy", {}).get("all", ""))


def _example(args: argparse.Namespace, model: InterpModel) -> Example:
    from interp.tiny.default import default_example

    default_prompt, default_dialogue, default_answer = default_example()
    own = args.prompt is not None or args.dialogue is not None
    # A dialogue of one's own has no reference answer: continuations then start at its end.
    try:
        example = Example.from_text(model, default_prompt if args.prompt is None else args.prompt,
                                    default_dialogue if args.dialogue is None else args.dialogue,
                                    default_answer if args.dialogue is None else "")
    except ValueError as err:
        raise UsageError(f"--prompt/--dialogue: {err}") from None
    length = len(example.tokens)
    start = length if example.answer_start is None else example.answer_start
    what = "the example (--prompt and --dialogue)" if own else \
        "the default example (the paper's instruction and a held-out question with its answer)"
    context = int(model.cfg.n_ctx)
    room = context - start
    validation.check_fits_context(f"{what}, continued for --max-new-tokens {args.max_new_tokens} from token {start},",
                                  max(length, start + args.max_new_tokens), context,
                                  "pass a shorter --prompt and --dialogue" + (
                                      f", or lower --max-new-tokens to at most {room}" if room > 0 and length <= context
                                      else ""))
    return example


def _studies(args: argparse.Namespace, model: InterpModel, example: Example, report: Report) -> None:
    print(f"{len(example.tokens)} tokens, prompt range 0-{example.prompt_stop}")
    context = Context(model, example, args, lambda path, option: _load(args, path, option))
    for name, study in STUDIES.items():
        if args.command == name or (args.command == "run" and study.in_run(args)):
            started = time.perf_counter()
            report.add(study.run(context))  # written at once: a later study's failure does not lose it
            print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)


def _method(parse: Any, spec: str) -> Any:
    try:
        return parse(spec)
    except ValueError as err:
        raise UsageError(f"--method {spec}: {err}") from None


def _message(err: BaseException) -> str:
    """One line naming the problem; an error the code did not foresee says so."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, (ValueError, OSError)):
        return text
    return f"{type(err).__name__}: {text} (unexpected: rerun with --debug for the traceback, and report it)"


def _meta(args: argparse.Namespace, identity: dict[str, Any]) -> dict[str, Any]:
    return run_metadata({"model": args.model or "shipped tiny LLaMA (cot-tiny)", **identity,
                         "command": " ".join(sys.argv), "arguments": vars(args)})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    report: Report | None = None
    try:
        check_options(args)
        if hasattr(args, "method"):  # bad method parameters fail here, before a model is loaded
            from interp.accuracy.methods import parse_method

            args.methods = [_method(parse_method, spec) for spec in args.method]
        if args.command == "finetune":
            _finetune(args)
            return 0
        if args.command == "accuracy":
            page = _rescore(args) if args.rescore else None
            model = None if args.rescore else _load(args, args.model)
            if model is not None:
                print(f"model: {args.model or 'shipped tiny LLaMA (cot-tiny)'}")
                page = _accuracy(args, model)
            if page is None:  # a rank of a sharded run other than 0: rank 0 writes the page
                return 0
            report = Report(args.out, "interp report", _meta(args, describe_model(model) if model else {}),
                            self_contained=args.self_contained)
            report.add(page)
        else:
            model = _load(args, args.model)
            print(f"model: {args.model or 'shipped tiny LLaMA (cot-tiny)'}")
            example = _example(args, model)
            check_against_model(args, model)  # every study's options, before the first one computes
            report = Report(args.out, "interp report", _meta(args, describe_model(model)),
                            self_contained=args.self_contained)
            _studies(args, model, example, report)
        index = report.finish()
    except KeyboardInterrupt:
        if report is not None:
            report.finish(failure="interrupted")
        then = RESUME.get(args.command, f"the report in {args.out} is marked unfinished: run the command again")
        print(f"interp: interrupted; {then}", file=sys.stderr)
        return 130
    except Exception as err:
        if report is not None:
            report.finish(failure=_message(err))
        if args.debug:
            traceback.print_exc()
        print(f"interp: error: {_message(err)}", file=sys.stderr)
        return 2
    print(f"report: {index.resolve()} ({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
