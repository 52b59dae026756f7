"""The main job's default: the two tiny LLaMAs shipped in the package, trained by
:mod:`interp.tiny.build` on the structured dataset (without and with attention dropout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.accuracy.prompts import instruction, question_block
from interp.tiny.dataset import take

MODELS = Path(__file__).parent / "models"
MAIN, DROPOUT = "cot-tiny", "cot-tiny-dropout"


def shipped(name: str = MAIN) -> Path:
    path = MODELS / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the shipped model {path} is missing; rebuild it with `python -m interp.tiny.build`")
    return path


def load_shipped(name: str = MAIN, *, dtype: str | None = None, device: str | None = None) -> Any:
    import interp

    return interp.load_model(shipped(name), dtype=dtype, device=device)


def default_example(seed: int = 0) -> tuple[str, str, str]:
    """(prompt, dialogue, answer) of a held-out question: the instruction is the prompt range; the
    question and options up to ``Analysis:`` are the dialogue; the reference analysis and response
    are the answer."""
    question = take("held_out", seed, 1, ("social",))[0]
    prompt = instruction(len(question.options))
    return prompt, question_block(question.question, question.options) + "\n Analysis:", question.completion
