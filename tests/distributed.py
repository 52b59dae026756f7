"""Running interp under torchrun as users do, for the tests: two processes on the CPU (gloo), one
of them killed or failing mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*args: str) -> list[str]:
    """``torchrun --nproc-per-node 2 -m interp ARGS`` (standalone: a free port of its own)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "interp", *args]


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of ``rank`` that the torchrun process ``launcher`` started."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


def kill_rank_when(command: list[str], rank: int, ready: Callable[[], bool], timeout: float = 300) -> subprocess.CompletedProcess:
    """Start ``command`` (a torchrun), kill -9 the worker of ``rank`` once ``ready()`` holds, and
    wait for torchrun to end (it stops the other ranks)."""
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if launcher.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the run ended (or timed out) before the rank could be killed: "
                                     f"{launcher.communicate()[1][-2000:]}")
            time.sleep(0.02)
        pid = rank_pid(launcher.pid, rank)
        assert pid is not None, "no worker of that rank"
        os.kill(pid, signal.SIGKILL)
        out, err = launcher.communicate(timeout=timeout)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    return subprocess.CompletedProcess(command, launcher.returncode, out, err)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0
