"""One run per output folder: a second run into a folder another live process is writing is
refused at once, naming the folder and that process; a killed run's lock ends with it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interp.files import FolderInUse, hold
from interp.tiny import random_llama

HOLDER = "import sys; from pathlib import Path; from interp.files import hold\n" \
         "with hold(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()"


def held_by_another_process(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_folder_held_by_another_process_is_refused_naming_it_and_taken_over_once_it_is_killed(tmp_path):
    other = held_by_another_process(tmp_path)
    with pytest.raises(FolderInUse, match=rf"{tmp_path} is being written by another interp run \(pid {other.pid}:"):
        with hold(tmp_path):
            pass
    started = time.perf_counter()
    subprocess.Popen(["sh", "-c", f"sleep 1; kill -9 {other.pid}"])  # nothing runs on its way out
    with hold(tmp_path, wait=True):  # waits for the holder, whose lock ends with it
        assert time.perf_counter() - started > 0.9
        with hold(tmp_path):  # the same process may hold it again (pages written where the results go)
            pass
    other.wait()


@pytest.fixture
def base(tmp_path, sp_model):
    folder = tmp_path / "base"
    random_llama(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, vocab_size=400, seed=3).save_pretrained(folder)
    shutil.copyfile(sp_model, folder / "tokenizer.model")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"Question: {a}?\nAnalysis:", "response": f" {a}.\nResponse: {a}"}) + "\n"
                            for a in range(6)))
    return folder, rows


def interp(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "interp", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_two_real_finetunes_into_one_folder_the_second_is_refused_at_once(base, tmp_path):
    model, rows = base
    out = tmp_path / "tuned"
    command = ["finetune", "--model", str(model), "--data", str(rows), "--out", str(out), "--full", "--threads", "1",
               "--batch-size", "2"]
    first = interp(*command, "--steps", "100000", start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint").exists():  # created once the first holds the folder
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)
    second = interp(*command, "--steps", "4", "--lr", "1e-3")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert f"interp: error: {out} is being written by another interp run (pid {first.pid}: interp finetune" in err
    assert first.poll() is None  # the first is untouched
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    shutil.rmtree(out / "checkpoint")  # the killed run's checkpoint has other settings; its lock needs no clearing
    again = interp(*command, "--steps", "4")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert json.loads((out / "training.json").read_text())["settings"]["steps"] == 4
