"""CoT generation throughput on a realistic mix of answer lengths, and a GPU projection for MMLU.

Part 1, measured here. Every question stops at its own length, drawn uniformly from --lengths
(default 30 to 1000 tokens; fixed by --seed), as CoT answers do. Useful tokens/s (tokens up to
each question's stop) of:
- the paper's loop: batch 1, one question at a time (its eval_chat_*.py ``answer_generate``: the
  HF model with its KV cache, the whole response decoded after every step);
- shrinking batches: questions in fixed batches, a finished row leaves and its slot stays empty
  until the whole batch is done (the harness before continuous batching);
- kept-full batches: a finished row's slot goes to the next waiting question at once
  (``interp.decoding.generation.generate_stream``, what the harness runs).
Shrinking and kept-full run interleaved (--rounds, order rotated); the ratio is the median of
the per-round ratios. Printed as ratios; never asserts. Goal: kept-full >= 1.5x shrinking at batch 8.

Part 2, a projection on paper (no GPU here): hours for the full MMLU CoT, baseline and method,
for LLaMA-2-7B and 13B in float16 on one H100 (3.35 TB/s), from a bandwidth model. Assumptions
are printed with it (see also the README).

    python perf/cot_generation.py                       # ~20M-parameter LLaMA on the CPU, batches 8 and 32
    python perf/cot_generation.py --questions-per-slot 2 --lengths 30 300
"""

from __future__ import annotations

import argparse
import copy
import heapq
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

import interp
from interp.accuracy.memory import fit
from interp.decoding.generation import generate_stream
from interp.tiny import random_llama, train_sentencepiece
from timing import interleaved, median_ratio

MMLU_QUESTIONS = 14042
# LLaMA-2 tokenizer on the harness's CoT prompts for the 14,042 MMLU test questions (measured on
# ../shared/data/mmlu): mean 313 tokens, longest 1,381.
MMLU_PROMPT_MEAN, MMLU_PROMPT_MAX = 313, 1381
H100 = {"bandwidth": 3.35e12, "memory": 79.6 * 2**30, "fp16_flops": 989e12}
LLAMA2 = {  # layers, d_model, parameters
    "LLaMA-2-7B": (32, 4096, 6.74e9),
    "LLaMA-2-13B": (40, 5120, 13.0e9),
}


def paper_loop(model, tokenizer, prompt: list[int], stop: int, device: str) -> None:
    out = model(input_ids=torch.tensor([prompt], device=device), use_cache=True)
    cache, token, generated = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True), []
    for _ in range(stop):
        generated.append(token.item())
        tokenizer.decode(generated, skip_special_tokens=True).strip().split(" ")
        out = model(input_ids=token, past_key_values=cache, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)


def occupancy(stops: list[int], batch: int, kept_full: bool) -> float:
    """The share of batch slots busy per decoding step (each row decodes for ``stop`` steps)."""
    if kept_full:  # a row starts when a slot frees up
        slots = [0] * batch
        for stop in stops:
            heapq.heappush(slots, heapq.heappop(slots) + stop)
        steps = max(slots)
    else:
        steps = sum(max(stops[s : s + batch]) for s in range(0, len(stops), batch))
    return sum(stops) / (steps * batch)


