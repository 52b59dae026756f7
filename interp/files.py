"""Files that a rerun, or another rank, reads: written whole or not at all; and folders held by the
run writing them, so that two runs never write one folder at once."""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

LOCK = ".interp.lock"


def replace_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` by ``write`` (given a temporary file of this process beside it), then rename:
    a reader (a rerun after a kill, another rank writing the same record) sees the old file or the
    new one, never a part of either."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` by :func:`replace_atomic`."""
    replace_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def first_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first key (``new``'s order, then ``old``'s) whose value differs between two records."""
    return next((key for key in (*new, *(k for k in old if k not in new)) if old.get(key) != new.get(key)), None)


def refuse_other_run(old: dict[str, Any], new: dict[str, Any], say: Callable[[str, Any, Any], str],
                     error: type[Exception] = ValueError) -> None:
    """Refuse to resume a run whose record (``old``, what a folder holds) differs from this run's
    (``new``): raise ``error`` with ``say(key, old value, new value)`` for the first key that
    differs, which names the setting and the fix."""
    key = first_change(old, new)
    if key is not None:
        raise error(say(key, old.get(key), new.get(key)))


class FolderInUse(ValueError):
    """Another live process holds the folder this run would write."""


class BrokenFile(ValueError):
    """A file interp wrote earlier cannot be read back; the message names it and the fix."""


_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, how many holds of this process)


@contextmanager
def hold(folder: Path, *, name: str = LOCK, wait: bool = False) -> Iterator[None]:
    """Hold ``folder`` for this process while the block runs: a second run into it is refused at
    once (or, with ``wait``, waits for the first to end), naming the folder and the other process.

    The lock is the OS's own (``flock`` on ``folder/name``): it ends with the process that holds
    it, however that process ends, so a killed run never leaves a lock to clear by hand. A process
    may hold a folder again while it holds it (a command whose pages go where its results go).
    Ranks of one sharded run each hold their own ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / name).resolve()
    if path in _held:
        descriptor, count = _held[path]
        _held[path] = (descriptor, count + 1)
    else:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            other = os.pread(descriptor, 1000, 0).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise FolderInUse(f"{folder} is being written by another interp run ({other}); wait for it to end, "
                              "or write to another folder") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}: {' '.join(['interp', *sys.argv[1:]])}".encode(), 0)
        _held[path] = (descriptor, 1)
    try:
        yield
    finally:
        descriptor, count = _held[path]
        if count > 1:
            _held[path] = (descriptor, count - 1)
        else:
            del _held[path]
            os.close(descriptor)  # closing releases the lock


def rank_lock(rank: int) -> str:
    """The lock of one rank of a sharded run (rank 0's is the folder's own lock)."""
    return LOCK if rank == 0 else f".interp.rank{rank}.lock"


def json_text(value: Any) -> str:
    """``value`` as strict JSON: NaN and infinities (an accuracy over no questions) as ``null``,
    which every JSON reader accepts (Python's ``NaN`` is not JSON)."""
    def plain(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return json.dumps(plain(value), indent=2, allow_nan=False)


def read_json(path: Path) -> Any:
    """A JSON file interp wrote; one that is empty or cut short (an older run on a full disk, a
    hand edit) is refused naming the file, where ``json`` names only a line and column."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BrokenFile(f"{path} is not valid JSON ({err}); it was cut short or edited: delete it (or its "
                         "folder) to start that part afresh") from None
