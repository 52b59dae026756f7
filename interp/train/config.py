"""What a fine-tuning run is given (:class:`FinetuneConfig`): plain values, read by the command
line without loading the trainer."""

from __future__ import annotations

from dataclasses import dataclass

STRUCTURED = "structured"


@dataclass(frozen=True)
class FinetuneConfig:
    model: str
    data: str = STRUCTURED  # or the path of a JSONL file of {"prompt", "response"} rows
    instruction: bool = True  # structured rows with the paper's instruction in front (off: short contexts)
    # The instruction (150 tokens on LLaMA-like tokenizers) on every n-th step's rows only: the
    # other steps train on questions alone, 3-4x shorter, so a CPU run costs a third as much.
    instruction_every: int = 1
    attention_dropout: float = 0.0
    lora_rank: int | None = 8  # None: full fine-tuning
    lora_alpha: float = 16.0
    steps: int = 200
    batch_size: int = 8
    lr: float = 3e-4
    warmup: int = 10
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 25
    held_out: int = 25  # structured data: held-out questions per family for the accuracy record
    dtype: str = "float32"  # of the weights being trained (bfloat16 for a 7B LoRA run on a GPU)

    def __post_init__(self) -> None:
        if not 0 <= self.attention_dropout < 1:
            raise ValueError(f"attention_dropout={self.attention_dropout} must lie in [0, 1)")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise ValueError(f"lora_rank={self.lora_rank} must be at least 1 (or None for full fine-tuning)")
        if self.instruction_every < 1:
            raise ValueError(f"instruction_every={self.instruction_every} must be at least 1 (1: every step)")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")