def measure(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    hf = random_llama(n_layers=4, d_model=256, n_heads=4, d_mlp=688, vocab_size=32000, max_positions=4096)
    plain = copy.deepcopy(hf).to(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        sp = train_sentencepiece(["a b c d e f g h"] * 50, Path(tmp) / "t.model", vocab_size=300)
        model = interp.load_model(hf, tokenizer=sp, device=args.device)
    rng = random.Random(args.seed)
    n = args.questions_per_slot * max(args.batches)
    prompts = [[rng.randrange(3, 32000) for _ in range(rng.randint(*args.prompts))] for _ in range(n)]
    stops = [rng.randint(*args.lengths) for _ in range(n)]
    print(f"model: {sum(p.numel() for p in plain.parameters()) / 1e6:.0f}M parameters, {args.device}, "
          f"{torch.get_num_threads()} threads; {n} questions, prompts {args.prompts[0]}-{args.prompts[1]} tokens, "
          f"answers stop at {args.lengths[0]}-{args.lengths[1]} tokens (seed {args.seed}), EOS never: every "
          "token up to a question's stop is useful")

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def stream(rows: range, batch: int) -> None:
        for _ in generate_stream(model, [prompts[i] for i in rows], max_new_tokens=[stops[i] for i in rows],
                                 batch_size=batch, eos_token_id=-1):
            pass

    with torch.inference_mode():
        paper_n = min(n, args.paper_questions)
        paper_s = timed(lambda: [paper_loop(plain, model.tokenizer, prompts[i], stops[i], args.device) for i in range(paper_n)])
        paper = sum(stops[:paper_n]) / paper_s
        print(f"paper's loop, batch 1 ({paper_n} of the questions): {paper:.1f} useful tok/s")
        print(f"{'batch':>5} {'questions':>9} {'shrinking tok/s':>16} {'kept-full tok/s':>16} {'kept/shrinking':>15} "
              f"{'kept/paper':>11} {'slots busy: shrinking':>22} {'kept-full':>10}")
        for batch in args.batches:
            rows = range(args.questions_per_slot * batch)
            useful = sum(stops[i] for i in rows)
            shrinking = useful / timed(lambda: [stream(range(s, min(s + batch, rows.stop)), batch)
                                                for s in range(0, rows.stop, batch)])
            kept = useful / timed(lambda: stream(rows, batch))
            busy = [occupancy([stops[i] for i in rows], batch, kept_full) for kept_full in (False, True)]
            print(f"{batch:>5} {len(rows):>9} {shrinking:>16.1f} {kept:>16.1f} {kept / shrinking:>15.2f} {kept / paper:>11.2f} "
                  f"{busy[0]:>22.0%} {busy[1]:>10.0%}")
        print("Where a decoding step costs about the same whatever the rows (a GPU reading the weights once per "
              "step), kept-full / shrinking approaches the ratio of busy slots; on these CPU cores a step's cost "
              "grows with its rows, so the gain is smaller.")


def projection(bandwidth: float, memory: float, fp16_flops: float, mean_generated: float,
               max_new_tokens: int) -> list[dict[str, float]]:
    """Hours of the full MMLU CoT per variant, for LLaMA-2-7B and 13B in float16 on a device of
    ``bandwidth`` bytes/s (assumed, or measured by perf/gpu_check.py) and ``memory`` bytes.
    Decoding is memory-bound: a step reads every weight once and each row's KV cache."""
    rows = []
    for name, (layers, d_model, params) in LLAMA2.items():
        weights = 2 * params
        kv = 2 * layers * d_model * 2  # bytes per token: keys and values, every layer, float16
        batch = fit(free_bytes=int(memory - weights), weight_bytes=int(weights), kv_bytes_per_token=kv,
                    n_heads=d_model // 128, longest_prompt=MMLU_PROMPT_MAX, max_new_tokens=max_new_tokens,
                    n_rows=MMLU_QUESTIONS, n_layers=layers).batch_size
        context = MMLU_PROMPT_MEAN + mean_generated / 2  # a row's mean cache length while it decodes
        tokens = MMLU_QUESTIONS * mean_generated
        prefill = 2 * params * MMLU_QUESTIONS * MMLU_PROMPT_MEAN / (0.5 * fp16_flops)  # compute-bound, 50% of peak
        step = (weights + batch * context * kv) / bandwidth
        kept = (tokens / batch * step + prefill) / 3600
        paper = (tokens * (weights + context * kv) / bandwidth + prefill) / 3600
        rows.append({"model": name, "batch": batch, "step_ms": step * 1e3, "kept_full_h": kept, "paper_loop_h": paper})
    return rows


def project(args: argparse.Namespace) -> None:
    bw = H100["bandwidth"]
    gen, prompt = args.mean_generated, MMLU_PROMPT_MEAN
    print(f"\nProjection, float16 on one H100 ({bw / 1e12:.2f} TB/s, {H100['memory'] / 2**30:.1f} GiB): full MMLU CoT, "
          f"{MMLU_QUESTIONS} questions, prompts {prompt} tokens on average (longest {MMLU_PROMPT_MAX}), answers "
          f"{gen:.0f} tokens on average (assumed), --max-new-tokens {args.max_new_tokens}.")
    print(f"{'model':<12} {'auto batch':>10} {'step ms':>8} {'kept-full h':>12} {'paper loop h':>13} {'x':>6}")
    for row in projection(bw, H100["memory"], H100["fp16_flops"], gen, args.max_new_tokens):
        kept, paper = row["kept_full_h"], row["paper_loop_h"]
        print(f"{row['model']:<12} {row['batch']:>10} {row['step_ms']:>8.2f} {kept:>12.2f} {paper:>13.1f} {paper / kept:>6.1f}"
              f"   (per variant; baseline + method: {2 * kept:.2f} h vs {2 * paper:.1f} h)")
    print("Assumptions: every step reads all weights and every row's KV cache at full bandwidth (a lower bound on "
          "time; real kernels reach 60-80% of it); the batch is what --batch-size auto picks (the KV buffers "
          "a row can hold: the longest prompt + max new tokens, 8/7 for padding, 1.5x + 16 room to grow; 90% of "
          "free memory) and stays full; the method's extra work "
          "(a mask from layer 0, a multiply per layer) reads no more memory, so it projects the same as the "
          "baseline; prefill at 50% of the fp16 peak; the paper's loop also decodes its whole response every step, "
          "not counted here.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--questions-per-slot", type=int, default=3, help="questions per batch slot (default 3)")
    parser.add_argument("--paper-questions", type=int, default=8, help="questions the (slow) paper loop answers")
    parser.add_argument("--lengths", type=int, nargs=2, default=[30, 1000])
    parser.add_argument("--prompts", type=int, nargs=2, default=[100, 300])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of shrinking and kept-full (default 2)")
    parser.add_argument("--mean-generated", type=float, default=400.0, help="mean CoT answer tokens, for the projection")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="the harness's limit, for the projection's batch")
    parser.add_argument("--projection-only", action="store_true")
    args = parser.parse_args()
    if not args.projection_only:
        measure(args)
    project(args)


if __name__ == "__main__":
    main()
