"""Every GPU path in one short run, with no download: numerics, speed, memory, sharding, projection.

For the first minutes a GPU is at hand (``make gpu-check``: at most about 8 minutes on one GPU).
Models are random weights of LLaMA-2-7B's shape (32 layers, d_model 4096, 32 heads) created on
the device, and of 13B's (40 layers, past the released code's h = 31) where memory allows; the
tokenizer is a small SentencePiece model trained here. It writes one JSON of figures (``--out``)
and prints a summary; it asserts nothing (the test suite runs the CPU form and checks the figures).

- numerics: for each dtype and intervention, the fast path against the bridge path and against a
  plain Hugging Face forward whose attention applies the edit independently (tests/reference.py):
  the largest logit difference at real positions, and whether 64 KV-cached greedy tokens agree;
- speed: ``interp.generate`` against HF ``generate`` with SDPA (the same weights), batch 1 and 16,
  512-token prompts, 256 new tokens, without edits, with the emulation forming its pattern
  (eager) and with the fused emulation (two FlexAttention passes); interleaved rounds, median of
  the per-round ratios; tokens/s against the bandwidth limit (the weights and the KV cache read
  once per step, at the device's bandwidth measured here by a copy);
- memory: ``--batch-size auto`` on 64 structured CoT questions (the batch it picks, the bound it
  planned with, the peak torch reports); then a batch too large for the memory left beside a
  ballast tensor, which must meet a real out-of-memory error, halve and go on, with answers equal
  to batch 1's;
- sharding: ``torchrun --nproc-per-node 2 -m interp accuracy`` on 32 questions (the tiny shipped
  model) on this device, merged records against one process's;
- projection: the MMLU hours of perf/cot_generation.py again, with the bandwidth the decoding
  steps reached here in place of the assumed one.

    python perf/gpu_check.py --out gpu-check.json                       # on a GPU: 7B and 13B shapes
    python perf/gpu_check.py --device cpu --shape tiny --out check.json   # the CPU form (the test suite's)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/reference.py: the edits written without interp

import interp  # noqa: E402
from interp.accuracy.memory import fit_batch, kv_bytes_per_token  # noqa: E402
from interp.accuracy.runner import Settings, prompt_of, read_results, run  # noqa: E402
from interp.edits.plan import plan_edits  # noqa: E402
from interp.model import fast_path  # noqa: E402
from interp.model.fast_path import fused_emulation  # noqa: E402
from interp.decoding.generation import decoder, generate_ids, stack_left_padded  # noqa: E402
from interp.accuracy.structured import held_out_items  # noqa: E402
from interp.tiny import random_decoder, train_sentencepiece  # noqa: E402
from interp.tiny.default import shipped  # noqa: E402
from tests.reference import EDIT, Edit, reference_copy, reference_greedy  # noqa: E402

from cot_generation import H100, projection  # noqa: E402
from timing import interleaved, median_ratio  # noqa: E402

# (layers, d_model, heads, key-value heads, d_mlp, vocab)
SHAPES = {
    "7b": [("LLaMA-2-7B", (32, 4096, 32, 32, 11008, 32000)), ("LLaMA-2-13B", (40, 5120, 40, 40, 13824, 32000))],
    "tiny": [("tiny", (6, 64, 4, 2, 256, 400)), ("tiny-deep", (34, 16, 2, 2, 32, 400))],  # 34 layers: h = 33
}
SIZES = {  # what each shape's speed and memory checks run
    "7b": {"prompt": 512, "new": 256, "batches": (1, 16), "rounds": 3, "questions": 64, "auto_new": 256,
           "oom_questions": 8, "oom_new": 32, "numerics_steps": 64, "shard_limit": 16},
    "tiny": {"prompt": 64, "new": 16, "batches": (1, 4), "rounds": 2, "questions": 8, "auto_new": 8,
             "oom_questions": 4, "oom_new": 8, "numerics_steps": 16, "shard_limit": 2},
}


def now() -> float:
    return time.perf_counter()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(shape: tuple[int, ...], device: str, dtype: torch.dtype, tokenizer: Path) -> tuple[Any, Any, Any]:
    """(hooked model, reference model, HF SDPA model sharing the hooked model's weights)."""
    layers, d_model, heads, kv_heads, d_mlp, vocab = shape
    hf = random_decoder("llama", n_layers=layers, d_model=d_model, n_heads=heads, n_kv_heads=kv_heads, d_mlp=d_mlp,
                        vocab_size=vocab, max_positions=4096, init_std=0.02, seed=0, device=device, dtype=dtype)
    reference = reference_copy(hf)  # its own weights: the bridge rewires the model it wraps
    shared = {id(t): t for t in [*hf.parameters(), *hf.buffers()]}
    sdpa = copy.deepcopy(hf, memo=shared)
    sdpa.config._attn_implementation = "sdpa"
    model = interp.load_model(hf, tokenizer=tokenizer, device=device)
    return model, reference, sdpa


def interventions(n_layers: int) -> dict[str, tuple[tuple[Any, ...], Edit, bool | None]]:
    """name -> (interventions, the reference's edit, fused emulation on/off/None)."""
    last = n_layers - 1
    emulation = (interp.TopLayerEmulation(),)
    edit = Edit("emulation", last_layer=last)
    removed = tuple(layer for layer in (4, 6, 8) if layer < n_layers)  # the paper's, where the model has them
    return {
        "none": ((), Edit("none"), None),
        "emulation": (emulation, edit, False),
        "emulation (fused)": (emulation, edit, True),
        "prompt-removal": ((interp.PromptRangeRemoval((1, 9), layers=removed),),
                           Edit("remove", prompt_range=(1, 9), layers=removed), None),
        "anchor-ablation": ((interp.AnchorAblation((0, 9), anchors=(0, 4, 8)),),
                            Edit("anchors", prompt_range=(0, 9), anchors=(0, 4, 8)), None),
        "keep-anchors": ((interp.AnchorAblation((0, 9), anchors=(0, 4, 8), keep_only=True),),
                         Edit("anchors", prompt_range=(0, 9), anchors=(0, 4, 8), keep_only=True), None),
    }


def set_reference(edit: Edit, pad: list[int]) -> None:
    for name, value in vars(edit).items():
        setattr(EDIT, name, value)
    EDIT.left_pad, EDIT.state = pad, {}


@torch.no_grad()
def numerics(model: Any, reference: Any, vocab: int, steps: int, device: str, only: tuple[str, ...] | None = None) -> dict:
    """Largest logit differences at real positions, and greedy agreement over ``steps`` tokens."""
    torch.manual_seed(1)
    ids, pad = stack_left_padded([torch.randint(3, vocab, (n,)).tolist() for n in (48, 40, 44)], 0)
    ids, pad = ids.to(device), pad.to(device)
    mask = (torch.arange(ids.shape[1], device=device)[None] >= pad[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    plain = model(ids, attention_mask=mask, position_ids=positions)
    out = {}
    for name, (ivs, edit, fused) in interventions(model.cfg.n_layers).items():
        if only and name not in only:
            continue
        try:
            out[name] = compare(model, reference, ivs, edit, fused, ids, pad, mask, positions, plain, steps)
        except Exception as err:  # one path failing on this device must not hide the others' figures
            out[name] = {"error": failure(err)}
    return out


def compare(model: Any, reference: Any, ivs: tuple, edit: Edit, fused: bool | None, ids: torch.Tensor,
            pad: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, plain: torch.Tensor, steps: int) -> dict:
    real = mask.bool()
    set_reference(edit, pad.tolist())
    expected = reference(ids, attention_mask=mask, position_ids=positions).logits
    with fused_emulation(fused), decoder(model, ivs, pad) as fast:
        fast_logits = fast(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    with interp.intervene(model, *ivs, left_pad=pad):
        bridge = model(ids, attention_mask=mask, position_ids=positions)
    set_reference(edit, pad.tolist())
    greedy_ref = reference_greedy(reference, ids, pad.tolist(), steps=steps)
    with fused_emulation(fused):
        greedy = generate_ids(model, ids, max_new_tokens=steps, left_pad=pad.cpu(), interventions=ivs, eos_token_id=-1)
    agree = (greedy.to(greedy_ref.device) == greedy_ref).all(dim=0)
    return {
        "fast_vs_bridge": (fast_logits - bridge)[real].abs().max().item(),
        "fast_vs_reference": (fast_logits - expected)[real].abs().max().item(),
        "edit_effect": (plain - expected)[real].abs().max().item(),  # the edit matters, or the rest proves nothing
        "greedy_identical": bool(agree.all()),
        "greedy_steps_agreeing": int(agree.long().cumprod(0).sum()),
        "edited_layers": len(plan_edits(model, *ivs).edited_layers),
    }


def failure(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(err)).strip()[-2000:]


def bandwidth(device: str) -> float:
    """Bytes per second of a large device copy (it reads and writes every byte)."""
    n = 2**28 if device.startswith("cuda") else 2**25
    x = torch.empty(n, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    synchronize(device)
    best = math.inf
    for _ in range(5):
        start = now()
        y.copy_(x)
        synchronize(device)
        best = min(best, now() - start)
    return 2 * n / best


@torch.no_grad()
def speed(model: Any, sdpa: Any, sizes: dict, device: str, bytes_per_second: float) -> dict:
    vocab, new = model.cfg.d_vocab, sizes["new"]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    kv = kv_bytes_per_token(model)
    emulation = [interp.TopLayerEmulation()]
    out = {}
    for batch in sizes["batches"]:
        ids = torch.randint(3, vocab, (batch, sizes["prompt"]), device=device)

        def ours(ivs: list, fused: bool | None = None) -> Callable[[], Any]:
            def go() -> Any:
                with fused_emulation(fused):
                    return generate_ids(model, ids, max_new_tokens=new, interventions=ivs, eos_token_id=-1)
            return go

        runs = {
            "HF generate (SDPA)": lambda: sdpa.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                                                        min_new_tokens=new, do_sample=False, pad_token_id=0),
            "interp.generate": ours([]),
            "interp.generate + emulation": ours(emulation, False),
            "interp.generate + emulation (fused)": ours(emulation, True),
        }
        times = interleaved(runs, sizes["rounds"], device)
        # A step reads every weight and each row's cache, on average the prompt and half the answer.
        step_bytes = weights + batch * (sizes["prompt"] + new / 2) * kv
        limit = batch * bytes_per_second / step_bytes
        out[str(batch)] = {name: {"tokens_per_second": batch * new / statistics.median(times[name]),
                                  "x_hf_sdpa": median_ratio(times, name, "HF generate (SDPA)"),
                                  "share_of_bandwidth_limit": batch * new / statistics.median(times[name]) / limit,
                                  "seconds": times[name]}
                           for name in runs}
        out[str(batch)]["bandwidth_limit_tokens_per_second"] = limit
        out[str(batch)]["bytes_per_step"] = step_bytes
    return out


def memory(model: Any, sizes: dict, device: str, folder: Path) -> dict:
    items = held_out_items(sizes["questions"] // 2)  # two families
    settings = Settings(max_new_tokens=sizes["auto_new"])
    prompts = [prompt_of(model, item, settings).ids for item in items]
    fit = fit_batch(model, max(map(len, prompts)), settings.max_new_tokens, len(items))
    out: dict[str, Any] = {"questions": len(items), "longest_prompt": max(map(len, prompts)),
                           "max_new_tokens": settings.max_new_tokens, "batch_picked": fit.batch_size,
                           "planned_bytes": fit.bytes_per_row * fit.batch_size, "plan": fit.explain()}
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    start = now()
    with contextlib.redirect_stdout(io.StringIO()):
        run(model, items, folder / "auto", variant="cot", settings=settings, batch_size="auto", progress=False)
    out["seconds"] = now() - start
    if cuda:
        out["peak_bytes_above_weights"] = torch.cuda.max_memory_allocated() - before
        out["peak_within_plan"] = out["peak_bytes_above_weights"] <= out["planned_bytes"]
    else:
        out["peak_bytes_above_weights"] = None  # torch reports no peak for the CPU
    out["oom"] = oom_backoff(model, items[: sizes["oom_questions"]], Settings(max_new_tokens=sizes["oom_new"]), folder) \
        if cuda else {"skipped": "a real out-of-memory error needs CUDA (tests/test_harness.py injects one on the CPU)"}
    return out


def oom_backoff(model: Any, items: list, settings: Settings, folder: Path) -> dict:
    """A batch of every question, in the memory a ballast leaves for about two rows: it must meet a
    real out-of-memory error, halve until it fits, and answer as batch 1 does."""
    one = run(model, items, folder / "batch-1", variant="cot", settings=settings, batch_size=1, progress=False)
    prompts = max(a.prompt_tokens for a in one)
    row = fit_batch(model, prompts, settings.max_new_tokens, 1, free_bytes=2**40).bytes_per_row
    torch.cuda.empty_cache()
    free = torch.cuda.mem_get_info()[0]
    ballast = torch.empty(max(0, free - int(2.5 * row)), dtype=torch.uint8, device="cuda")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            many = run(model, items, folder / "backed-off", variant="cot", settings=settings, batch_size=len(items),
                       progress=False)
    finally:
        del ballast
        torch.cuda.empty_cache()
    halvings = printed.getvalue().count("out of memory: batch size halved")
    same = [a.response == b.response for a, b in zip(one, many)]
    return {"rows_room": 2.5, "row_bytes": row, "batch_asked": len(items), "halvings": halvings,
            "answers_equal_batch_1": sum(same), "answers": len(same)}


def sharding(device: str, limit: int, folder: Path) -> dict:
    """torchrun over 2 processes on this device against one process, ``limit`` questions per family."""
    def command(results: Path, *launch: str) -> list[str]:
        return [*launch, "accuracy", "--benchmark", "structured", "--model", str(shipped()), "--limit", str(limit),
                "--max-new-tokens", "40", "--device", device, "--threads", "1", "--method", "emulation",
                "--results", str(results), "--out", str(results) + "-report"]

    times = {}
    for name, launch in [("one", [sys.executable, "-m", "interp"]),
                         ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                                  "-m", "interp"])]:
        start = now()
        done = subprocess.run(command(folder / name, *launch), cwd=ROOT, capture_output=True, text=True, timeout=300)
        times[name] = now() - start
        if done.returncode:
            return {"error": f"{name} process(es) failed: {done.stderr[-2000:]}", "seconds": times}
    equal = {}
    for variant in ("cot", "cot+emulation"):
        one, two = read_results(folder / "one" / f"{variant}.jsonl"), read_results(folder / "two" / f"{variant}.jsonl")
        equal[variant] = sorted(one) == sorted(two) and all(one[i].response == two[i].response and
                                                            one[i].predictions == two[i].predictions for i in one)
    return {"questions": len(read_results(folder / "one" / "cot.jsonl")), "merged_equal_one_process": equal,
            "seconds": times}


def measured_projection(checked: dict, device: str) -> dict:
    """The MMLU projection with the bandwidth the biggest decoding batch reached here (bytes each
    step read over its measured time) in place of the assumed one."""
    speed_figures = checked["speed"]
    batch = max(speed_figures, key=int)
    reached = speed_figures[batch]["interp.generate"]["share_of_bandwidth_limit"] * checked["bandwidth_bytes_per_second"]
    memory_bytes = torch.cuda.get_device_properties(device).total_memory if device.startswith("cuda") else H100["memory"]
    return {"effective_bandwidth": reached, "from_batch": int(batch), "device_memory": memory_bytes,
            "assumed": projection(H100["bandwidth"], H100["memory"], H100["fp16_flops"], 400, 2048),
            "measured": projection(reached, memory_bytes, H100["fp16_flops"], 400, 2048)}


def summary(checked: dict) -> str:
    lines = [f"gpu_check on {checked['device_name']} ({checked['device']}), torch {checked['torch']}, "
             f"{checked['seconds']:.0f} s; bandwidth measured {checked['bandwidth_bytes_per_second'] / 1e9:.0f} GB/s"]
    for shape, per_dtype in checked["numerics"].items():
        for dtype, rows in per_dtype.items():
            if "skipped" in rows:
                lines.append(f"numerics {shape} {dtype}: skipped, {rows['skipped']}")
                continue
            for name, row in rows.items():
                lines.append(f"numerics {shape} {dtype:<8} {name:<20} fast-bridge {row['fast_vs_bridge']:.2e} "
                             f"fast-reference {row['fast_vs_reference']:.2e} (edit moves logits {row['edit_effect']:.2e}); "
                             f"greedy {row['greedy_steps_agreeing']} steps agree")
    for batch, rows in checked.get("speed", {}).items():
        for name, row in rows.items():
            if isinstance(row, dict):
                lines.append(f"speed batch {batch:>2} {name:<38} {row['tokens_per_second']:>9.1f} tok/s "
                             f"{row['x_hf_sdpa']:.2f}x HF SDPA, {row['share_of_bandwidth_limit']:.0%} of the bandwidth limit")
    if "memory" in checked:
        m = checked["memory"]
        peak = "n/a" if m["peak_bytes_above_weights"] is None else f"{m['peak_bytes_above_weights'] / 2**30:.2f} GiB"
        lines.append(f"memory: --batch-size auto picked {m['batch_picked']} for {m['questions']} questions; planned "
                     f"{m['planned_bytes'] / 2**30:.2f} GiB, peak {peak}; out of memory: {m['oom']}")
    if "sharding" in checked:
        lines.append(f"sharding: {checked['sharding']}")
    for row in checked.get("projection", {}).get("measured", []):
        lines.append(f"projection (measured bandwidth) {row['model']}: batch {row['batch']}, {row['kept_full_h']:.2f} h "
                     f"per variant ({row['step_ms']:.2f} ms a step)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--dtypes", nargs="+", default=["float16", "bfloat16"])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    parser.add_argument("--skip", nargs="*", default=[], choices=["numerics", "speed", "memory", "sharding"])
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, help="interleaved speed rounds (default: 3 on the 7B shape, 2 on tiny)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = now()
    device, sizes = args.device, SIZES[args.shape] | ({"rounds": args.rounds} if args.rounds else {})
    checked: dict[str, Any] = {
        "device": device, "torch": torch.__version__, "shape": args.shape,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "bandwidth_bytes_per_second": bandwidth(device), "numerics": {}, "section_seconds": {},
    }

    def save() -> None:
        checked["seconds"] = now() - started
        args.out.write_text(json.dumps(checked, indent=2, default=str))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tokenizer = train_sentencepiece(["a b c d e f g h Question Analysis Response"] * 50, folder / "t.model",
                                        vocab_size=300)
        for index, (name, shape) in enumerate(SHAPES[args.shape]):
            deep = index > 0  # the deeper shape: the emulation's h past 31, where memory allows
            for dtype in args.dtypes if not deep else args.dtypes[:1]:
                start = now()
                try:
                    model, reference, sdpa = build(shape, device, getattr(torch, dtype), tokenizer)
                except torch.cuda.OutOfMemoryError as err:
                    checked["numerics"].setdefault(name, {})[dtype] = {"skipped": f"out of memory: {err}"}
                    continue
                if "numerics" not in args.skip:
                    only = ("none", "emulation", "emulation (fused)") if deep else None
                    checked["numerics"].setdefault(name, {})[dtype] = numerics(
                        model, reference, shape[5], sizes["numerics_steps"], device, only)
                checked["section_seconds"][f"numerics {name} {dtype}"] = now() - start
                save()
                if not deep and dtype == args.dtypes[0]:
                    for section, fn in [("speed", lambda: speed(model, sdpa, sizes, device,
                                                                checked["bandwidth_bytes_per_second"])),
                                        ("memory", lambda: memory(model, sizes, device, folder))]:
                        if section not in args.skip:
                            start = now()
                            try:
                                checked[section] = fn()
                            except Exception as err:
                                checked[section] = {"error": failure(err)}
                            checked["section_seconds"][section] = now() - start
                            save()
                del model, sdpa, reference
                gc.collect()
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
        if "sharding" not in args.skip:
            start = now()
            try:
                checked["sharding"] = sharding(device, sizes["shard_limit"], folder)
            except Exception as err:
                checked["sharding"] = {"error": failure(err)}
            checked["section_seconds"]["sharding"] = now() - start
        if "error" not in checked.get("speed", {"error": "not run"}):
            checked["projection"] = measured_projection(checked, device)
    checked["fused_emulation_failed"] = dict(fast_path.UNFUSED)  # where the default fell back to the pattern
    save()
    print(summary(checked))
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
