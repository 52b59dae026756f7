"""CoT generation speed of the accuracy harness against the paper's loop and plain Hugging Face.

The paper's loop (its eval_chat_*.py ``answer_generate``): batch 1, one token per step through
the Hugging Face model with its KV cache, decoding the whole response after every step. Prints
tokens/s and ratios; never asserts. Targets (CPU, ~50M parameters, 200-token prompts, 256 new
tokens): at least 3x the paper's loop at the best batch size, and at least 0.8x plain Hugging
Face eager ``generate`` at equal batch size.

    python perf/cot_generation.py
    python perf/cot_generation.py --shape 7b --dtype float16 --device cuda --batches 1 8 32 64
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch

import interp
from interp.generation import generate_ids
from interp.tiny import random_llama, train_sentencepiece
from timing import rate as best_rate

SHAPES = {  # (layers, d_model, heads, d_mlp)
    "50m": (8, 512, 8, 1376),
    "7b": (32, 4096, 32, 11008),
}
MMLU_QUESTIONS = 14042


def paper_loop(model, tokenizer, ids: torch.Tensor, new_tokens: int) -> int:
    out = model(input_ids=ids, use_cache=True)
    cache, token, generated = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True), []
    for _ in range(new_tokens):
        generated.append(token.item())
        tokenizer.decode(generated, skip_special_tokens=True).strip().split(" ")
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    return new_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="50m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--mean-generated", type=float, default=400.0,
                        help="mean generated tokens per MMLU question, for the projection")
    args = parser.parse_args()
    layers, d_model, heads, d_mlp = SHAPES[args.shape]
    dtype = interp.models.resolve_dtype(args.dtype)
    hf = random_llama(n_layers=layers, d_model=d_model, n_heads=heads, d_mlp=d_mlp, vocab_size=32000, max_positions=4096)
    hf = hf.to(dtype)
    plain = copy.deepcopy(hf).to(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        sp = train_sentencepiece(["a b c d e f g h"] * 50, Path(tmp) / "t.model", vocab_size=300)
        model = interp.load_model(hf, tokenizer=sp, device=args.device, dtype=dtype)
    tokenizer = model.tokenizer
    print(f"{args.shape}: {sum(p.numel() for p in plain.parameters()) / 1e6:.0f}M parameters, {args.dtype}, {args.device}")

    def prompt(batch: int) -> torch.Tensor:
        return torch.randint(3, 32000, (batch, args.prompt_tokens), device=args.device)

    def rate(fn, tokens: int) -> float:
        return best_rate(fn, tokens, device=args.device)

    with torch.inference_mode():
        paper = rate(lambda: paper_loop(plain, tokenizer, prompt(1), args.new_tokens), args.new_tokens)
        print(f"paper's loop (batch 1): {paper:.1f} tok/s")
        method = [interp.TopLayerEmulation()]
        print(f"{'batch':>5} {'harness tok/s':>14} {'+method':>9} {'HF generate':>12} {'x paper':>8} {'x HF':>6}")
        best = 0.0
        for batch in args.batches:
            n = batch * args.new_tokens
            ids = prompt(batch)
            ours = rate(lambda: generate_ids(model, ids, max_new_tokens=args.new_tokens, eos_token_id=-1), n)
            with_method = rate(lambda: generate_ids(model, ids, max_new_tokens=args.new_tokens, eos_token_id=-1,
                                                    interventions=method), n)
            hf_rate = rate(lambda: plain.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                  max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                                  pad_token_id=0), n)
            best = max(best, with_method)
            print(f"{batch:>5} {ours:>14.1f} {with_method:>9.1f} {hf_rate:>12.1f} {ours / paper:>8.2f} {ours / hf_rate:>6.2f}")
    hours = MMLU_QUESTIONS * args.mean_generated / best / 3600
    print(f"projected full MMLU ({MMLU_QUESTIONS} questions x {args.mean_generated:.0f} tokens) at the best rate: "
          f"{hours:.1f} h per variant (baseline and method: {2 * hours:.1f} h)")


if __name__ == "__main__":
    main()
