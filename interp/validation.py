"""Checks on what a user asks for, before anything is computed.

Three layers, each run as early as it can be:

- **values** (argparse ``type=`` functions): a count is a whole number of at least one, a ratio is
  finite and positive, a probability lies in [0, 1); the message names the value and what to give.
- **paths and modes** (:func:`existing`, :func:`model_path`, :func:`output_folder`,
  :func:`not_inside`, :func:`require_model`): a model, tokenizer or data
  path exists; an output folder is a folder that can be written and is not the input; an option
  that only applies with another one is refused instead of ignored. No model is loaded yet.
- **the model** (:func:`check_head`, :func:`check_fits_context`, and
  :func:`interp.edits.intervention.check_layers`): layers and heads inside the model, a sequence plus
  the tokens to generate inside its context.

Every failure is a :class:`UsageError` (a ``ValueError``): the command line prints its message on
one line and exits 2.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from interp.model import catalog


class UsageError(ValueError):
    """An option that cannot be honoured; the message names the option and the fix."""


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one of at least {least}") from None
    if value < least:
        below = "negative" if least == 0 else f"not at least {least}"
        raise argparse.ArgumentTypeError(f"{value} is {below}; give a whole number of at least {least}")
    return value


def count(text: str) -> int:
    """A whole number of at least one (questions, tokens, steps, rows)."""
    return _whole(text, 1)


def index(text: str) -> int:
    """A whole number of at least zero (a layer index, a seed)."""
    return _whole(text, 0)


def batch_size(text: str) -> int | str:
    """A positive whole number, or ``auto``."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--batch-size takes a positive whole number or 'auto', got {text!r}")
    return int(text)


def head(text: str) -> tuple[int, int]:
    """A head written LAYER.HEAD, e.g. 3.1."""
    layer, _, number = text.partition(".")
    if not (layer.isdigit() and number.isdigit()):
        raise argparse.ArgumentTypeError(f"heads are written LAYER.HEAD, e.g. 3.1; got {text!r}")
    return int(layer), int(number)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a finite number")
    return value


def positive(text: str) -> float:
    """A finite number above zero (a ratio, a learning rate)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not above 0; give a finite number above 0")
    return value


def ratio(text: str) -> float:
    """An anchor threshold in times the mean received attention: finite, above 0, and at most
    the number of keys it could ever exceed (anything above 1000 finds no anchor in any prompt)."""
    value = positive(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"{value:g} is so high that no key can receive that much; "
                                         "give a ratio above 0 and at most 1000 (the paper's sense: about 3)")
    return value


def probability(text: str) -> float:
    """A finite number in [0, 1) (a dropout rate)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is outside [0, 1); give a rate from 0 up to (not including) 1")
    return value


def open_unit(text: str) -> float:
    """A finite number strictly between 0 and 1 (the emulation's threshold)."""
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is outside (0, 1); give a number strictly between 0 and 1")
    return value


def finite(text: str) -> float:
    return _number(text)


def device(text: str) -> str:
    """A torch device this machine has: cpu, cuda, cuda:N (or mps)."""
    # torch is imported when a device is checked, not by `--help`.
    from interp.model.devices import device_problem

    problem = device_problem(text, cpu="--device cpu")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def devices(text: str) -> int:
    """How many GPUs to split a model over: at least 2, and no more than the machine has."""
    import torch

    value = count(text)
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if value > have:
        raise argparse.ArgumentTypeError(f"{value} GPUs asked for, this machine has {have}; "
                                         "leave --n-devices out to run on one device")
    return value


def output_folder(option: str, folder: Path) -> None:
    """``folder`` is a folder (or can become one) that this user can write."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} is a file; give a folder to write into (it is created if missing)")
    nearest = folder
    while not nearest.exists():  # the folder that would hold what is created
        nearest = nearest.parent
    if not nearest.is_dir():
        raise UsageError(f"{option} {folder} cannot be created: {nearest} is a file; give a folder to write into")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder} cannot be written ({nearest}: no permission); give a folder you can write")


def existing(option: str, path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise UsageError(f"{option} {path} does not exist; give the path of {what}")
    return path


def model_path(option: str, text: str) -> None:
    """A model given by path exists (a hub name is left to the loader)."""
    if catalog.looks_like_path(text):
        existing(option, text, "a Hugging Face model directory, a LoRA adapter folder, a .gguf file or a llama2.c .bin "
                               f"checkpoint (or a short name: {', '.join(catalog.MODELS)})")


def not_inside(option: str, out: Path, other_option: str, other: str | Path) -> None:
    """Writing ``out`` would not overwrite ``other`` (e.g. a fine-tune over its own base)."""
    source = Path(other).expanduser().resolve()
    target = out.expanduser().resolve()
    if target == source or source in target.parents or target in source.parents:
        raise UsageError(f"{option} {out} would write over {other_option} {other}; give another folder")


def given(args: argparse.Namespace, options: Sequence[str]) -> list[str]:
    """Which of ``options`` (written ``--like-this``) the command line set."""
    return [o for o in options if getattr(args, o.lstrip("-").replace("-", "_"), None) not in (None, False)]


def require_model(args: argparse.Namespace, options: Sequence[str]) -> None:
    """Options that describe how to load ``--model`` mean nothing without it: refuse them."""
    if getattr(args, "model", None):
        return
    if given(args, options):
        raise UsageError(f"{', '.join(given(args, options))} only apply with --model (the shipped model has its own tokenizer "
                         "and runs on one device); give --model PATH or leave them out")


def check_head(option: str, layer: int, head: int, n_layers: int, n_heads: int) -> None:
    if not 0 <= layer < n_layers:
        raise UsageError(f"{option} {layer}.{head}: layer {layer} does not exist; the model has layers 0 to "
                         f"{n_layers - 1} (heads are written LAYER.HEAD)")
    if not 0 <= head < n_heads:
        raise UsageError(f"{option} {layer}.{head}: head {head} does not exist; layers have heads 0 to "
                         f"{n_heads - 1} (heads are written LAYER.HEAD)")


def check_fits_context(what: str, tokens: int, context: int, fix: str) -> None:
    if tokens > context:
        raise UsageError(f"{what} needs {tokens} tokens, more than the model's context of {context} tokens; {fix}")


def selection(text: str) -> str:
    """A head-selection spec: act, pasta, or KIND:key=value,... (checked, returned as given)."""
    from interp.analysis.selection import parse_selection

    try:
        parse_selection(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def checked(option: str, check: Callable[[Any], Any], value: Any) -> Any:
    """``check(value)`` with an argparse type's error turned into a :class:`UsageError` naming ``option``
    (for values that come from somewhere other than the command line, e.g. a method spec)."""
    try:
        return check(value)
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"{option}: {err}") from None
