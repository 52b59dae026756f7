"""The accuracy harness end to end on real benchmark files, resume after a kill, batching."""

from __future__ import annotations

import json

import pytest

import interp
from interp.benchmarks import runner, stats
from interp.benchmarks.data import load_mmlu, load_piqa, load_siqa
from interp.benchmarks.harness import evaluate, limit_per_subject
from interp.benchmarks.runner import Settings, run
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def items():
    if not SHARED.is_dir():
        pytest.skip("../shared/data not found")
    mmlu = limit_per_subject(load_mmlu(SHARED / "mmlu", ["abstract_algebra", "world_religions"]), 2)
    return mmlu + load_piqa(SHARED / "piqa")[:2] + load_siqa(SHARED / "siqa")[:2]


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_end_to_end_with_and_without_the_method(stories, items, tmp_path):
    runs = evaluate(stories, items, tmp_path, max_new_tokens=6, batch_size=4, direct=True, progress=False)
    assert set(runs) == {"direct", "cot", "cot+method"}
    assert [r["id"] for r in runs["cot"]] == [i.id for i in items]
    for record in runs["cot"]:
        assert 1 <= record["generated_tokens"] <= 6 and record["pred_flexible"] in "ABCD"
    assert any(a["response"] != b["response"] for a, b in zip(runs["cot"], runs["cot+method"]))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {row["name"] for row in summary["flexible"] if row["level"] == "category"} == {
        "Humanities", "STEM", "PIQA", "SIQA"}
    assert (tmp_path / "summary.csv").read_text().startswith("mode,level,name")


def test_resume_after_a_kill_loses_nothing_repeats_nothing(stories, items, tmp_path, monkeypatch):
    settings = Settings(max_new_tokens=5)
    reference = run(stories, items, tmp_path / "whole", variant="cot", settings=settings, batch_size=2, progress=False)
    real, calls = runner.generate_ids, {"n": 0}

    def dies_on_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "generate_ids", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run(stories, items, tmp_path / "killed", variant="cot", settings=settings, batch_size=2, progress=False)
    monkeypatch.setattr(runner, "generate_ids", real)
    path = tmp_path / "killed" / "cot.jsonl"
    assert len(lines(path)) == 4
    with path.open("a") as handle:
        handle.write('{"id": "half a line')  # a kill in the middle of a write
    resumed = run(stories, items, tmp_path / "killed", variant="cot", settings=settings, batch_size=3, progress=False)
    assert resumed == reference
    assert sorted(r["id"] for r in lines(path)) == sorted(i.id for i in items)  # every line whole, none twice


def test_resume_refuses_different_settings(stories, items, tmp_path):
    run(stories, items[:1], tmp_path, variant="cot", settings=Settings(max_new_tokens=3), progress=False)
    with pytest.raises(ValueError, match="different model or settings"):
        run(stories, items[:1], tmp_path, variant="cot", settings=Settings(max_new_tokens=4), progress=False)


def test_batched_equals_one_at_a_time(stories, items, tmp_path):
    method = [interp.TopLayerEmulation()]
    one = run(stories, items, tmp_path / "one", variant="m", interventions=method,
              settings=Settings(max_new_tokens=8), batch_size=1, progress=False)
    many = run(stories, items, tmp_path / "many", variant="m", interventions=method,
               settings=Settings(max_new_tokens=8), batch_size=5, progress=False)
    assert one == many


def test_sharded_results_merge_to_the_whole(stories, items, tmp_path):
    for rank in range(2):
        run(stories, items, tmp_path, variant="cot", settings=Settings(max_new_tokens=4),
            shard=runner.Shard(rank, 2), progress=False)
    merged = lines(runner.merge_shards(tmp_path, "cot", 2))
    whole = run(stories, items, tmp_path / "whole", variant="cot", settings=Settings(max_new_tokens=4), progress=False)
    assert sorted(merged, key=lambda r: r["id"]) == sorted(whole, key=lambda r: r["id"])


def test_mcnemar_and_bootstrap_against_hand_computation():
    baseline = [True] * 10 + [False] * 6 + [True] * 1
    method = [True] * 10 + [True] * 5 + [False] * 1 + [False] * 1
    # 5 pairs only the method gets right, 1 only the baseline: p = 2 * P(X <= 1 | 6, 1/2) = 2 * 7/64
    assert stats.mcnemar_exact(baseline, method) == pytest.approx(14 / 64)
    rows = stats.compare([{"id": str(i), "subject": "s", "category": "c", "correct_flexible": b} for i, b in enumerate(baseline)],
                         [{"id": str(i), "subject": "s", "category": "c", "correct_flexible": m} for i, m in enumerate(method)])
    overall = rows[0]
    assert overall["baseline"] == pytest.approx(11 / 17) and overall["method"] == pytest.approx(15 / 17)
    low, high = overall["difference_ci"]
    assert low < 4 / 17 < high
