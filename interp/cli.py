"""The ``interp`` command: every study on any model ``load_model`` accepts, or on the default.

    interp run                       # every study on the default model -> reports/index.html
    interp run --model PATH          # the same on a LLaMA-2 directory or llama2.c checkpoint
    interp anchors --help            # one study, with its options
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from interp.models import ModelLoadError, describe_model, load_model
from interp.report import studies
from interp.report.page import run_metadata, write_index, write_page
from interp.tiny.default import DIALOGUE, PROMPT, default_model


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="HF LLaMA directory, hub name or llama2.c .bin (default: built-in tiny model)")
    parser.add_argument("--tokenizer", help="tokenizer file or directory, if not beside the model")
    parser.add_argument("--dtype", default=None, help="float32 (default), float16 or bfloat16")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--prompt", default=PROMPT, help="the prompt range's text (the instruction)")
    parser.add_argument("--dialogue", default=DIALOGUE, help="the text after the prompt")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default: reports)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="greedy continuation length")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "run": "every study, one report with an index",
        "attention": "per-layer attention matrices (Figure 2)",
        "anchors": "anchor tokens: received attention, detected anchors, share, entropy",
        "ablation": "anchor-token ablation and keep-only counter-experiment (Figure 3)",
        "removal": "alternating-layer prompt removal (Figure 4)",
        "emulation": "depth-scaled top-layer emulation, inspected",
    }
    for name, help_text in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        if name in ("run", "anchors", "ablation"):
            p.add_argument("--ratio", type=float, default=3.0, help="anchor threshold: times the mean received attention")
        if name in ("run", "attention"):
            p.add_argument("--zoom-layers", type=int, nargs="+", help="layers shown per head (default: first and middle)")
        if name in ("run", "removal"):
            p.add_argument("--first", type=int, default=4, help="first layer of the removal span (default 4)")
            p.add_argument("--last", type=int, default=8, help="last layer of the removal span (default 8)")
        if name in ("run", "emulation"):
            p.add_argument("--alpha", type=float, default=0.2)
            p.add_argument("--threshold", type=float, default=0.01)
            p.add_argument("--last-layer", type=int, default=None, help="h in 1 + alpha (1 - l/h) (default: last layer)")
    return parser


def _pages(args: argparse.Namespace, model: Any, example: studies.Example) -> list[studies.Page]:
    from interp.interventions import TopLayerEmulation

    wanted = args.command
    pages: list[studies.Page] = []
    emulation = lambda: TopLayerEmulation(args.alpha, args.threshold, args.last_layer)  # noqa: E731
    steps: dict[str, Callable[[], None]] = {
        "attention": lambda: pages.append(studies.attention_study(model, example, args.zoom_layers)),
        "anchors": lambda: pages.append(studies.anchor_study(model, example, args.ratio)[0]),
        "ablation": lambda: pages.append(studies.ablation_study(
            model, example, studies.anchor_study(model, example, args.ratio)[1].positions(),
            max_new_tokens=args.max_new_tokens)),
        "removal": lambda: pages.append(studies.removal_study(model, example, args.first, args.last, args.max_new_tokens)),
        "emulation": lambda: pages.append(studies.emulation_study(model, example, emulation(), max_new_tokens=args.max_new_tokens)),
    }
    for name, step in steps.items():
        if wanted in (name, "run"):
            started = time.perf_counter()
            step()
            print(f"  {name}: {time.perf_counter() - started:.1f}s", flush=True)
    return pages


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = (load_model(args.model, tokenizer=args.tokenizer, dtype=args.dtype, device=args.device)
                 if args.model else default_model())
        example = studies.Example.from_text(model, args.prompt, args.dialogue)
        print(f"model: {args.model or 'built-in tiny LLaMA'}; {len(example.tokens)} tokens, prompt range 0-{example.prompt_stop}")
        pages = _pages(args, model, example)
    except (ModelLoadError, ValueError) as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return 2
    meta = run_metadata({"model": args.model or "built-in tiny LLaMA (random weights)", **describe_model(model),
                         "command": " ".join(sys.argv), "prompt_tokens": example.prompt_stop, "tokens": len(example.tokens)})
    for page in pages:
        write_page(args.out / page.name, page.title, page.sections, meta)
    index = write_index(args.out, "interp report", [(p.name, p.title, p.summary) for p in pages], meta)
    print(f"report: {index.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
