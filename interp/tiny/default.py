"""The two tiny LLaMAs shipped in the package (1.8M parameters, trained from scratch by
:mod:`interp.tiny.build` on the structured dataset, without and with attention dropout): models
that load in a second, for the tests. The main job runs :mod:`interp.shipped`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


MODELS = Path(__file__).parent / "models"
MAIN, DROPOUT = "cot-tiny", "cot-tiny-dropout"


def shipped(name: str = MAIN) -> Path:
    path = MODELS / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the shipped model {path} is missing; rebuild it with `python -m interp.tiny.build`")
    return path


def load_shipped(name: str = MAIN, *, dtype: str | None = None, device: str | None = None) -> Any:
    from interp.model.load import load_model

    return load_model(shipped(name), dtype=dtype, device=device)

