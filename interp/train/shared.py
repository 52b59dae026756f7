"""What the two trainers (:mod:`interp.tiny.train`, :mod:`interp.train.finetune`) share: right-padded
batches with labels, and checkpoints written so a kill cannot leave half of one behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from jaxtyping import Int
from torch import Tensor


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
    """``torch.save`` through a temporary file: a run killed mid-write keeps its last checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
