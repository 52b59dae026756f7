"""The reproduction's claims and page on hand-made answers (fast: no model): verdicts, paired
estimates and McNemar p counted by hand, and the page built from results folders."""

from __future__ import annotations

import json
import math

import pytest

from interp.accuracy.data import Item
from interp.accuracy.record import Answer
from interp.reproduction.claims import (
    AGREES, DISAGREES, INCONCLUSIVE, NOT_TESTED, Claim, gain_beyond_stem, method_gain, paired,
)


def answers(right: list[bool], category: str = "Humanities", forced: bool = True) -> list[Answer]:
    """One answer per question, right or wrong (the right letter is always A)."""
    out = []
    for i, ok in enumerate(right):
        item = Item(f"mmlu/{category}/{i}", "mmlu", "subject", category, f"question {i}?", ("yes", "no"), "A")
        letter = "A" if ok else "B"
        predictions = {"final": letter, **({"forced": letter} if forced else {})}
        out.append(Answer(item, 10, 5, f"The answer is {letter}.", predictions))
    return out


def test_a_verdict_reads_the_interval_against_the_papers_side():
    assert Claim("c", "w", "m", 0.2, (0.1, 0.3)).verdict == AGREES
    assert Claim("c", "w", "m", -0.2, (-0.3, -0.1)).verdict == DISAGREES
    assert Claim("c", "w", "m", 0.0, (-0.1, 0.1)).verdict == INCONCLUSIVE
    assert Claim("c", "w", "m").verdict == NOT_TESTED
    assert Claim("c", "w", "m", -0.2, (-0.3, -0.1), direction=0).verdict == AGREES  # "changes": either side


def test_paired_is_the_mean_difference_per_example():
    claim = paired("c", "w", "m", [1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5])
    assert claim.estimate == pytest.approx(0.5) and claim.ci == pytest.approx((0.5, 0.5)) and claim.n == 4
    assert claim.verdict == AGREES
    assert paired("c", "w", "m", [1.0, 2.0], [1.0, 2.0]).p == 1.0  # no difference at all
    with pytest.raises(ValueError, match="same examples on both sides"):
        paired("c", "w", "m", [1.0], [1.0, 2.0])


def test_method_gain_counts_the_questions_and_mcnemar_by_hand():
    # 10 questions: 3 right under both, 3 more right under the method, none lost.
    baseline = answers([True] * 3 + [False] * 7)
    method = answers([True] * 6 + [False] * 4)
    claim = method_gain("c", "w", baseline, method, "forced")
    assert claim.estimate == pytest.approx(0.3) and claim.n == 10
    # McNemar's exact test: 3 discordant pairs, all one way: 2 * 0.5**3
    assert claim.p == pytest.approx(0.25)
    assert "30.0% -> 60.0%" in claim.measured


def test_gain_beyond_stem_is_the_difference_of_the_two_groups_gains():
    baseline = answers([False] * 4, "STEM") + answers([False] * 4)
    method = answers([True, False, False, False], "STEM") + answers([True, True, True, False])
    claim = gain_beyond_stem("c", "w", baseline, method, "forced")
    assert claim.estimate == pytest.approx(0.75 - 0.25) and claim.n == 8
    assert not math.isnan(claim.ci[0])


def test_the_reproduction_page_sets_each_accuracy_claim_beside_its_folder(tmp_path):
    from interp.accuracy.harness import write_tables
    from interp.accuracy.runner import write_answers
    from interp.reproduction.page import reproduction_page

    from interp.reproduction.pipeline import accuracy_folder

    folder = accuracy_folder(tmp_path, "paper", "base", "mmlu")
    folder.mkdir(parents=True)
    runs = {"cot": answers([True] * 3 + [False] * 7, "STEM") + answers([True] * 2 + [False] * 8),
            "cot+emulation": answers([True] * 3 + [False] * 7, "STEM") + answers([True] * 6 + [False] * 4)}
    for name, records in runs.items():
        write_answers(folder / f"{name}.jsonl", records)
        (folder / f"{name}.settings.json").write_text(json.dumps({"settings": {}, "method": None}))
    write_tables(folder, runs)
    page = reproduction_page(tmp_path)
    rows = [row for section in page.sections for _, body in section.tables for row in body]
    outside = [r for r in rows if "base, MMLU, paper prompt, emulation (non-STEM)" in str(r[1])]
    assert len(outside) == 1 and "+40.0 points" in str(outside[0][3])  # 20% -> 60% on the 10 non-STEM questions
    beyond = [r for r in rows if r[0] == "The method helps non-STEM subjects more than STEM ones (MMLU)"]
    assert len(beyond) == 1 and "+40.0 points" in str(beyond[0][3])  # +40 outside STEM, +0 inside
    assert "not tested" in page.summary  # no attention measures, one model size


def test_the_page_names_the_emulations_h_and_released_h_runs_only_past_32_layers(tmp_path):
    from interp.accuracy.harness import write_tables
    from interp.accuracy.runner import write_answers
    from interp.edits.interventions import TopLayerEmulation
    from interp.edits.intervention import describe
    from interp.reproduction.page import reproduction_page
    from interp.reproduction.pipeline import with_released_h

    from interp.reproduction.pipeline import accuracy_folder

    folder = accuracy_folder(tmp_path, "cloze", "base", "piqa")
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"model": {"n_layers": 40}}))
    runs = {"cloze": answers([True] * 5 + [False] * 5), "cloze+emulation": answers([True] * 6 + [False] * 4),
            "cloze+emulation(last_layer=31)": answers([True] * 4 + [False] * 6)}
    edits = {"cloze+emulation": TopLayerEmulation(), "cloze+emulation(last_layer=31)": TopLayerEmulation(last_layer=31)}
    for name, records in runs.items():
        write_answers(folder / f"{name}.jsonl", records)
        method = {"kind": "emulation", "interventions": [describe(edits[name])]} if name in edits else None
        (folder / f"{name}.settings.json").write_text(json.dumps({"settings": {}, "method": method}))
    write_tables(folder, runs)
    page = reproduction_page(tmp_path)
    section = next(s for s in page.sections if s.title == "Accuracy by method")
    header, body = section.tables[0]
    h = {row[2]: row[header.index("emulation's h")] for row in body}
    assert h == {"emulation": "39 (the last layer)", "emulation(last_layer=31)": "31 (given; the last layer is 39)"}
    # --released-h adds h = 31 where the model is deeper than 32 layers; its factor damps layer 39 (1 + 0.2 (1 - 39/31))
    added = with_released_h([], True, 40)
    assert [m.name for m in added] == ["emulation(last_layer=31)"]
    from interp.edits import patterns

    assert patterns.depth_scale(39, 0.2, 31) == pytest.approx(1 + 0.2 * (1 - 39 / 31)) and 1 + 0.2 * (1 - 39 / 31) < 0.95
    assert with_released_h([], True, 32) == [] and with_released_h([], True, 30) == [] and with_released_h([], False, 40) == []
