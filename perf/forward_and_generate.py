"""Decoding speed of interp.generate against plain Hugging Face ``generate``, on the CPU (or --device).

Variants, at batch 1 and --batch: HF ``generate`` with its default SDPA attention (the yardstick)
and with eager attention; ``interp.generate`` without interventions and with TopLayerEmulation (the
fast path: the plain model, edits inside its attention, fused attention in layers without edits);
and the same two through the TransformerLens bridge's hook points (the path analysis uses;
--no-hook-path leaves them out); with --methods, ``interp.generate`` under each peer method too
(ACT and PASTA on three heads of every layer from 2 on, PASTA steering toward the prompt's first
half; ZeroTuning's sink scaling, attention temperature, a StreamingLLM window). Measured
interleaved in one run; prints tokens/s and the median over rounds of the per-round ratio to HF
SDPA. Never asserts. Targets: >= 1.0x HF SDPA without interventions, >= 0.90x with the
emulation, at batch 1 and 8.

    python perf/forward_and_generate.py                # ~58M-parameter random LLaMA, 200-token prompt, 128 new tokens
    python perf/forward_and_generate.py --model smollm2-135m-instruct --threads 2   # the real model (GQA, 30 layers)
    python perf/forward_and_generate.py --new-tokens 32 --rounds 3
    python perf/forward_and_generate.py --model smollm2-135m-instruct --threads 1 --methods --no-hook-path
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

import interp
from transformers import AutoModelForCausalLM

from interp.decoding.generation import generate_ids
from interp.model.load import local_source
from interp.tiny import random_llama, train_sentencepiece
from timing import interleaved, median_ratio


@contextmanager
def hook_path(model):
    """Decode through the bridge's hooks: hide the model's plain copy for the duration."""
    plain, model.plain = model.plain, None
    try:
        yield
    finally:
        model.plain = plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", help="a model load_model takes (default: a random 58M-parameter LLaMA)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-hook-path", action="store_true", help="leave out the bridge's hook path")
    parser.add_argument("--methods", action="store_true", help="also every peer method on the fast path")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model:
        model = interp.load_model(args.model, device=args.device)
        folder = local_source(args.model)
        yardsticks = {kind: AutoModelForCausalLM.from_pretrained(folder, attn_implementation=kind).to(args.device).eval()
                      for kind in ("sdpa", "eager")}
        vocab = model.cfg.d_vocab
    else:
        vocab = 32000
        hf = random_llama(n_layers=8, d_model=512, n_heads=8, d_mlp=1376, vocab_size=vocab, max_positions=2048)
        yardsticks = {"eager": copy.deepcopy(hf).to(args.device)}  # the bridge rewires the model it wraps
        yardsticks["sdpa"] = copy.deepcopy(yardsticks["eager"])
        yardsticks["sdpa"].config._attn_implementation = "sdpa"
        with tempfile.TemporaryDirectory() as tmp:
            sp = train_sentencepiece(["a b c d e f g h"] * 50, Path(tmp) / "t.model", vocab_size=300)
            model = interp.load_model(hf, tokenizer=sp, device=args.device)
    plain = yardsticks["sdpa"]
    print(f"model: {args.model or 'random LLaMA'}, {sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M parameters, "
          f"{model.cfg.n_layers} layers, {model.cfg.n_heads} heads ({model.cfg.n_key_value_heads or model.cfg.n_heads} "
          f"key-value), {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.prompt_tokens}-token prompts, "
          f"{args.new_tokens} new tokens, {args.rounds} interleaved rounds")
    emulation = [interp.TopLayerEmulation()]
    heads = {layer: [0, 1, 2] for layer in range(2, model.cfg.n_layers)}  # about ACT's share of Llama-2-7B's heads
    peers = {
        "act": [interp.SinkCalibration(heads)],
        "pasta": [interp.AttentionSteering((0, args.prompt_tokens // 2), heads, input_length=args.prompt_tokens)],
        "sink scaling (gamma 0.6)": [interp.SinkScaling(0.6)],
        "temperature 1.2": [interp.AttentionTemperature(1.2)],
        "sink window (4 + 64)": [interp.SinkWindow(4, 64)],
    } if args.methods else {}

    def ours(ids, interventions, hooks=False):
        def run():
            if hooks:
                with hook_path(model):
                    return generate_ids(model, ids, max_new_tokens=args.new_tokens, interventions=interventions, eos_token_id=-1)
            return generate_ids(model, ids, max_new_tokens=args.new_tokens, interventions=interventions, eos_token_id=-1)
        return run

    print(f"{'batch':>5} {'variant':<44} {'tok/s':>8} {'x HF SDPA (median of rounds)':>29}")
    with torch.no_grad():
        for batch in (1, args.batch):
            ids = torch.randint(3, vocab, (batch, args.prompt_tokens), device=args.device)
            def hf(kind, ids=ids):
                return lambda: yardsticks[kind].generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)

            runs = {
                "HF generate (SDPA)": hf("sdpa"),
                "HF generate (eager)": hf("eager"),
                "interp.generate": ours(ids, []),
                "interp.generate + emulation": ours(ids, emulation),
                **{f"interp.generate + {name}": ours(ids, interventions) for name, interventions in peers.items()},
            }
            if not args.no_hook_path:
                runs |= {"hook path": ours(ids, [], hooks=True), "hook path + emulation": ours(ids, emulation, hooks=True)}
            times = interleaved(runs, args.rounds, args.device)
            for name in runs:
                tok_s = batch * args.new_tokens / statistics.median(times[name])
                print(f"{batch:>5} {name:<44} {tok_s:>8.1f} {median_ratio(times, name, 'HF generate (SDPA)'):>29.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
