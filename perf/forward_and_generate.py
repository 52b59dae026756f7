"""Speed of the hooked model against plain Hugging Face eager, on the CPU (or --device).

Prints tokens/s and ratios; never asserts. Targets from the core issue: TopLayerEmulation costs
at most 15% over the hooked model without interventions, and batched hooked generation (batch 8)
gives at least 2.5x the tokens/s of batch 1.

    python perf/forward_and_generate.py                # ~58M-parameter LLaMA, 200-token prompt, 256 new tokens
    python perf/forward_and_generate.py --new-tokens 32
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
from timing import rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
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
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    def prompt(batch: int) -> torch.Tensor:
        return torch.randint(3, vocab, (batch, args.prompt_tokens), device=args.device)

    emulation = [interp.TopLayerEmulation()]
    rows = []
    with torch.no_grad():
        for batch in (1, args.batch):
            ids = prompt(batch)
            runs = {
                "HF eager": (lambda: plain(ids), lambda: plain.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)),
                "hooked": (lambda: model(ids), lambda: generate_ids(
                    model, ids, max_new_tokens=args.new_tokens, eos_token_id=-1)),
                "hooked + TopLayerEmulation": (
                    lambda: _with(model, emulation, ids), lambda: generate_ids(
                        model, ids, max_new_tokens=args.new_tokens, interventions=emulation, eos_token_id=-1)),
            }
            for name, (forward, gen) in runs.items():
                fwd = rate(forward, batch * args.prompt_tokens, repeats=3, device=args.device)
                gen_tps = rate(gen, batch * args.new_tokens, device=args.device)
                rows.append((batch, name, fwd, gen_tps))
    base = {(b, "fwd"): f for b, n, f, g in rows if n == "HF eager"} | {(b, "gen"): g for b, n, f, g in rows if n == "HF eager"}
    print(f"{'batch':>5} {'variant':<28} {'forward tok/s':>14} {'x HF':>6} {'generate tok/s':>15} {'x HF':>6}")
    for b, name, f, g in rows:
        print(f"{b:>5} {name:<28} {f:>14.0f} {f / base[(b, 'fwd')]:>6.2f} {g:>15.1f} {g / base[(b, 'gen')]:>6.2f}")
    by = {(b, n): (f, g) for b, n, f, g in rows}
    for b in (1, args.batch):
        hooked, emu = by[(b, "hooked")], by[(b, "hooked + TopLayerEmulation")]
        print(f"batch {b}: TopLayerEmulation overhead over hooked: forward {hooked[0] / emu[0] - 1:+.1%}, "
              f"generate {hooked[1] / emu[1] - 1:+.1%} (target <= +15%)")
    for name in ("HF eager", "hooked", "hooked + TopLayerEmulation"):
        print(f"{name}: generation batch {args.batch} / batch 1 = "
              f"{by[(args.batch, name)][1] / by[(1, name)][1]:.2f}x (target for hooked >= 2.5x)")


def _with(model, interventions, ids):
    with interp.intervene(model, *interventions):
        return model(ids)


if __name__ == "__main__":
    main()
