"""Whether this machine has a torch device, said once for the command line and the Python API."""

from __future__ import annotations

import torch

DEVICE_KINDS = ("cpu", "cuda", "mps")


def device_problem(device: str | torch.device, cpu: str) -> str | None:
    """What is wrong with ``device`` on this machine (a sentence naming the fix, ``cpu`` being how the
    caller asks for the CPU), or ``None``."""
    text = str(device)
    kind, _, number = text.partition(":")
    if kind not in DEVICE_KINDS or (number and not number.isdigit()):
        return f"{text!r} is not a device; give cpu, cuda or cuda:N"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return (f"{text!r}: this torch has no CUDA device (torch {torch.__version__}); use {cpu}, or "
                    "install a CUDA build of torch (make report TORCH_INDEX=https://download.pytorch.org/whl/cu126)")
        if number and int(number) >= torch.cuda.device_count():
            return f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
    if kind == "mps" and not torch.backends.mps.is_available():
        return f"{text!r}: this machine has no MPS device; use {cpu}"
    return None
