"""perf/gpu_check.py in its CPU form (`--device cpu --shape tiny`), so that the command a GPU
session runs once cannot rot: every section runs and its figures say what they should where the
CPU can say it (float32 paths agree; the edits matter; sharded records equal one process's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
INTERVENTIONS = {"none", "emulation", "emulation (fused)", "prompt-removal", "anchor-ablation", "keep-anchors"}


def test_the_cpu_form_runs_every_section(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "perf/gpu_check.py", "--device", "cpu", "--shape", "tiny", "--dtypes",
                           "float32", "bfloat16", "--threads", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "numerics tiny float32" in done.stdout and "projection (measured bandwidth)" in done.stdout
    figures = json.loads(out.read_text())
    exact = figures["numerics"]["tiny"]["float32"]
    assert set(exact) == INTERVENTIONS
    for name, row in exact.items():
        assert row["fast_vs_bridge"] < 1e-4 and row["fast_vs_reference"] < 1e-4 and row["greedy_identical"], name
        if name != "none":
            assert row["edit_effect"] > 1e-3, name
    assert set(figures["numerics"]["tiny"]["bfloat16"]) == INTERVENTIONS
    assert all(row["fast_vs_bridge"] < 1e-2 for row in figures["numerics"]["tiny"]["bfloat16"].values())
    deep = figures["numerics"]["tiny-deep"]["float32"]  # 34 layers: the emulation's h = 33, past the released 31
    assert set(deep) == {"none", "emulation", "emulation (fused)"}
    assert deep["emulation (fused)"]["fast_vs_reference"] < 1e-4 and deep["emulation"]["edit_effect"] > 1e-3
    for batch in ("1", "4"):
        rows = figures["speed"][batch]
        for name in ("HF generate (SDPA)", "interp.generate", "interp.generate + emulation",
                     "interp.generate + emulation (fused)"):
            assert rows[name]["tokens_per_second"] > 0 and len(rows[name]["seconds"]) == 2, name
        assert rows["HF generate (SDPA)"]["x_hf_sdpa"] == 1.0
    memory = figures["memory"]
    assert 1 <= memory["batch_picked"] <= memory["questions"] == 8 and memory["planned_bytes"] > 0
    assert "skipped" in memory["oom"]  # a real out-of-memory error needs CUDA
    assert figures["sharding"]["merged_equal_one_process"] == {"cot": True, "cot+emulation": True}
    assert figures["sharding"]["questions"] == 4
    assert [row["model"] for row in figures["projection"]["measured"]] == ["LLaMA-2-7B", "LLaMA-2-13B"]
    assert figures["fused_emulation_failed"] == {}
