"""`torchrun --nproc-per-node 2 -m interp accuracy` as users run it, on the CPU (gloo): the merged
records equal one process's; a rank killed mid-run, then the same command again, finishes with
the same records; a rank that fails stops the others, with its message, instead of leaving them at
the barrier."""

from __future__ import annotations

import pytest

from interp.accuracy.runner import read_results
from interp.cli import main
from interp.tiny.default import shipped
from tests.distributed import kill_rank_when, lines, run, torchrun
from tests.test_harness import assert_same_answers

pytestmark = pytest.mark.slow

VARIANTS = ("cot", "cot+emulation")


def accuracy(results, report):
    return ["accuracy", "--benchmark", "structured", "--model", str(shipped()), "--limit", "4", "--max-new-tokens", "40",
            "--batch-size", "2", "--threads", "1", "--results", str(results), "--out", str(report)]


def test_two_ranks_killed_failing_and_rerun_give_one_process_records(tmp_path):
    assert main(accuracy(tmp_path / "one", tmp_path / "one-report")) == 0
    results, report = tmp_path / "two", tmp_path / "two-report"
    command = torchrun(*accuracy(results, report))

    killed = kill_rank_when(command, 1, lambda: lines(results / "cot.rank1-of-2.jsonl") >= 2)
    assert killed.returncode != 0
    assert not (results / "cot.jsonl").exists()  # nothing merged from half a run

    # A rank that fails (here: a damaged line in its results file) ends the run, its message shown.
    part = results / "cot.rank1-of-2.jsonl"
    good = part.read_text().splitlines()
    part.write_text("\n".join([good[0], "not a record", *good[1:]]) + "\n")
    failed = run(command, timeout=120)
    assert failed.returncode != 0
    assert "cot.rank1-of-2.jsonl:2 is not a result record" in failed.stderr
    root_cause = failed.stderr.split("Root Cause")[-1]
    assert "rank      : 1" in root_cause and "is not a result record" in root_cause
    assert not (results / "cot.jsonl").exists()

    part.write_text("\n".join(good) + "\n")
    finished = run(command)
    assert finished.returncode == 0, finished.stderr[-3000:]
    for variant in VARIANTS:
        merged = read_results(results / f"{variant}.jsonl")
        alone = read_results(tmp_path / "one" / f"{variant}.jsonl")
        assert sorted(merged) == sorted(alone) and len(merged) == 8
        assert_same_answers([merged[i] for i in sorted(merged)], [alone[i] for i in sorted(alone)])
    assert (report / "index.html").is_file()
