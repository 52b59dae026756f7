"""`interp reproduce`: the paper's pipeline end to end with --quick on a tiny model and the real
benchmark files of ../shared/data; resumable after a kill in step 3; other settings refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

import interp
from interp.accuracy import runner
from interp.cli import main
from interp.reproduction.pipeline import MEASURES, STEPS, _examples
from interp.analysis.survey import ORIGINAL, survey
from tests.conftest import SHARED, dies_after
from tests.distributed import kill_rank_when, run, torchrun

MODELS = ("base", "tuned", "tuned-dropout")
BENCHMARKS = ("mmlu", "piqa", "siqa")
CLAIMS = ("Anchor tokens emerge after structured fine-tuning", "Attention dropout during fine-tuning changes the anchors",
          "Removing the anchor tokens from the prompt range hurts", "Removing attention to the prompt in alternating",
          "The method improves CoT accuracy outside STEM", "The method helps non-STEM subjects more than STEM",
          "Larger models gain more")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(llama2_random) -> Path:
    return llama2_random


def reproduce(base: Path, out: Path, *extra: str) -> int:
    return main(["reproduce", "--quick", "--data", str(SHARED), "--model", str(base), "--out", str(out),
                 "--threads", "2", *extra])


@pytest.fixture(scope="module")
def whole(base, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    assert reproduce(base, out) == 0
    return out


def summaries(out: Path) -> dict[str, dict]:
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted(out.glob("accuracy/*/*/*/summary.json"))}


def test_quick_pipeline_writes_every_step_and_a_page_with_every_claim(whole):
    for name in ("without-dropout", "with-dropout"):
        assert (whole / "tuned" / name / "training.json").is_file()
    measures = json.loads((whole / MEASURES).read_text())
    assert set(measures["measures"]) == set(MODELS) and measures["examples"] == 4
    for model in MODELS:
        for benchmark in BENCHMARKS:
            folder = whole / "accuracy" / "paper" / model / benchmark
            assert (folder / "summary.json").is_file()
            ids = [json.loads(line)["id"] for line in (folder / "cot.jsonl").read_text().splitlines()]
            # quick: 1 question in each of 2 subjects per MMLU category, 4 PIQA, 4 SIQA
            assert len(ids) == {"mmlu": 8, "piqa": 4, "siqa": 4}[benchmark]
            assert (whole / f"accuracy-paper-{model}-{benchmark}.html").is_file()
        # step 4: MMLU by letter and by cloze, PIQA and SIQA by cloze, at the quick sizes
        for form, benchmark, n in (("letter", "mmlu", 8), ("cloze", "mmlu", 8), ("cloze", "piqa", 4), ("cloze", "siqa", 4)):
            records = (whole / "accuracy" / form / model / benchmark / f"{form}.jsonl").read_text().splitlines()
            assert len(records) == n and all(json.loads(line)["logprobs"] for line in records)
        assert not (whole / "accuracy" / "letter" / model / "piqa").exists()
    for page in ("attention", "anchors", "ablation", "removal", "finetuning"):
        assert (whole / f"{page}.html").is_file()
    text = (whole / "reproduction.html").read_text()
    for claim in CLAIMS:
        assert claim in text, claim
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    verdicts = [r for r in rows if re.search(r"<td>(agrees|disagrees|inconclusive|not tested)</td>", r)]
    # 2 anchor rows, 1 dropout, 2 x 2 effect rows, per model: 3 non-STEM gains + 1 STEM contrast generated
    # and 4 + 2 scored (MMLU twice), 1 untested
    assert len(verdicts) == 2 + 1 + 4 + len(MODELS) * (4 + 6) + 1
    assert "Accuracy by method" in text and text.count("accuracy difference from the baseline") == 3  # a plot each
    assert [list(run["seconds"]) for run in json.loads((whole / STEPS).read_text())] == [
        ["1 fine-tuned pair", "2 attention analyses", "3 CoT accuracy", "4 log-likelihood accuracy",
         "5 reproduction page"]]
    index = (whole / "index.html").read_text()
    assert "reproduction.html" in index and "Unfinished report" not in index


def test_a_kill_in_step_3_then_a_rerun_gives_the_uninterrupted_summaries(base, whole, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    out.mkdir()
    for done in ("tuned", "analyses", "reproduce.json"):  # steps 1 and 2 as the uninterrupted run left them
        (shutil.copytree if (whole / done).is_dir() else shutil.copy)(whole / done, out / done)
    real = runner.generate_stream
    monkeypatch.setattr(runner, "generate_stream", dies_after(3, real))
    assert reproduce(base, out) == 130
    monkeypatch.setattr(runner, "generate_stream", real)
    assert "Unfinished report" in (out / "index.html").read_text()
    assert not list(out.glob("accuracy/*/*/*/summary.json"))  # killed in the first folder's first variant
    assert reproduce(base, out) == 0
    assert summaries(out) == summaries(whole) and len(summaries(out)) == len(MODELS) * (len(BENCHMARKS) + 4)
    assert json.loads((out / MEASURES).read_text()) == json.loads((whole / MEASURES).read_text())
    runs = json.loads((out / STEPS).read_text())
    assert "5 reproduction page" not in runs[0]["seconds"] and "5 reproduction page" in runs[1]["seconds"]


def test_step_3_under_torchrun_killed_and_rerun_gives_the_uninterrupted_summaries(base, whole, tmp_path):
    """Steps 1 and 2 done, `torchrun --nproc-per-node 2 -m interp reproduce` shares step 3 out;
    a rank killed mid-step, then the same command again, ends as one uninterrupted process did."""
    out = tmp_path / "sharded"
    out.mkdir()
    for done in ("tuned", "analyses", "reproduce.json"):
        (shutil.copytree if (whole / done).is_dir() else shutil.copy)(whole / done, out / done)
    # One model and benchmark (of the 9 folders): what sharding does is the same in each, and each
    # launch costs every rank its start-up.
    command = torchrun("reproduce", "--quick", "--data", str(SHARED), "--model", str(base), "--out", str(out),
                       "--threads", "2", "--models", "tuned", "--benchmarks", "mmlu", "--scoring", "generate")
    folder = "accuracy/paper/tuned/mmlu/summary.json"
    killed = kill_rank_when(command, 1, lambda: any(out.glob("accuracy/*/*/*/*.rank1-of-2.jsonl")))
    assert killed.returncode != 0
    assert not summaries(out)
    finished = run(command)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert summaries(out) == {folder: summaries(whole)[folder]}
    assert "Unfinished report" not in (out / "index.html").read_text()


@pytest.mark.parametrize("option, message", [
    (("--examples", "3"), r"--examples 4, this run has 3"),
    (("--limit", "2"), r"--limit: this folder holds a run with 1, this run has 2"),
])
def test_other_settings_are_refused_naming_the_setting(base, whole, option, message, capsys):
    before = summaries(whole)
    assert reproduce(base, whole, *option) == 2
    assert re.search(message, capsys.readouterr().err)
    assert summaries(whole) == before


def test_survey_loss_is_a_plain_forward_cross_entropy_on_the_answer(base):
    model = interp.load_model(base)
    plain = AutoModelForCausalLM.from_pretrained(base).eval()
    examples = _examples(model, 2)
    measured = survey(model, examples, (1, 2))
    for example, loss in zip(examples, measured.loss[ORIGINAL]):
        with torch.no_grad():
            logits = plain(example.ids).logits[0]
        start = example.answer_start
        expected = F.cross_entropy(logits[start - 1 : -1], example.ids[0, start:]).item()
        assert loss == pytest.approx(expected, abs=1e-4)
    assert all(0 <= share <= 1 for share in measured.anchor_share + measured.sink_share)
