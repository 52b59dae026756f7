"""Fine-tune a pretrained LLaMA on (prompt, response) rows, with or without attention dropout.

- Rows: the project's structured CoT questions (:mod:`interp.accuracy.structured`, the paper's layout),
  or a JSONL file of ``{"prompt": ..., "response": ...}``. The loss is on the response tokens only.
- LoRA through ``peft`` (merged into the weights at the end) or full fine-tuning.
- Attention dropout through the model's own ``attention_dropout``: active in ``train()`` mode
  only, so evaluation and the written model are unaffected.
- Deterministic for a seed: step ``s`` trains on rows fixed by ``(seed, s)``, and a checkpoint
  holds the trainable weights, the optimiser and the random state, so a killed run resumes to
  the same weights, bit for bit, as an uninterrupted one. A resume with other settings is refused.
- The result is a Hugging Face directory that :func:`interp.load_model` loads like
  Llama-2-7b-chat-hf, with ``training.json`` beside it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TYPE_CHECKING

import torch
from torch import Tensor
from tqdm import tqdm

from interp.accuracy.data import jsonl_rows
from interp.model.load import load_hf
from interp.files import hold, read_json, refuse_other_run
from interp.train.config import STRUCTURED, FinetuneConfig
from interp.train.shared import atomic_save, collate, load_checkpoint

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from interp.model.load import InterpModel

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Row:
    prompt: str
    response: str
    where: str  # for messages: "rows.jsonl:12", "structured question 40"


def read_rows(path: str | Path) -> list[Row]:
    """``{"prompt": ..., "response": ...}`` per line; a bad line is named (``file:line``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; pass --data structured or a JSONL file of prompt/response rows")
    rows = [Row(row["prompt"], row["response"], f"{path.name}:{number}")
            for number, row in jsonl_rows(path, ("prompt", "response"))]
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def step_rows(config: FinetuneConfig, rows: Sequence[Row] | None, step: int) -> list[Row]:
    """The rows of step ``step``: fixed by the seed and the step, whatever came before."""
    if rows is None:
        from interp.accuracy.structured import questions

        stream = questions("train", config.seed * 1_000_003 + step)
        instructed = config.instruction and step % config.instruction_every == 0
        return [Row(q.prompt if instructed else q.short_prompt, q.completion,
                    f"structured question {i} of step {step}") for i, q in zip(range(config.batch_size), stream)]
    # Epochs of a seeded permutation; step s takes the next batch_size rows of that sequence.
    start = step * config.batch_size
    out = []
    for position in range(start, start + config.batch_size):
        epoch, index = divmod(position, len(rows))
        order = list(range(len(rows)))
        random.Random(config.seed * 1_000_003 + epoch).shuffle(order)
        out.append(rows[order[index]])
    return out


def encode(tokenizer: Any, row: Row, context: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + response + EOS, and labels that cover only the response and EOS."""
    prompt = tokenizer(row.prompt).input_ids
    ids = tokenizer(row.prompt + row.response).input_ids + [tokenizer.eos_token_id]
    if len(ids) > context:
        raise ValueError(f"{row.where} has {len(ids)} tokens, more than the model's context of {context}; "
                         "shorten or drop it")
    # The response starts where the prompt's own tokens stop agreeing with the whole's.
    start = next((i for i, (a, b) in enumerate(zip(ids, prompt)) if a != b), len(prompt))
    return ids, [-100] * start + ids[start:]


def set_attention_dropout(model: InterpModel, p: float) -> None:
    """The model's own attention dropout (LLaMA's attention modules read it in training mode)."""
    model.config.attention_dropout = p
    for module in model.modules():
        if hasattr(module, "attention_dropout") and isinstance(module.attention_dropout, float):
            module.attention_dropout = p


def _prepare(config: FinetuneConfig, cache: str | Path | None = None) -> tuple[Any, Any]:
    model, tokenizer = load_hf(config.model, dtype=config.dtype, cache=cache)
    set_attention_dropout(model, config.attention_dropout)
    if config.lora_rank is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ValueError("--lora needs peft: pip install 'interp[finetune]' (or use --full)") from None

        torch.manual_seed(config.seed)  # LoRA's A matrices are drawn at random
        model = get_peft_model(model, LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                                 target_modules=list(LORA_TARGETS), bias="none"))
    return model, tokenizer


def _trainable(model: InterpModel) -> dict[str, Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _lr(config: FinetuneConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _finished(out: Path, config: FinetuneConfig) -> bool:
    """Whether ``out`` already holds this run's model, moved in whole (training.json is moved last)."""
    record = out / "training.json"
    return (out / "config.json").is_file() and record.is_file() and \
        read_json(record)["settings"] == dataclasses.asdict(config)


def finetune(config: FinetuneConfig, out: str | Path, *, progress: bool = True, stop_after: int | None = None,
             command: str | None = None, cache: str | Path | None = None) -> Path:
    """Fine-tune (or resume) into ``out``; returns ``out``. ``stop_after`` ends the run early after
    that many steps, with its checkpoint written, as a kill would (for tests and for slicing a
    long run)."""
    out = Path(out)
    work = out / "checkpoint"
    rows = None if config.data == STRUCTURED else read_rows(config.data)
    model, tokenizer = _prepare(config, cache)  # a bad model or data fails here, before anything is written
    with hold(out):  # a second run into this folder is refused until this one ends
        context = int(model.config.max_position_embeddings)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        state_file = work / "state.pt"
        start, losses = 0, []
        torch.manual_seed(config.seed)
        if state_file.is_file():
            state = load_checkpoint(state_file)
            refuse_other_run(state["config"], dataclasses.asdict(config), lambda key, was, now: (
                f"{state_file} was written with other settings ({key}): {was!r} there, {now!r} now; resume with the "
                f"same settings, or delete {work} to start afresh"))
            # The checkpoint holds the trainable weights only; every one of them must find its place.
            unexpected = model.load_state_dict(state["trainable"], strict=False).unexpected_keys
            if unexpected:
                raise ValueError(f"{state_file} holds weights this model does not have ({unexpected[:3]}); delete {work} "
                                 "to start afresh")
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            start, losses = state["step"], state["losses"]
        work.mkdir(parents=True, exist_ok=True)
        model.train()  # attention dropout on
        last = config.steps if stop_after is None else min(config.steps, start + stop_after)
        bar = tqdm(range(start, last), initial=start, total=config.steps, disable=not progress,
                   desc=f"fine-tuning {out.name}", unit="step")
        with bar:  # closed on the way out of an error too: the error's message is the last line printed
            for step in bar:
                for group in optimizer.param_groups:
                    group["lr"] = _lr(config, step)
                ids, mask, labels = collate([encode(tokenizer, r, context) for r in step_rows(config, rows, step)],
                                            tokenizer.pad_token_id or 0)
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
                if (step + 1) % config.checkpoint_every == 0 or step + 1 == last:
                    atomic_save({"config": dataclasses.asdict(config), "trainable": _trainable(model),
                                  "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "step": step + 1,
                                  "losses": losses}, state_file)
        if last < config.steps:
            return out
        if _finished(out, config):
            return out
        model.eval()
        staging = out / "writing"
        shutil.rmtree(staging, ignore_errors=True)
        if config.lora_rank is not None:
            # The adapter alone (a few MB; base_model_name_or_path as the user named the base, so it
            # loads wherever that name resolves), then the merged model beside it.
            model.peft_config["default"].base_model_name_or_path = _base_name(config.model)
            model.save_pretrained(staging / ADAPTER_FOLDER)
            tokenizer.save_pretrained(staging / ADAPTER_FOLDER)
            model = model.merge_and_unload()
        set_attention_dropout(model, config.attention_dropout)  # recorded in the config; inert outside training
        # Written whole in a staging folder, then moved in with config.json and training.json last: a
        # kill leaves no directory that loads as a finished model.
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        record = {"base_model": config.model, "data": config.data, "settings": dataclasses.asdict(config),
                  "command": command,
                  "loss_per_step": losses, "final_loss": sum(losses[-10:]) / len(losses[-10:]),
                  "merged_logits": merged_logits(model, tokenizer)}
        if rows is None:
            record["held_out_accuracy"] = held_out_accuracy(staging, config.held_out, config.instruction, cache)
        (staging / "training.json").write_text(json.dumps(record, indent=2))
        moved_last = ["config.json", "training.json"]
        for path in [p for p in staging.iterdir() if p.name not in moved_last] + [staging / name for name in moved_last]:
            if (out / path.name).is_dir():  # left by a run killed after moving it in: this one replaces it
                shutil.rmtree(out / path.name)
            path.replace(out / path.name)
        staging.rmdir()
        return out


CHECK_TEXT = "Owners: cup Ann, hat Bob. Who owns the hat?\n\nA. Ann\nB. Bob\n Analysis:"


@torch.no_grad()
def merged_logits(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str = CHECK_TEXT, k: int = 16) -> dict[str, Any]:
    """The written model's largest next-token logits after ``text``: recorded at training time, so
    that whoever loads the adapter alone (base + adapter, merged at load time) can check they get
    the model that was trained."""
    ids = torch.tensor([tokenizer(text).input_ids])
    top = model(input_ids=ids).logits[0, -1].float().topk(k)
    return {"text": text, "token_ids": top.indices.tolist(), "logits": top.values.tolist()}


ADAPTER_FOLDER = "adapter"  # inside a LoRA run's folder: what interp.load_model merges into the base


def _base_name(model: str) -> str:
    """A path made absolute (the adapter may be read from anywhere); a hub or short name as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def held_out_accuracy(folder: Path, per_family: int, instruction: bool = True,
                      cache: str | Path | None = None) -> dict[str, Any]:
    """Greedy CoT accuracy (final extraction) of the written model on held-out structured
    questions, per family, in the layout it was trained on: the harness's baseline, no method."""
    from interp.accuracy.harness import BASELINE, evaluate
    from interp.accuracy.structured import held_out_items
    from interp.model.load import load_model

    with tempfile.TemporaryDirectory() as scratch:
        summary = evaluate(load_model(folder, cache=cache), held_out_items(per_family), scratch, methods=(),
                           max_new_tokens=96, batch_size=16, instruction=instruction, progress=False).summary
    return {r["name"]: {"n": r["n"], "accuracy": r["accuracy"], "parse_rate": r["parse_rate"]} for r in summary["rows"]
            if r["mode"] == "final" and r["variant"] == BASELINE and r["level"] in ("overall", "category")}


def pair(config: FinetuneConfig, out: str | Path, *, progress: bool = True, command: str | None = None,
         cache: str | Path | None = None) -> tuple[Path, Path]:
    """Both variants from the same base, rows and seed: ``out/without-dropout`` (attention dropout
    0) and ``out/with-dropout`` (the config's, 0.1 if it gives none)."""
    out = Path(out)
    dropout = config.attention_dropout or 0.1
    without = finetune(dataclasses.replace(config, attention_dropout=0.0), out / "without-dropout", progress=progress,
                       command=command, cache=cache)
    with_ = finetune(dataclasses.replace(config, attention_dropout=dropout), out / "with-dropout", progress=progress,
                     command=command, cache=cache)
    return without, with_
