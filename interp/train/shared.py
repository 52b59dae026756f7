"""What the two trainers (:mod:`interp.tiny.train`, :mod:`interp.train.finetune`) share: right-padded
batches with labels, and checkpoints written so a kill cannot leave half of one behind and read so
that a checkpoint from someone else's folder cannot run code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from interp.files import replace_atomic


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[
        Int[Tensor, "batch pos"], Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """(ids, labels) rows as right-padded ids, attention mask and labels (-100 on padding)."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    target = torch.full_like(ids, -100)
    for i, (row, labels) in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        target[i, : len(row)] = torch.tensor(labels)
    return ids, mask, target


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` by :func:`interp.files.replace_atomic`: a run killed mid-write keeps its last
    checkpoint."""
    replace_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_save`: tensors, numbers, strings and containers only.
    Unpickling anything else would run code chosen by whoever wrote the file, so it is refused."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects other than tensors, numbers and strings, and loading them would run "
                         f"code from the file; interp does not write such checkpoints. Delete {path.parent} to "
                         f"start afresh ({str(err).splitlines()[0]})") from None
