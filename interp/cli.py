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
from pathlib import Path
from typing import Any

from interp.models import ModelLoadError, describe_model, load_model
from interp.report.page import Page, run_metadata, write_index, write_page
from interp.studies import STUDIES, Context, Example
from interp.studies.accuracy import METHOD, TABLE_PAIRS, accuracy_report


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="HF model directory (LLaMA, Mistral, Qwen2/3, Gemma 2, ...), hub name or llama2.c .bin (default: shipped tiny model)")
    parser.add_argument("--tokenizer", help="tokenizer file or directory, if not beside the model")
    parser.add_argument("--dtype", default=None, help="float32 (default), float16 or bfloat16")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--n-devices", type=int, default=None, help="split a large model over this many GPUs")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default: reports)")
    parser.add_argument("--self-contained", action="store_true",
                        help="plotly.js inside every page (4.6 MB each) instead of one plotly.min.js beside them")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="greedy continuation length")


def _example_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", help="the prompt range's text (default: the paper's CoT instruction)")
    parser.add_argument("--dialogue", help="the text after the prompt (default: a held-out question with its answer)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    acc.add_argument("--limit", type=int, help="at most this many questions per subject (tiny: per family, default 50)")
    TABLE_PAIRS.add_to(acc)
    acc.add_argument("--batch-size", type=_batch_size, default=8,
                     help="questions per batch, or 'auto': the most whose KV cache fits the device's free memory "
                          "(printed with the numbers used); halved on an out-of-memory error (default 8)")
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
    acc.set_defaults(max_new_tokens=2048)
    tune = sub.add_parser("finetune", help="fine-tune a model on structured CoT rows or your own (LoRA or full)",
                          description="Fine-tune any model `load_model` accepts on the structured CoT dataset (the "
                                      "paper's layout) or a JSONL of prompt/response rows, loss on the responses; "
                                      "writes a Hugging Face directory with training.json. Resumable: run the same "
                                      "command again after a kill.")
    tune.add_argument("--model", required=True, help="HF model directory, hub name or llama2.c .bin")
    tune.add_argument("--out", type=Path, required=True, help="the directory to write (with --pair: a folder of two)")
    tune.add_argument("--data", default="structured", help="'structured' (default) or a JSONL file of "
                                                           '{"prompt": ..., "response": ...} rows')
    tune.add_argument("--no-instruction", action="store_true",
                      help="structured rows without the paper's instruction (for short contexts, e.g. stories260K)")
    tune.add_argument("--attention-dropout", type=float, default=0.0, help="attention dropout while training (default 0)")
    kind = tune.add_mutually_exclusive_group()
    kind.add_argument("--lora", type=int, default=8, metavar="RANK", help="LoRA rank (default 8)")
    kind.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA (small models)")
    tune.add_argument("--steps", type=int, default=200)
    tune.add_argument("--batch-size", type=int, default=8)
    tune.add_argument("--lr", type=float, default=3e-4)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    tune.add_argument("--pair", action="store_true", help="train both: without and with attention dropout "
                                                          "(--attention-dropout, default 0.1), same rows and seed")
    return parser


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--batch-size takes a positive whole number or 'auto', got {text!r}")
    return int(text)


def _load(args: argparse.Namespace, path: str | None) -> Any:
    from interp.tiny.default import load_shipped

    if path is None:
        return load_shipped()
    return load_model(path, tokenizer=args.tokenizer, dtype=args.dtype, device=args.device, n_devices=args.n_devices)


def _results_folder(args: argparse.Namespace) -> Path:
    return args.results or Path("results") / args.benchmark


def _rescore(args: argparse.Namespace) -> list[Page]:
    from interp.benchmarks.harness import rescore_folder, write_tables
    from interp.report.accuracy import accuracy_page

    folder = _results_folder(args)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}; pass the folder of an earlier run with --results")
    runs = rescore_folder(folder)
    return [accuracy_page(f"CoT accuracy: {args.benchmark}", write_tables(folder, runs), runs, f"accuracy-{args.benchmark}.html")]


def _accuracy(args: argparse.Namespace, model: Any) -> list[Page]:
    from interp.benchmarks.data import load_benchmark
    from interp.benchmarks.harness import limit_per_subject
    from interp.tiny.dataset import held_out_items

    if args.benchmark == "tiny":
        items = held_out_items(args.limit or 50, pairs=tuple(args.table_pairs))
    else:
        items = limit_per_subject(load_benchmark(args.benchmark, args.data, args.subjects), args.limit)
    page = accuracy_report(args, model, items, args.benchmark, _results_folder(args), args.max_new_tokens)
    return [page] if page else []


def _finetune(args: argparse.Namespace) -> None:
    from interp.finetune import FinetuneConfig, finetune, pair

    config = FinetuneConfig(model=args.model, data=args.data, instruction=not args.no_instruction,
                            attention_dropout=args.attention_dropout, lora_rank=None if args.full else args.lora,
                            steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, dtype=args.dtype)
    command = " ".join(["interp", *sys.argv[1:]])
    written = pair(config, args.out, command=command) if args.pair else (finetune(config, args.out, command=command),)
    for folder in written:
        record = json.loads((Path(folder) / "training.json").read_text())
        print(f"{folder}: final loss {record['final_loss']:.3f}", record.get("held_out_accuracy", {}).get("all", ""))


def _studies(args: argparse.Namespace, model: Any) -> list[Page]:
    from interp.tiny.default import default_example

    default_prompt, default_dialogue, default_answer = default_example()
    # A dialogue of one's own has no reference answer: continuations then start at its end.
    example = Example.from_text(model, default_prompt if args.prompt is None else args.prompt,
                                default_dialogue if args.dialogue is None else args.dialogue,
                                default_answer if args.dialogue is None else "")
    print(f"{len(example.tokens)} tokens, prompt range 0-{example.prompt_stop}")
    context = Context(model, example, args, lambda path: _load(args, path))
    pages = []
    for name, study in STUDIES.items():
        if args.command == name or (args.command == "run" and study.in_run(args)):
            started = time.perf_counter()
            pages.append(study.run(context))
            print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)
    return pages


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if hasattr(args, "method"):  # bad method parameters fail here, before a model is loaded
            from interp.benchmarks.methods import parse_method

            args.methods = [parse_method(spec) for spec in args.method]
        if args.command == "finetune":
            _finetune(args)
            return 0
        if args.command == "accuracy" and args.rescore:
            pages, identity = _rescore(args), {}
        else:
            model = _load(args, args.model)
            print(f"model: {args.model or 'shipped tiny LLaMA (cot-tiny)'}")
            pages = _accuracy(args, model) if args.command == "accuracy" else _studies(args, model)
            identity = describe_model(model)
    except (ModelLoadError, ValueError, FileNotFoundError) as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return 2
    if not pages:
        return 0
    meta = run_metadata({"model": args.model or "shipped tiny LLaMA (cot-tiny)", **identity,
                         "command": " ".join(sys.argv), "arguments": vars(args)})
    for page in pages:
        write_page(args.out / page.name, page.title, page.sections, meta, self_contained=args.self_contained)
    index = write_index(args.out, "interp report", [(p.name, p.title, p.summary) for p in pages], meta)
    print(f"report: {index.resolve()} ({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
