"""Ctrl-C (SIGINT) during a study, the harness or fine-tuning: the command ends within seconds with
one line saying what to do, and the rerun resumes (harness, fine-tuning) or starts clean (studies)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interp.tiny.default import shipped

pytestmark = pytest.mark.slow  # real processes, each loading the model


def interrupt(argv: list[str], after: str, cwd: Path) -> tuple[int, str, float]:
    """Start ``interp argv``, send SIGINT once a line with ``after`` has been printed; returns its exit
    code, its last line on stderr and the seconds it took to end after the signal."""
    # As in a terminal: SIGINT handled by default, even where this test runs in a background job
    # (which a non-interactive shell starts with SIGINT ignored, and children inherit that).
    process = subprocess.Popen([sys.executable, "-m", "interp", *argv], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    deadline = time.monotonic() + 240
    while after not in seen or not seen.endswith(("\n", "\r")):
        seen += process.stdout.read(1)  # type: ignore[union-attr]
        assert process.poll() is None and time.monotonic() < deadline, seen[-2000:]
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    rest, _ = process.communicate(timeout=60)
    return process.returncode, (seen + rest).strip().splitlines()[-1], time.monotonic() - sent


def test_ctrl_c_during_the_studies_marks_the_report_unfinished(tmp_path):
    code, last, took = interrupt(["run", "--out", "reports", "--questions", "3", "--cot-tokens", "8"],
                                 "attention:", tmp_path)
    assert code == 130 and took < 10
    assert last.startswith("interp: interrupted; the report in reports is marked unfinished"), last
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "Unfinished report" in index and "attention.html" in index  # what finished is kept


def test_ctrl_c_during_the_harness_then_the_rerun_resumes(tmp_path):
    # the tiny test model: what is tested is Ctrl-C and the resume, not SmolLM2's answers (4.9 min with it)
    argv = ["accuracy", "--model", str(shipped()), "--benchmark", "structured", "--limit", "6", "--max-new-tokens", "64",
            "--batch-size", "2", "--results", "rx"]
    code, last, took = interrupt(argv, "cot:  ", tmp_path)
    assert code == 130 and took < 10
    assert "run the same command again to resume" in last, last
    done = subprocess.run([sys.executable, "-m", "interp", *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((tmp_path / "rx" / "cot.jsonl").read_text().splitlines()) == 12


def test_ctrl_c_during_fine_tuning_then_the_rerun_resumes(tmp_path):
    pytest.importorskip("peft")
    argv = ["finetune", "--model", str(shipped()), "--out", "tuned", "--full", "--steps", "30", "--batch-size", "2",
            "--no-instruction"]
    code, last, took = interrupt(argv, "fine-tuning tuned:  ", tmp_path)
    assert code == 130 and took < 15
    assert "run the same command again to resume from the last checkpoint" in last, last
