"""The main job's default model until the trained tiny models ship: a seeded random LLaMA with
a SentencePiece tokenizer trained on the default example's text, built locally in seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from interp.tiny.random_model import random_llama
from interp.tiny.tokenizer import train_sentencepiece

PROMPT = (
    "The following is a multiple choice question. Think step by step and write your reasoning "
    "after Analysis:. Then write the letter of the correct option after Response:.\n"
    "Options are labelled A, B, C and D.\n"
)
DIALOGUE = (
    "Question: Ann has 3 apples and Bob has 5 apples. Who has more apples?\n"
    "A. Ann\nB. Bob\nC. Both the same\nD. Neither\n"
    "Analysis: Ann has 3. Bob has 5. 5 is more than 3, so Bob has more.\n"
    "Response: B"
)


def default_model(seed: int = 0) -> Any:
    """A 10-layer random LLaMA (layers 4, 6 and 8 exist, as the paper's removal needs)."""
    import interp

    with tempfile.TemporaryDirectory() as tmp:
        sp = train_sentencepiece([PROMPT, DIALOGUE] * 20, Path(tmp) / "default.model", vocab_size=400)
        hf = random_llama(n_layers=10, d_model=128, n_heads=4, vocab_size=400, init_std=0.2, seed=seed)
        return interp.load_model(hf, tokenizer=sp)
