"""Train a SentencePiece tokenizer in the LLaMA style (BPE, byte fallback) on local text."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm


def train_sentencepiece(texts: Iterable[str], out_file: str | Path, vocab_size: int = 512, *,
                        split_digits: bool = True, symbols: Sequence[str] = ()) -> Path:
    """Write a SentencePiece ``.model`` trained on ``texts``; ids 0-2 are unk, BOS, EOS as in LLaMA.

    ``split_digits=False`` lets numbers become pieces of their own, and ``symbols`` are always
    pieces of their own (never merged with a neighbour, as "44," would be otherwise)."""
    out_file = Path(out_file)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=buffer, vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=split_digits,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, normalization_rule_name="identity",
        remove_extra_whitespaces=False, hard_vocab_limit=False, num_threads=1, minloglevel=2,
        user_defined_symbols=list(symbols),
    )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(buffer.getvalue())
    return out_file
