"""Decoding speed of interp.generate against plain Hugging Face eager ``generate``, on the CPU (or --device).

Variants, at batch 1 and --batch: HF eager ``generate`` (the yardstick); ``interp.generate``
without interventions and with TopLayerEmulation (the fast path: the plain model, edits inside
its attention); and the same two through the TransformerLens bridge's hook points (the path
analysis uses). Measured interleaved in one run; prints tokens/s and the median over rounds of the
per-round ratio to HF. Never asserts. Targets: >= 0.95x HF without interventions, >= 0.90x with
the emulation, at batch 1 and 8.

    python perf/forward_and_generate.py                # ~58M-parameter LLaMA, 200-token prompt, 128 new tokens
    python perf/forward_and_generate.py --new-tokens 32 --rounds 3
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
from interp.model.generation import generate_ids
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
    args = parser.parse_args()
    torch.manual_seed(0)
    vocab = 32000
    hf = random_llama(n_layers=8, d_model=512, n_heads=8, d_mlp=1376, vocab_size=vocab, max_positions=2048)
    plain = copy.deepcopy(hf).to(args.device)  # the bridge rewires the model it wraps
    with tempfile.TemporaryDirectory() as tmp:
        sp = train_sentencepiece(["a b c d e f g h"] * 50, Path(tmp) / "t.model", vocab_size=300)
        model = interp.load_model(hf, tokenizer=sp, device=args.device)
    print(f"model: {sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M parameters, {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.prompt_tokens}-token prompts, "
          f"{args.new_tokens} new tokens, {args.rounds} interleaved rounds")
    emulation = [interp.TopLayerEmulation()]

    def ours(ids, interventions, hooks=False):
        def run():
            if hooks:
                with hook_path(model):
                    return generate_ids(model, ids, max_new_tokens=args.new_tokens, interventions=interventions, eos_token_id=-1)
            return generate_ids(model, ids, max_new_tokens=args.new_tokens, interventions=interventions, eos_token_id=-1)
        return run

    print(f"{'batch':>5} {'variant':<34} {'tok/s':>8} {'x HF (median of rounds)':>24}")
    with torch.no_grad():
        for batch in (1, args.batch):
            ids = torch.randint(3, vocab, (batch, args.prompt_tokens), device=args.device)
            runs = {
                "HF eager generate": lambda: plain.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0),
                "interp.generate": ours(ids, []),
                "interp.generate + emulation": ours(ids, emulation),
                "hook path": ours(ids, [], hooks=True),
                "hook path + emulation": ours(ids, emulation, hooks=True),
            }
            times = interleaved(runs, args.rounds, args.device)
            for name in runs:
                tok_s = batch * args.new_tokens / statistics.median(times[name])
                print(f"{batch:>5} {name:<34} {tok_s:>8.1f} {median_ratio(times, name, 'HF eager generate'):>24.3f}")


if __name__ == "__main__":
    main()
