"""Train a tiny LLaMA on the structured dataset, on the CPU, deterministically and resumably.

The result is a Hugging Face LLaMA directory (safetensors, ``tokenizer.model``, ``training.json``)
that :func:`interp.load_model` loads like any LLaMA-2 directory. Batch ``s`` is drawn from a
generator seeded by ``(seed, s)``, so a run resumed from a checkpoint sees exactly the batches an
uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from interp.accuracy.prompts import instruction
from interp.model.load import sentencepiece_tokenizer
from interp.accuracy.structured import FAMILIES, PUNCTUATION, WORDS, Drill, drills, questions, take
from interp.tiny.tokenizer import train_sentencepiece
from interp.files import hold, refuse_other_run
from interp.train.shared import atomic_save, collate, load_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    n_layers: int = 10
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 256
    vocab_size: int = 1024
    attention_dropout: float = 0.0
    steps: int = 5000
    batch_size: int = 32
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.05
    # Look-ups are learnt far sooner on short contexts: the first `short_steps` steps train without
    # the instruction, later steps put it in front of `1 - short_share` of the rows.
    short_steps: int = 2500
    short_share: float = 0.75
    # Share of the short steps' rows that are look-up drills (many look-ups per row, no question).
    drill_share: float = 0.5
    # Whether the question's tokens are trained on too; the table's random values are noise to the
    # look-ups, so by default only the analysis and the response are.
    question_loss: bool = False
    checkpoint_every: int = 200
    threads: int = 1
    families: tuple[str, ...] = FAMILIES


def _tokenizer(config: TrainConfig, folder: Path):
    """A tokenizer in which every key and value of the tables is one token: a look-up is then the
    copy of one token (what an induction head does), not of a digit sequence."""
    path = folder / "tokenizer.model"
    if not path.is_file():
        corpus = [q.prompt + q.completion for q in take("train", config.seed, 4000, config.families)]
        train_sentencepiece(corpus, path, config.vocab_size, split_digits=False, symbols=PUNCTUATION)
    tokenizer = sentencepiece_tokenizer(path)
    split = [word for word in WORDS if len(tokenizer(" " + word, add_special_tokens=False).input_ids) != 1]
    if split:
        raise ValueError(f"vocab_size={config.vocab_size} leaves {split[:5]} as several tokens; raise vocab_size "
                         f"and delete {path}")
    return tokenizer


def _model(config: TrainConfig, vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=config.d_model, intermediate_size=config.d_mlp,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads, max_position_embeddings=512,
        attention_dropout=config.attention_dropout, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=True, attn_implementation="sdpa",
    ))
    # GPT-2's scaled initialisation of what each layer writes to the residual stream: the deep
    # stack starts close to the identity, and look-ups are learnt as early as by two layers (in
    # pilots, 10 layers with the plain 0.02 were still at chance after 1800 steps; scaled, learnt
    # by 1400).
    std = model.config.initializer_range / math.sqrt(2 * config.n_layers)
    for layer in model.model.layers:
        torch.nn.init.normal_(layer.self_attn.o_proj.weight, std=std)
        torch.nn.init.normal_(layer.mlp.down_proj.weight, std=std)
    return model


def _batches(tokenizer: Any, config: TrainConfig, step: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Step ``step``'s rows as right-padded (ids, attention mask, labels), short rows (drills and
    questions without the instruction) and full rows padded separately so the short ones cost
    little. Question labels cover the analysis and the response (with ``question_loss``, everything
    after the instruction); drill labels cover the values asked for."""
    seed = config.seed * 1_000_003 + step
    stream, drill_stream = questions("train", seed, config.families), drills(seed, config.families)
    short = step < config.short_steps
    n_drills = round(config.drill_share * config.batch_size) if short else 0
    n_short = round((1.0 if short else config.short_share) * config.batch_size)
    groups: list[list[tuple[list[int], list[int]]]] = [[], []]
    for row in range(config.batch_size):
        if row < n_drills:
            groups[0].append(_drill_row(tokenizer, next(drill_stream)))
            continue
        q = next(stream)
        full = row >= n_short
        prompt = q.prompt if full else q.short_prompt
        if config.question_loss:  # everything after the instruction (after BOS alone in short rows)
            unlabelled = instruction(len(q.options)) if full else ""
        else:
            unlabelled = prompt
        ids = tokenizer(prompt + q.completion).input_ids + [tokenizer.eos_token_id]
        start = len(tokenizer(unlabelled).input_ids)
        groups[full].append((ids, [-100] * start + ids[start:]))
    return [collate(group, 0) for group in groups if group]


def _drill_row(tokenizer: Any, drill: Drill) -> tuple[list[int], list[int]]:
    ids = tokenizer(drill.table).input_ids
    labels = [-100] * len(ids)
    for key, value in drill.asked:
        asked = tokenizer(f" {key}", add_special_tokens=False).input_ids
        answer = tokenizer(f" {value}.", add_special_tokens=False).input_ids
        ids += asked + answer
        labels += [-100] * len(asked) + answer
    return ids, labels


def _lr(config: TrainConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(config: TrainConfig, out: str | Path, *, progress: bool = True) -> Path:
    """Train (or resume) into ``out``; returns the finished model directory ``out``."""
    out = Path(out)
    with hold(out):  # a second run into this folder is refused until this one ends
        work = out / "checkpoint"
        work.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.threads)
        tokenizer = _tokenizer(config, work)
        model = _model(config, len(tokenizer))
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
        state_file = work / "state.pt"
        start, losses = 0, []
        if state_file.is_file():
            state = load_checkpoint(state_file)
            refuse_other_run(_identity(state["config"]), _identity(dataclasses.asdict(config)), lambda key, was, now: (
                f"{state_file} was written by a different configuration ({key}: {was!r} there, {now!r} now); delete "
                f"{work} to start afresh"))
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            start, losses = state["step"], state["losses"]
        model.train()
        bar = tqdm(range(start, config.steps), initial=start, total=config.steps, disable=not progress,
                   desc=f"training {out.name}", unit="step")
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = _lr(config, step)
            optimizer.zero_grad(set_to_none=True)
            parts = _batches(tokenizer, config, step)
            counts = [int((labels[:, 1:] != -100).sum()) for _, _, labels in parts]
            loss = sum(model(input_ids=ids, attention_mask=mask, labels=labels).loss * n / sum(counts)
                       for (ids, mask, labels), n in zip(parts, counts))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                atomic_save({"config": dataclasses.asdict(config), "model": model.state_dict(),
                              "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                              "step": step + 1, "losses": losses}, state_file)
        model.eval()
        model.config.attn_implementation = "eager"
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        shutil.copyfile(work / "tokenizer.model", out / "tokenizer.model")
        (out / "training.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
            "loss_every_50_steps": losses[::50],
        }, indent=2))
        return out


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    # The thread count changes speed, not what is trained, so a run may resume with more threads.
    return {k: v for k, v in config.items() if k != "threads"}
